"""What `migrations/env.py` runs: one schema per run, its own version table, nothing kept half-done.

A run is scoped to one schema (from `-x schema=NAME`, or handed over by the gamedb CLI). Online:
a dedicated connection takes the schema's advisory lock, sets its timeouts and role, COMMITS that
prelude (a transaction left open before `configure()` would make Alembic treat it as external and
silently keep nothing), then applies each revision in its own transaction. Offline (`--sql`): the
same plan as one script wrapped in a single transaction.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from logging.config import fileConfig
from pathlib import Path
from typing import Any

from alembic.environment import EnvironmentContext
from alembic.runtime.migration import MigrationContext, MigrationInfo
from alembic.util import CommandError
from sqlalchemy import Connection, text

from gamedb.database import connect, migration_engine, resolve_url
from gamedb.discovery import SchemaInfo, discover_schemas, get_schema
from gamedb.errors import GamedbError, MissingSchemaArgument
from gamedb.names import VERSION_TABLE_SCHEMA, quote_ident
from gamedb.project import Project

log = logging.getLogger("gamedb.runtime")

# Keys of Config.attributes through which the gamedb CLI hands a run its context.
ATTR_SCHEMAS = "gamedb.schemas"
ATTR_SCHEMA = "gamedb.schema"
ATTR_URL = "gamedb.url"
ATTR_LOGGING_DONE = "gamedb.logging_configured"
ATTR_INIT_REVISION = "gamedb.init_revision"

# Advisory-lock key space: (class id, hashtext(schema)); the class id spells "gdb1".
LOCK_CLASS_ID = 0x67646231
LOCK_POLL_SECONDS = 0.5
LOCK_WAIT_SECONDS = float(os.environ.get("GAMEDB_LOCK_WAIT", "600"))
LOCK_TIMEOUT = os.environ.get("GAMEDB_LOCK_TIMEOUT", "2s")
MIGRATION_STATEMENT_TIMEOUT = os.environ.get("GAMEDB_MIGRATION_STATEMENT_TIMEOUT", "30min")


def schema_version_tables() -> dict[str, str]:
    """The seed's SCHEMA_VERSION_TABLES, computed from discovery: {"auth": "alembic_version_auth", ...}."""
    return {name: info.version_table for name, info in discover_schemas().items()}


def run_env(context: EnvironmentContext) -> None:
    """The body of migrations/env.py."""
    config = context.config
    launched_by_gamedb = ATTR_SCHEMA in config.attributes
    try:
        if config.config_file_name and not config.attributes.get(ATTR_LOGGING_DONE):
            fileConfig(config.config_file_name, disable_existing_loggers=False)
            logging.getLogger("alembic.runtime.migration").addFilter(_quiet_preamble)
        schema = target_schema(context)
        _ = schema.metadata  # import and check the models before anything touches the database
        if context.is_offline_mode():
            _run_offline(context, schema)
        else:
            _run_online(context, schema)
    except GamedbError as exc:
        if launched_by_gamedb:
            raise
        raise CommandError(str(exc)) from None  # plain `alembic` prints these as one FAILED line


def _quiet_preamble(record: logging.LogRecord) -> bool:
    """Drop Alembic's two lines of preamble on every run ("Context impl ...", "Will assume ...")."""
    return not record.getMessage().startswith(("Context impl", "Will assume"))


def target_schema(context: EnvironmentContext) -> SchemaInfo:
    """The schema this run works on: handed over by the CLI, or `-x schema=NAME`."""
    attrs = context.config.attributes
    if attrs.get(ATTR_SCHEMA) is not None:
        return attrs[ATTR_SCHEMA]
    schemas = attrs.get(ATTR_SCHEMAS) or discover_schemas()
    name = context.get_x_argument(as_dictionary=True).get("schema")
    if not name:
        raise MissingSchemaArgument(f"missing -x schema=NAME (known schemas: {', '.join(schemas) or 'none installed'})")
    return get_schema(name, schemas)


def include_only(schema: SchemaInfo) -> Callable[[str | None, str, dict[str, Any]], bool]:
    """Autogenerate filter: reflect the target schema only (not public, not alembic, no other service)."""

    def include_name(name: str | None, type_: str, parent_names: dict[str, Any]) -> bool:
        if type_ == "schema":
            return name == schema.name
        return True

    return include_name


def _configure_options(context: EnvironmentContext, schema: SchemaInfo) -> dict[str, Any]:
    options: dict[str, Any] = {
        "target_metadata": schema.metadata,
        "version_table": schema.version_table,
        "version_table_schema": VERSION_TABLE_SCHEMA,
        "include_schemas": True,
        "include_name": include_only(schema),
        "compare_type": True,
    }
    if _loads_foreign_revisions(context, schema):
        options["on_version_apply"] = _refuse_foreign_revision(schema)
    return options


def _run_offline(context: EnvironmentContext, schema: SchemaInfo) -> None:
    context.configure(
        dialect_name="postgresql",
        literal_binds=True,
        transaction_per_migration=False,  # the reviewed script is one all-or-nothing transaction
        **_configure_options(context, schema),
    )
    with context.begin_transaction():
        # Alembic emits the version table's CREATE before the first revision; its schema must exist.
        context.execute("CREATE SCHEMA IF NOT EXISTS " + quote_ident(VERSION_TABLE_SCHEMA))
        context.run_migrations()


