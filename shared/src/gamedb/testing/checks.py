"""Ready-made checks for one schema, enabled in a service's test module with one line:

    gamedb_schema = "auth"

(collected by gamedb's pytest plugin, `gamedb.testing.pytest_plugin`), or, the same checks by hand:

    from gamedb.testing import schema_checks

    TestAuthSchema = schema_checks("auth")

Each check runs on a throwaway database of a real server (GAMEDB_TEST_URL, an admin URL, or an
embedded PostgreSQL started once per test process): exactly one head; upgrade -> downgrade base ->
upgrade; the stairway (each revision up, down, up again, with the schema's catalog compared before
and after each down step); models match the database; revisions touch their own schema only; and,
under the role model, `<schema>_rw` can read every table.
"""

from __future__ import annotations

import os
import tempfile
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import psycopg
import pytest
from alembic import command
from psycopg import sql
from sqlalchemy import make_url

from gamedb.autogen.drift import schema_drift
from gamedb.discovery import SchemaInfo, discover_schemas, get_schema
from gamedb.errors import ProjectNotFound
from gamedb.migrate.config import make_config, script_directory
from gamedb.migrate.run_options import set_run_options
from gamedb.project import Project, find_project
from gamedb.roles.apply import apply_roles, create_login
from gamedb.server.connections import connect, migration_engine
from gamedb.server.urls import DRIVER

_ADMIN_URI: str | None = None


def admin_uri() -> str:
    """libpq URI of an admin connection: GAMEDB_TEST_URL, else an embedded server for this process."""
    global _ADMIN_URI
    if _ADMIN_URI is None:
        given = os.environ.get("GAMEDB_TEST_URL")
        if given:
            _ADMIN_URI = make_url(given).set(drivername="postgresql").render_as_string(hide_password=False)
        else:
            from gamedb.server import embedded

            data_dir = Path(tempfile.mkdtemp(prefix="gamedb-harness-"))
            _ADMIN_URI = embedded.start_server(data_dir, keep_running=False)
            _without_durability(_ADMIN_URI)
    return _ADMIN_URI


# A throwaway test server keeps nothing worth a flush to disk: without these, every commit of a
# test's DDL waits for fsync, and that wait was most of a database-heavy test's time.
NO_DURABILITY = {"fsync": "off", "synchronous_commit": "off", "full_page_writes": "off"}


def _without_durability(uri: str) -> None:
    """Turn off durability on the embedded server this process started for its tests (never on a
    server given by GAMEDB_TEST_URL: that one belongs to someone)."""
    with psycopg.connect(uri, autocommit=True) as conn:
        for name, value in NO_DURABILITY.items():
            conn.execute(sql.SQL("ALTER SYSTEM SET {} = {}").format(sql.Identifier(name), sql.Literal(value)))
        conn.execute("SELECT pg_reload_conf()")


class ThrowawayDatabase:
    """A database created for one test and dropped after it, with every role created meanwhile.

    Roles are cluster-wide: `drop()` removes those that did not exist when the database was made
    (their objects and grants in it first, logins before group roles).
    """

    def __init__(self, admin: str) -> None:
        self.name = f"gamedb_test_{uuid.uuid4().hex[:10]}"
        self.admin = admin
        self.libpq = make_url(admin).set(database=self.name).render_as_string(hide_password=False)
        # the SQLAlchemy URL a user would put in GAMEDB_URL
        self.url = make_url(self.libpq).set(drivername=DRIVER).render_as_string(hide_password=False)
        with psycopg.connect(admin, autocommit=True) as conn:
            self.roles_before = {r for (r,) in conn.execute("SELECT rolname FROM pg_roles")}
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(self.name)))

    def query(self, statement: str, params: Any = None) -> list[tuple[Any, ...]]:
        with psycopg.connect(self.libpq, autocommit=True) as conn:
            cur = conn.execute(statement, params)
            return cur.fetchall() if cur.description else []

    def login_uri(self, login: str) -> str:
        """This database as `login` (a test server trusts local logins)."""
        return make_url(self.libpq).set(username=login).render_as_string(hide_password=False)

    def schemas(self) -> set[str]:
        rows = self.query(
            r"SELECT nspname FROM pg_namespace WHERE nspname NOT LIKE 'pg\_%' AND nspname <> 'information_schema'"
        )
        return {r[0] for r in rows}

    def tables(self, schema: str) -> set[str]:
        return {r[0] for r in self.query("SELECT tablename FROM pg_tables WHERE schemaname = %s", (schema,))}

    def version_rows(self, schema: str) -> list[str] | None:
        """Rows of alembic.alembic_version_<schema>, or None when the table does not exist."""
        if self.query("SELECT to_regclass(%s)", (f"alembic.alembic_version_{schema}",))[0][0] is None:
            return None
        table = sql.Identifier("alembic", f"alembic_version_{schema}")
        with psycopg.connect(self.libpq, autocommit=True) as conn:
            return sorted(r[0] for r in conn.execute(sql.SQL("SELECT version_num FROM {}").format(table)))

    def drop(self) -> None:
        with psycopg.connect(self.libpq, autocommit=True) as conn:
            new = [r for (r,) in conn.execute("SELECT rolname FROM pg_roles") if r not in self.roles_before]
            for role in new:
                conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = %s", (role,))
                conn.execute(sql.SQL("DROP OWNED BY {} CASCADE").format(sql.Identifier(role)))
        with psycopg.connect(self.admin, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(self.name)))
            logins_first = sorted(new, key=lambda r: r.endswith(("_owner", "_rw")) or r == "migrator")
            for role in logins_first:
                conn.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(role)))


