"""Data-migration tests: a throwaway database of one schema, moved to a revision, given rows, moved on.

What pytest-alembic's `migrate_up_to` / `insert_into` do, per schema and under gamedb's role model:

    def test_display_names_are_filled_in(schema_migrator):
        schema_migrator.migrate_up_before("c3d4")          # the revision with the data step
        schema_migrator.insert_into("users", [{"id": 1, "handle": "ann"}])
        schema_migrator.migrate_up_to("c3d4")
        assert schema_migrator.rows("users", order_by="id") == [{"id": 1, "handle": "ann", "display": "ann"}]

The pytest fixture `schema_migrator` (gamedb's plugin) gives one for the test module's
`gamedb_schema`; `SchemaMigrator.create(name)` makes one by hand (close it after). The database has
the schema's roles applied (`<s>_owner`, `<s>_rw`), so revisions run as they do in production
(`SET ROLE <s>_owner`) and rows are written and read as the owner: a row the owner could not write
fails the test, a table created by a revision belongs to the owner.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from types import TracebackType
from typing import Any

import psycopg
from alembic import command
from alembic.script.revision import RevisionError
from alembic.util import CommandError
from psycopg import sql
from psycopg.rows import dict_row

from gamedb.discovery import SchemaInfo, discover_schemas, get_schema
from gamedb.errors import GamedbError, ProjectNotFound
from gamedb.migrate.config import make_config, script_directory
from gamedb.migrate.run_options import set_run_options
from gamedb.project import Project, find_project
from gamedb.roles.apply import apply_roles
from gamedb.testing.checks import ThrowawayDatabase, admin_uri


class DataMigrationError(GamedbError):
    """A data-migration test asked for something its schema does not have."""


def schema_project(info: SchemaInfo) -> Project:
    """The project (alembic.ini) a schema's revisions run under: the monorepo the service lives in,
    else the one the tests run from."""
    try:
        return find_project(info.versions_dir)
    except ProjectNotFound:
        return find_project()


class SchemaMigrator:
    """One schema on a throwaway database: move it between revisions, write and read rows as its owner."""

    def __init__(self, info: SchemaInfo, database: ThrowawayDatabase, project: Project) -> None:
        self.info = info
        self.database = database
        self.project = project
        self._schemas = discover_schemas()
        apply_roles(database.url, [info])

    @classmethod
    def create(cls, schema: str, admin: str | None = None) -> SchemaMigrator:
        """A new throwaway database (on GAMEDB_TEST_URL's server or the embedded one) for `schema`."""
        info = get_schema(schema, discover_schemas())
        database = ThrowawayDatabase(admin or admin_uri())
        try:
            return cls(info, database, schema_project(info))
        except BaseException:
            database.drop()
            raise

    def close(self) -> None:
        """Drop the database and the roles made for it."""
        self.database.drop()

    def __enter__(self) -> SchemaMigrator:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.close()

    # --- revisions --------------------------------------------------------------------------------

    def _config(self) -> Any:
        config = make_config(self.project, self._schemas, self.info)
        set_run_options(config, url=self.database.url, logging_configured=True)
        return config

    @property
    def revisions(self) -> list[str]:
        """The schema's revision ids, oldest first."""
        script = script_directory(self._config())
        return [r.revision for r in reversed(list(script.walk_revisions("base", "heads")))]

    def resolve(self, revision: str) -> str:
        """A revision id from an id, a unique prefix, `head` or `base` (returned as is)."""
        if revision in {"base", "head", "heads"}:
            return revision
        script = script_directory(self._config())
        try:
            found = script.get_revision(revision)
        except (CommandError, RevisionError) as exc:
            raise DataMigrationError(f"schema {self.info.name!r}: no revision {revision!r} ({exc})") from None
        if found is None:
            raise DataMigrationError(f"schema {self.info.name!r}: no revision {revision!r}")
        return found.revision

    @property
    def current(self) -> list[str]:
        """The schema's version rows ([] at base)."""
        return self.database.version_rows(self.info.name) or []

    def migrate_up_to(self, revision: str) -> None:
        """Upgrade to `revision` (an id, a unique prefix or `head`) from wherever the schema is."""
        command.upgrade(self._config(), self.resolve(revision))

    def migrate_up_before(self, revision: str) -> None:
        """Upgrade to the revision just below `revision` (base for the first one)."""
        target = self.resolve(revision)
        parent = script_directory(self._config()).get_revision(target).down_revision
        if parent is not None and not isinstance(parent, str):  # a merge: a tuple of its parents
            raise DataMigrationError(f"schema {self.info.name!r}: {target} merges {', '.join(parent)}: name one")
        if parent is not None:
            command.upgrade(self._config(), parent)

    def migrate_down_to(self, revision: str) -> None:
        """Downgrade to `revision` (an id, a unique prefix or `base`)."""
        command.downgrade(self._config(), self.resolve(revision))

    # --- rows ---------------------------------------------------------------------------------------

    def _connect(self) -> psycopg.Connection[dict[str, Any]]:
        conn = psycopg.connect(self.database.libpq, autocommit=True, row_factory=dict_row)
        conn.execute(sql.SQL("SET ROLE {}").format(sql.Identifier(self.info.owner_role)))
        conn.execute(sql.SQL("SET search_path = {}, extensions, pg_catalog").format(sql.Identifier(self.info.name)))
        return conn

    def insert_into(self, table: str, rows: Mapping[str, Any] | Iterable[Mapping[str, Any]]) -> None:
        """Insert rows (dicts of column -> value) into the schema's `table` as its owner, in one transaction."""
        batch = [rows] if isinstance(rows, Mapping) else list(rows)
        with self._connect() as conn, conn.transaction():
            for row in batch:
                statement = sql.SQL("INSERT INTO {} ({}) VALUES ({})").format(
                    sql.Identifier(self.info.name, table),
                    sql.SQL(", ").join(map(sql.Identifier, row)),
                    sql.SQL(", ").join(sql.Placeholder() * len(row)),
                )
                conn.execute(statement, list(row.values()))

    def rows(
        self, table: str, *, columns: Sequence[str] = (), order_by: Sequence[str] | str = ()
    ) -> list[dict[str, Any]]:
        """The rows of the schema's `table` as dicts, read as its owner (`columns`: only these)."""
        order = [order_by] if isinstance(order_by, str) else list(order_by)
        statement = sql.SQL("SELECT {} FROM {}").format(
            sql.SQL(", ").join(map(sql.Identifier, columns)) if columns else sql.SQL("*"),
            sql.Identifier(self.info.name, table),
        )
        if order:
            statement += sql.SQL(" ORDER BY {}").format(sql.SQL(", ").join(map(sql.Identifier, order)))
        with self._connect() as conn:
            return conn.execute(statement).fetchall()

    def execute(self, statement: str, params: Sequence[Any] | Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
        """Run one SQL statement as the owner, with the schema first on the search path; its rows, if any."""
        with self._connect() as conn:
            cursor = conn.execute(statement.encode(), params)  # bytes: a test's own literal SQL
            return cursor.fetchall() if cursor.description else []

    def __repr__(self) -> str:
        return f"<SchemaMigrator {self.info.name} on {self.database.name} at {self.current or 'base'}>"
