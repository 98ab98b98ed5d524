"""`gamedb new-service NAME`: a new service that is discovered, migrated, tested and in CI at once.

Everything is checked before anything is written; the service folder copies the shape of every
other one (`gamedb.scaffold.files`), its first revision is the seed's init revision, and alembic.ini
learns its versions directory so plain `alembic` sees it too.
"""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from alembic import command
from alembic.script import Script

from gamedb.discovery import SchemaInfo
from gamedb.discovery.declaration import SchemaDeclaration
from gamedb.errors import GamedbError, InvalidSchemaName
from gamedb.migrate.config import make_config
from gamedb.migrate.environment import init_revision_body
from gamedb.migrate.run_options import set_run_options
from gamedb.names import validate_schema_name
from gamedb.project import Project
from gamedb.roles.model import model_role_names
from gamedb.scaffold.files import ServiceLayout, write_service, write_service_extras


@dataclass
class NewService:
    """What new-service made."""

    layout: ServiceLayout
    files: list[Path] = field(default_factory=list)
    init_revision: Path | None = None
    installed: bool = False


def check_new_service(project: Project, schemas: dict[str, SchemaInfo], name: str) -> None:
    """Refuse an invalid or reserved name, an existing service or schema, or colliding roles."""
    validate_schema_name(name)
    if name in schemas:
        raise InvalidSchemaName(f"schema {name!r} already exists (distribution {schemas[name].distribution})")
    folder = project.root / "services" / name
    if folder.exists():
        raise InvalidSchemaName(f"{folder.relative_to(project.root)} already exists")
    taken = model_role_names(schemas.values()) | set(schemas)
    clashes = sorted({name, f"{name}_owner", f"{name}_rw"} & taken)
    if clashes:
        raise InvalidSchemaName(f"schema {name!r} would reuse the name(s) {', '.join(clashes)} of existing roles")


def create_service(project: Project, schemas: dict[str, SchemaInfo], name: str, *, install: bool) -> NewService:
    """Write services/<name>, its init revision and its alembic.ini line; install it editable."""
    check_new_service(project, schemas, name)
    layout = write_service(project.root / "services", name)
    made = NewService(layout, sorted(p for p in layout.root.rglob("*") if p.is_file()))
    made.files += write_service_extras(layout)
    declaration = SchemaDeclaration(models=f"game_{name}.models", versions=layout.versions_dir)
    info = SchemaInfo(name, layout.distribution, declaration, layout.versions_dir.resolve())
    config = make_config(project, {**schemas, name: info}, info)
    set_run_options(config, init_revision=init_revision_body(info))
    script = command.revision(config, message=f"init {name} schema", branch_label=name)
    made.init_revision = Path(script.path) if isinstance(script, Script) else None  # one revision: one Script
    add_version_location(project.ini_path, layout.versions_dir.relative_to(project.root))
    if install:
        pip = [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--editable", str(layout.root)]
        done = subprocess.run(pip, capture_output=True, text=True)
        if done.returncode != 0:
            last = (done.stderr.strip().splitlines() or ["pip failed"])[-1]
            raise GamedbError(f"created {layout.root} but could not install it ({last}); run: {' '.join(pip[2:])}")
        made.installed = True
    return made


def add_version_location(ini_path: Path, versions_dir: Path) -> None:
    """Add `%(here)s/<versions_dir>` to alembic.ini's version_locations, keeping the list sorted."""
    lines = ini_path.read_text().splitlines(keepends=True)
    entry = f"%(here)s/{versions_dir.as_posix()}"
    start = next((i for i, line in enumerate(lines) if line.startswith("version_locations")), None)
    if start is None:
        raise GamedbError(f"{ini_path} has no version_locations to add {versions_dir} to")
    end = start + 1
    while end < len(lines) and lines[end][:1] in (" ", "\t") and lines[end].strip():
        end += 1
    listed = [line.strip() for line in lines[start + 1 : end]]
    if entry in listed:
        return
    block = [f"    {item}\n" for item in sorted([*listed, entry])]
    ini_path.write_text("".join([*lines[: start + 1], *block, *lines[end:]]))