# Objects outside the schema under test; `extensions` holds the declared extensions, shared by all.
OBJECTS_OUTSIDE = """
SELECT n.nspname || '.' || c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname NOT IN (%s, 'alembic', 'extensions', 'pg_catalog', 'information_schema', 'pg_toast')
UNION ALL
SELECT n.nspname || '.' || t.typname FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
WHERE n.nspname NOT IN (%s, 'alembic', 'extensions', 'pg_catalog', 'information_schema', 'pg_toast')
UNION ALL
SELECT n.nspname || '.' || p.proname FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
WHERE n.nspname NOT IN (%s, 'alembic', 'extensions', 'pg_catalog', 'information_schema')
UNION ALL
SELECT 'schema ' || nspname FROM pg_namespace
WHERE nspname NOT IN (%s, 'alembic', 'extensions', 'public', 'pg_catalog', 'information_schema', 'pg_toast')
  AND nspname NOT LIKE 'pg\\_temp%%' AND nspname NOT LIKE 'pg\\_toast\\_temp%%'
ORDER BY 1
"""

# Everything a revision can leave in its schema, one line per object, comparable across runs; views,
# functions, triggers, policies and rules with their definitions as PostgreSQL prints them.
SCHEMA_CATALOG = """
WITH s AS (SELECT oid FROM pg_namespace WHERE nspname = %(schema)s)
SELECT 'relation ' || c.relname || ' (' || c.relkind::text || ')' FROM pg_class c, s WHERE c.relnamespace = s.oid
UNION ALL
SELECT 'column ' || c.relname || '.' || a.attname || ' ' || format_type(a.atttypid, a.atttypmod)
       || CASE WHEN a.attnotnull THEN ' not null' ELSE '' END
       || coalesce(' default ' || pg_get_expr(d.adbin, d.adrelid), '')
FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid JOIN s ON c.relnamespace = s.oid
LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
WHERE a.attnum > 0 AND NOT a.attisdropped
UNION ALL
SELECT 'type ' || t.typname || ' (' || t.typtype::text || ')'
       || coalesce(' ' || (SELECT string_agg(e.enumlabel, ',' ORDER BY e.enumsortorder)
                           FROM pg_enum e WHERE e.enumtypid = t.oid), '')
FROM pg_type t, s WHERE t.typnamespace = s.oid AND t.typtype IN ('e', 'd', 'r', 'm')
UNION ALL
SELECT 'function ' || p.oid::regprocedure::text
       || CASE WHEN p.prokind IN ('f', 'p', 'w') THEN ' ' || pg_get_functiondef(p.oid) ELSE '' END
FROM pg_proc p, s WHERE p.pronamespace = s.oid
UNION ALL
SELECT 'view ' || c.relname || ' ' || pg_get_viewdef(c.oid) FROM pg_class c, s
WHERE c.relnamespace = s.oid AND c.relkind IN ('v', 'm')
UNION ALL
SELECT 'trigger ' || t.tgname || ' ' || pg_get_triggerdef(t.oid) || ' ' || t.tgenabled::text
FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid JOIN s ON c.relnamespace = s.oid WHERE NOT t.tgisinternal
UNION ALL
SELECT 'policy ' || p.policyname || ' on ' || p.tablename || ' ' || p.permissive || ' ' || p.cmd || ' '
       || p.roles::text || coalesce(' USING ' || p.qual, '') || coalesce(' WITH CHECK ' || p.with_check, '')
FROM pg_policies p WHERE p.schemaname = %(schema)s
UNION ALL
SELECT 'rule ' || r.rulename || ' ' || r.definition FROM pg_rules r WHERE r.schemaname = %(schema)s
UNION ALL
SELECT 'row security ' || c.relname || ' ' || c.relrowsecurity::text || ' ' || c.relforcerowsecurity::text
FROM pg_class c, s WHERE c.relnamespace = s.oid AND (c.relrowsecurity OR c.relforcerowsecurity)
UNION ALL
SELECT 'constraint ' || co.conrelid::regclass::text || ' ' || co.conname || ' ' || pg_get_constraintdef(co.oid)
FROM pg_constraint co, s WHERE co.connamespace = s.oid
UNION ALL
SELECT 'extension ' || e.extname FROM pg_extension e, s WHERE e.extnamespace = s.oid
ORDER BY 1
"""


