"""`gamedb lint`: squawk over the SQL each revision would run (the documented way to lint Alembic
migrations is their offline `--sql` output).

One file per revision (`<schema>.<revision>.sql`), because squawk judges a file on its own: in one
script from base every table is new, and an index built later on a live table would look harmless.
Alembic's own version-table bookkeeping is left out: it is not the team's to change.

The rule choices are squawk's own config file, `.squawk.toml` at the project root, handed to squawk
with `--config` (squawk runs in a temporary directory, where it would not find the file itself), so
`gamedb lint` and `nox -s lint` judge the same rules. squawk's `--exclude` replaces the file's
`excluded_rules`, it does not add to them."""

from __future__ import annotations

import io
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from alembic import command
from alembic.util import to_tuple

from gamedb.discovery import SchemaInfo
from gamedb.errors import GamedbError
from gamedb.migrate.config import make_config, script_directory
from gamedb.migrate.run_options import set_run_options
from gamedb.names import VERSION_TABLE_SCHEMA
from gamedb.project import Project


def revision_scripts(project: Project, schemas: dict[str, SchemaInfo], info: SchemaInfo) -> list[tuple[str, str]]:
    """(revision, SQL) for each revision of the schema, oldest first: `upgrade parent:rev --sql`."""
    scripts = []
    walk = list(script_directory(make_config(project, schemas, info)).walk_revisions())
    for revision in reversed(walk):
        parents = to_tuple(revision.down_revision, default=())
        buffer = io.StringIO()
        config = make_config(project, schemas, info, output_buffer=buffer)
        set_run_options(config, logging_configured=True)
        command.upgrade(config, f"{parents[0] if parents else 'base'}:{revision.revision}", sql=True)
        scripts.append((revision.revision, buffer.getvalue()))
    return scripts


def without_bookkeeping(script: str, info: SchemaInfo) -> str:
    """The script minus the statements on the schema's version table."""
    marker = f"{VERSION_TABLE_SCHEMA}.{info.version_table}"
    return "\n\n".join(chunk for chunk in script.split("\n\n") if marker not in chunk)


def squawk_binary() -> str:
    """squawk from this environment (squawk-cli), else from PATH."""
    beside = Path(sys.executable).parent / "squawk"
    found = str(beside) if beside.exists() else shutil.which("squawk")
    if not found:
        raise GamedbError("squawk is not installed: pip install squawk-cli")
    return found


def lint_schemas(
    project: Project, schemas: dict[str, SchemaInfo], selected: list[SchemaInfo], squawk_args: list[str]
) -> int:
    """Run squawk on one file per revision, with the project's .squawk.toml; return squawk's exit code."""
    config = ["--config", str(project.squawk_config)] if project.squawk_config.is_file() else []
    with tempfile.TemporaryDirectory(prefix="gamedb-lint-") as tmp:
        files = []
        for info in selected:
            for revision, script in revision_scripts(project, schemas, info):
                path = Path(tmp) / f"{info.name}.{revision}.sql"
                path.write_text(without_bookkeeping(script, info))
                files.append(path.name)  # relative, so squawk reports "auth.<revision>.sql:12:5"
        return subprocess.run([squawk_binary(), *config, *squawk_args, *files], cwd=tmp).returncode