def _run_online(context: EnvironmentContext, schema: SchemaInfo) -> None:
    attrs = context.config.attributes
    url = attrs.get(ATTR_URL)
    if url is None:
        ini = context.config.config_file_name
        url = resolve_url(Project(Path(ini).resolve().parent if ini else Path.cwd()))
    engine = migration_engine(url)
    try:
        with connect(engine) as connection:
            prepare_migration_session(connection, schema)
            try:
                context.configure(
                    connection=connection,
                    transaction_per_migration=True,  # each revision commits alone, with its version row
                    **_configure_options(context, schema),
                )
                with context.begin_transaction():
                    context.run_migrations()
            finally:
                if connection.in_transaction():
                    connection.rollback()
                connection.execute(
                    text("SELECT pg_advisory_unlock(:cls, hashtext(:schema))"),
                    {"cls": LOCK_CLASS_ID, "schema": schema.name},
                )
                connection.commit()
    finally:
        engine.dispose()


def prepare_migration_session(connection: Connection, schema: SchemaInfo) -> None:
    """Session prelude of a migration connection; ends with COMMIT so Alembic owns the transactions.

    Takes the schema's advisory lock by polling pg_try_advisory_lock outside any transaction (a
    blocking pg_advisory_lock deadlocks with CREATE INDEX CONCURRENTLY), sets timeouts, creates the
    `alembic` schema if missing and, when the schema's owner role exists, SET ROLE to it.
    """
    bind = {"schema": schema.name, "cls": LOCK_CLASS_ID}
    connection.execute(text("SELECT set_config('application_name', 'gamedb:' || :schema, false)"), bind)
    connection.commit()
    _acquire_schema_lock(connection, schema)
    connection.execute(
        text(
            "SELECT set_config('lock_timeout', :lock_timeout, false),"
            " set_config('statement_timeout', :statement_timeout, false)"
        ),
        {"lock_timeout": LOCK_TIMEOUT, "statement_timeout": MIGRATION_STATEMENT_TIMEOUT},
    )
    _ensure_version_table_schema(connection)
    owner = connection.execute(
        text(
            "SELECT rolname FROM pg_roles WHERE rolname = :owner"
            " AND rolname <> current_user AND pg_has_role(current_user, oid, 'MEMBER')"
        ),
        {"owner": schema.owner_role},
    ).scalar()
    if owner is not None:
        connection.execute(text("SELECT set_config('role', :owner, false)"), {"owner": owner})
    connection.commit()  # see the module docstring: an open transaction here loses the whole run


def _acquire_schema_lock(connection: Connection, schema: SchemaInfo) -> None:
    bind = {"schema": schema.name, "cls": LOCK_CLASS_ID}
    deadline = time.monotonic() + LOCK_WAIT_SECONDS
    announced = False
    while True:
        got = connection.execute(text("SELECT pg_try_advisory_lock(:cls, hashtext(:schema))"), bind).scalar()
        connection.commit()  # never wait inside a transaction
        if got:
            return
        if not announced:
            log.info("schema %s is being migrated by another session; waiting for its lock", schema.name)
            announced = True
        if time.monotonic() > deadline:
            raise GamedbError(
                f"schema {schema.name!r}: another migration held its lock for over {LOCK_WAIT_SECONDS:.0f}s"
            )
        time.sleep(LOCK_POLL_SECONDS)


def _ensure_version_table_schema(connection: Connection) -> None:
    # CREATE SCHEMA IF NOT EXISTS needs CREATE on the database even when the schema exists:
    # look first, so a least-privilege migrator never needs that right.
    exists = connection.execute(
        text("SELECT 1 FROM pg_namespace WHERE nspname = :name"), {"name": VERSION_TABLE_SCHEMA}
    ).scalar()
    connection.commit()
    if exists:
        return
    try:
        connection.execute(text("CREATE SCHEMA IF NOT EXISTS " + quote_ident(VERSION_TABLE_SCHEMA)))
        connection.commit()
    except Exception:
        connection.rollback()
        if not connection.execute(
            text("SELECT 1 FROM pg_namespace WHERE nspname = :name"), {"name": VERSION_TABLE_SCHEMA}
        ).scalar():
            raise
        connection.commit()


def _loads_foreign_revisions(context: EnvironmentContext, schema: SchemaInfo) -> bool:
    # The gamedb CLI narrows version_locations to one schema; plain `alembic` loads all of them.
    locations = context.script.version_locations or []
    return any(Path(loc).resolve() != schema.versions_dir for loc in locations)


def _refuse_foreign_revision(schema: SchemaInfo) -> Callable[..., None]:
    """Guard for plain `alembic`: a revision of another service must never land in this version table.

    It raises inside the revision's own transaction, so that revision is rolled back.
    """

    def check(ctx: MigrationContext, step: MigrationInfo, heads: set[str], run_args: dict[str, Any]) -> None:
        for revision in step.up_revisions:
            path = getattr(revision, "path", None)
            if path and Path(path).resolve().parent != schema.versions_dir:
                raise CommandError(
                    f"revision {revision.revision} ({path}) is not in schema {schema.name!r}'s versions "
                    f"directory; target {schema.name}@head instead of heads"
                )

    return check


def init_revision_body(schema: SchemaInfo) -> dict[str, str]:
    """The seed's init revision for `schema`, as the lines script.py.mako puts first / last.

    The CLI hands this to the template (`config.attributes[ATTR_INIT_REVISION]`) when the schema
    has no revision yet, so the first revision creates the schema and its downgrade drops it.
    """
    create = "CREATE SCHEMA IF NOT EXISTS " + quote_ident(schema.name)
    drop = "DROP SCHEMA IF EXISTS " + quote_ident(schema.name) + " CASCADE"
    return {"upgrade": f"op.execute({create!r})", "downgrade": f"op.execute({drop!r})"}