def schema_checks(schema: str) -> type:
    """A test class with every per-schema check for `schema`; assign it to a `Test...` name."""

    class SchemaChecks:
        @pytest.fixture
        def info(self) -> SchemaInfo:
            return get_schema(schema, discover_schemas())

        @pytest.fixture
        def project(self, info: SchemaInfo) -> Project:
            try:
                return find_project(info.versions_dir)  # the monorepo the service lives in
            except ProjectNotFound:
                return find_project()  # a service outside it, tested from the monorepo

        @pytest.fixture
        def db(self) -> Iterator[ThrowawayDatabase]:
            database = ThrowawayDatabase(admin_uri())
            yield database
            database.drop()

        def migrate(
            self, project: Project, info: SchemaInfo, db: ThrowawayDatabase, action: str, target: str | Sequence[str]
        ) -> None:  # target: a revision, or a merge's down_revision (its parents' ids)
            config = make_config(project, discover_schemas(), info)
            set_run_options(config, url=db.url, logging_configured=True)
            getattr(command, action)(config, target)

        def versions(self, info: SchemaInfo, db: ThrowawayDatabase) -> list[str]:
            return db.version_rows(info.name) or []

        def test_exactly_one_head(self, project: Project, info: SchemaInfo) -> None:
            heads = script_directory(make_config(project, discover_schemas(), info)).get_heads()
            assert len(heads) == 1, f"schema {schema} has {len(heads)} heads: {', '.join(heads)} (merge them)"

        def test_upgrade_downgrade_base_upgrade(
            self, project: Project, info: SchemaInfo, db: ThrowawayDatabase
        ) -> None:
            self.migrate(project, info, db, "upgrade", "head")
            head = self.versions(info, db)
            self.migrate(project, info, db, "downgrade", "base")
            assert self.versions(info, db) == []
            assert db.query("SELECT 1 FROM pg_namespace WHERE nspname = %s", (schema,)) == [], (
                f"downgrade base left schema {schema} behind"
            )
            self.migrate(project, info, db, "upgrade", "head")
            assert self.versions(info, db) == head

        def test_stairway(self, project: Project, info: SchemaInfo, db: ThrowawayDatabase) -> None:
            """Each revision up, down, up: every downgrade leaves the schema exactly as it found it."""
            script = script_directory(make_config(project, discover_schemas(), info))
            for revision in reversed(list(script.walk_revisions("base", "heads"))):
                before = db.query(SCHEMA_CATALOG, {"schema": schema})
                self.migrate(project, info, db, "upgrade", revision.revision)
                self.migrate(project, info, db, "downgrade", revision.down_revision or "base")
                after = db.query(SCHEMA_CATALOG, {"schema": schema})
                left = sorted(set(after) - set(before))
                lost = sorted(set(before) - set(after))
                assert not left and not lost, (
                    f"downgrade of {revision.revision} ({Path(revision.path).name}) left "
                    f"{[r[0] for r in left]} and removed {[r[0] for r in lost]}"
                )
                self.migrate(project, info, db, "upgrade", revision.revision)

        def test_models_match_the_database(self, project: Project, info: SchemaInfo, db: ThrowawayDatabase) -> None:
            self.migrate(project, info, db, "upgrade", "head")
            engine = migration_engine(db.url)
            try:
                with connect(engine) as conn:
                    drift = schema_drift(conn, info)
            finally:
                engine.dispose()
            assert drift == [], f"models and revisions of {schema} differ: {drift}"

        def test_revisions_touch_only_their_own_schema(
            self, project: Project, info: SchemaInfo, db: ThrowawayDatabase
        ) -> None:
            before = db.query(OBJECTS_OUTSIDE, (schema,) * 4)
            self.migrate(project, info, db, "upgrade", "head")
            after_upgrade = db.query(OBJECTS_OUTSIDE, (schema,) * 4)
            self.migrate(project, info, db, "downgrade", "base")
            after_downgrade = db.query(OBJECTS_OUTSIDE, (schema,) * 4)
            assert after_upgrade == before, f"revisions of {schema} created {sorted(set(after_upgrade) - set(before))}"
            assert after_downgrade == before

        def test_rw_role_can_read_every_table(self, project: Project, info: SchemaInfo, db: ThrowawayDatabase) -> None:
            schemas = discover_schemas()
            apply_roles(db.url, [info])
            login = f"{schema}_harness"
            create_login(db.url, login, schemas, schema=info, password=None)
            self.migrate(project, info, db, "upgrade", "head")
            tables = [t for (t,) in db.query("SELECT tablename FROM pg_tables WHERE schemaname = %s", (schema,))]
            denied = []
            with psycopg.connect(db.login_uri(login), autocommit=True) as conn:
                for table in sorted(tables):
                    try:
                        conn.execute(sql.SQL("SELECT * FROM {} LIMIT 1").format(sql.Identifier(schema, table)))
                    except psycopg.errors.InsufficientPrivilege:
                        denied.append(table)
            assert denied == [], f"{info.rw_role} cannot read {', '.join(denied)}"

    SchemaChecks.__name__ = SchemaChecks.__qualname__ = f"Test{schema.title().replace('_', '')}Schema"
    return SchemaChecks
