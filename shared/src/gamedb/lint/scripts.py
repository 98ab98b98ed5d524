"""The SQL each revision would run: `upgrade parent:rev --sql`, one script per revision.

One script per revision, because squawk judges a file on its own: in one script from base every
table is new, and an index built later on a live table would look harmless. Alembic's own
version-table bookkeeping is left out: it is not the team's to change."""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

from alembic import command
from alembic.script import Script
from alembic.util import to_tuple

from gamedb.discovery import SchemaInfo
from gamedb.errors import InvalidOption
from gamedb.migrate.config import make_config, script_directory
from gamedb.migrate.run_options import set_run_options
from gamedb.names import VERSION_TABLE_SCHEMA
from gamedb.project import Project


@dataclass(frozen=True)
class RevisionFile:
    """One revision of one schema, as lint names it: schema, revision id, file on disk, its parents."""

    schema: str
    revision: str
    path: Path
    parents: tuple[str, ...]


def schema_revisions(project: Project, schemas: dict[str, SchemaInfo], info: SchemaInfo) -> list[RevisionFile]:
    """The schema's revisions, oldest first."""
    walk = list(script_directory(make_config(project, schemas, info)).walk_revisions())
    return [revision_file(info, script) for script in reversed(walk)]


def revision_file(info: SchemaInfo, script: Script) -> RevisionFile:
    return RevisionFile(info.name, script.revision, Path(script.path), to_tuple(script.down_revision, default=()))


def revisions_after(revisions: list[RevisionFile], since: str) -> list[RevisionFile]:
    """The revisions that are neither `since` nor beneath it (a parallel branch counts as newer)."""
    parents = {r.revision: r.parents for r in revisions}
    older: set[str] = set()
    stack = [since]
    while stack:
        current = stack.pop()
        if current not in older:
            older.add(current)
            stack.extend(parents.get(current, ()))
    return [r for r in revisions if r.revision not in older]


def resolve_since(since: list[str], revisions: dict[str, list[RevisionFile]]) -> dict[str, str]:
    """Each `--since REV` (an id or a unique prefix of one) -> {schema: full revision id}."""
    resolved: dict[str, str] = {}
    for given in since:
        matches = [r for rs in revisions.values() for r in rs if r.revision.startswith(given)] if given else []
        if not matches:
            known = ", ".join(sorted(revisions))
            raise InvalidOption(f"--since {given!r}: no revision of the linted schemas ({known}) has that id")
        if len(matches) > 1:
            named = ", ".join(f"{m.schema} {m.revision}" for m in matches)
            raise InvalidOption(f"--since {given!r} is ambiguous: {named}")
        found = matches[0]
        if found.schema in resolved:
            raise InvalidOption(
                f"--since given twice for schema {found.schema}: {resolved[found.schema]} and {found.revision}"
            )
        resolved[found.schema] = found.revision
    return resolved


def revision_sql(project: Project, schemas: dict[str, SchemaInfo], info: SchemaInfo, revision: RevisionFile) -> str:
    """The offline SQL of this one revision, minus the version-table bookkeeping."""
    buffer = io.StringIO()
    config = make_config(project, schemas, info, output_buffer=buffer)
    set_run_options(config, logging_configured=True)
    start = revision.parents[0] if revision.parents else "base"
    command.upgrade(config, f"{start}:{revision.revision}", sql=True)
    return without_bookkeeping(buffer.getvalue(), info)


def without_bookkeeping(script: str, info: SchemaInfo) -> str:
    """The script minus the statements on the schema's version table."""
    marker = f"{VERSION_TABLE_SCHEMA}.{info.version_table}"
    return "\n\n".join(chunk for chunk in script.split("\n\n") if marker not in chunk)
