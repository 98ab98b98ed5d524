"""The files of a new service, written from one template so every service looks alike.

`write_service` lays out `services/<name>/` (pyproject with the gamedb.schemas entry point,
package, models, empty versions directory). `register_in_place` makes such a service
discoverable without pip by writing its dist-info next to its package: the benchmark and the
tests use it to create many services quickly.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from gamedb.names import create_schema_sql, drop_schema_sql, validate_schema_name

PYPROJECT = """\
[build-system]
requires = ["hatchling"]
build-backend = "hatchling.build"

[project]
name = "game-{name}"
version = "0.1.0"
description = "The {name} service's PostgreSQL schema: models and Alembic revisions"
requires-python = ">=3.11"
dependencies = ["gamedb"]

[project.entry-points."gamedb.schemas"]
{name} = "game_{name}.schema:SCHEMA"

[tool.hatch.build.targets.wheel]
packages = ["src/game_{name}"]
"""

SCHEMA_MODULE = '''\
"""The {name} service's entry in `gamedb.schemas` (kept import-light: models load on demand)."""

from __future__ import annotations

from pathlib import Path

from gamedb import SchemaDeclaration

SCHEMA = SchemaDeclaration(
    models="game_{name}.models",
    versions=Path(__file__).with_name("versions"),
)
'''

MODELS_MODULE = '''\
"""The {name} service's tables, all in schema `{name}`."""

from __future__ import annotations

from sqlalchemy import MetaData
from sqlalchemy.orm import DeclarativeBase

from gamedb import NAMING_CONVENTION

metadata = MetaData(schema="{name}", naming_convention=NAMING_CONVENTION)


class Base(DeclarativeBase):
    metadata = metadata
'''


SERVICE_TESTS = '''\
"""gamedb's per-schema checks for {name}: one head, up/down/up, stairway, models match, own schema only,
rw can read. gamedb's pytest plugin collects them (as Test{title}Schema) from this one line."""

gamedb_schema = "{name}"


def test_rows_written_before_the_later_revisions_are_kept(schema_migrator):
    """A data-migration test: bring a throwaway database to a revision, write rows as {name}_owner,
    migrate, read them back. The service has no table yet, so this one makes its own; once a revision
    creates one, insert into it just below the revision that changes it (migrate_up_before) and assert
    what that revision made of the rows (migrate_up_to)."""
    schema_migrator.migrate_up_to(schema_migrator.revisions[0])
    schema_migrator.execute("CREATE TABLE example_rows (id int PRIMARY KEY, note text)")
    schema_migrator.insert_into("example_rows", [{{"id": 1, "note": "kept"}}])

    schema_migrator.migrate_up_to("head")

    assert schema_migrator.rows("example_rows") == [{{"id": 1, "note": "kept"}}]
'''

SERVICE_README = """\
# {name}

The `{name}` service's schema in database `game`: models in `src/game_{name}/models.py`,
revisions in `src/game_{name}/versions/` (branch label `{name}`, version table
`alembic.alembic_version_{name}`).

    gamedb -x schema={name} upgrade head
    gamedb revision -x schema={name} --autogenerate -m "what changed"
    nox -s "check(schema='{name}')"

An index on a live table is built concurrently, in a revision of its own (see gamedb's README):

    with op.get_context().autocommit_block():
        op.create_index("ix_name", "table", ["column"], schema="{name}",
                        postgresql_concurrently=True, if_not_exists=True)
"""


@dataclass(frozen=True)
class ServiceLayout:
    """Where a service's parts live."""

    name: str
    root: Path

    @property
    def distribution(self) -> str:
        return f"game-{self.name}"

    @property
    def src_dir(self) -> Path:
        return self.root / "src"

    @property
    def package_dir(self) -> Path:
        return self.src_dir / f"game_{self.name}"

    @property
    def versions_dir(self) -> Path:
        return self.package_dir / "versions"

    @property
    def models_file(self) -> Path:
        return self.package_dir / "models.py"


def write_service(services_dir: Path, name: str) -> ServiceLayout:
    """Write `services_dir/<name>/` for schema `name`; refuses an invalid name or an existing folder."""
    validate_schema_name(name)
    layout = ServiceLayout(name, services_dir / name)
    if layout.root.exists():
        raise FileExistsError(f"{layout.root} already exists")
    layout.versions_dir.mkdir(parents=True)
    (layout.root / "pyproject.toml").write_text(PYPROJECT.format(name=name))
    (layout.package_dir / "__init__.py").write_text(f'"""The {name} service\'s database schema."""\n')
    (layout.package_dir / "schema.py").write_text(SCHEMA_MODULE.format(name=name))
    layout.models_file.write_text(MODELS_MODULE.format(name=name))
    return layout


def write_service_extras(layout: ServiceLayout) -> list[Path]:
    """The parts a team gets beyond the package: a README and tests using gamedb's harness."""
    title = layout.name.title().replace("_", "")
    tests = layout.root / "tests" / f"test_{layout.name}_schema.py"
    tests.parent.mkdir(parents=True, exist_ok=True)
    tests.write_text(SERVICE_TESTS.format(name=layout.name, title=title))
    readme = layout.root / "README.md"
    readme.write_text(SERVICE_README.format(name=layout.name))
    return [readme, tests]


def register_in_place(layout: ServiceLayout, entry_point: str | None = None) -> Path:
    """Make the service discoverable when `layout.src_dir` is on sys.path, without installing it.

    `entry_point` overrides the line written to entry_points.txt (the tests use it to declare
    broken services). Returns the directory to put on sys.path.
    """
    dist_info = layout.src_dir / f"game_{layout.name}-0.1.0.dist-info"
    dist_info.mkdir(parents=True, exist_ok=True)
    (dist_info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {layout.distribution}\nVersion: 0.1.0\n")
    line = entry_point or f"{layout.name} = game_{layout.name}.schema:SCHEMA"
    (dist_info / "entry_points.txt").write_text(f"[gamedb.schemas]\n{line}\n")
    return layout.src_dir


REVISION_FILE = """\
\"\"\"{message}

Revision ID: {revision}
Revises: {down_revision}
\"\"\"

from __future__ import annotations

from alembic import op

revision: str = {revision!r}
down_revision: str | None = {down_revision!r}
branch_labels: tuple[str, ...] | None = {branch_labels!r}
depends_on: str | None = None


def upgrade() -> None:
{upgrade}


def downgrade() -> None:
{downgrade}
"""


def write_revision(
    layout: ServiceLayout,
    revision: str,
    down_revision: str | None,
    message: str,
    upgrade_sql: list[str],
    downgrade_sql: list[str],
) -> Path:
    """Write a revision of plain SQL statements; the first revision (no down_revision) is the init one."""
    if down_revision is None:
        upgrade_sql = [create_schema_sql(layout.name), *upgrade_sql]
        downgrade_sql = [*downgrade_sql, drop_schema_sql(layout.name)]

    def body(statements: list[str]) -> str:
        return "\n".join(f"    op.execute({s!r})" for s in statements) or "    pass"

    path = layout.versions_dir / f"{revision}_{message.replace(' ', '_')}.py"
    path.write_text(
        REVISION_FILE.format(
            message=message,
            revision=revision,
            down_revision=down_revision,
            branch_labels=(layout.name,) if down_revision is None else None,
            upgrade=body(upgrade_sql),
            downgrade=body(downgrade_sql),
        )
    )
    return path
