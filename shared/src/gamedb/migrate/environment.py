"""What `migrations/env.py` runs: one schema per run, its own version table, nothing kept half-done.

A run is scoped to one schema (from `-x schema=NAME`, or handed over by the gamedb CLI). Online:
a dedicated connection sets its timeouts and role, a second one takes the schema's migration lock
(see gamedb.migrate.session), and the first COMMITS its prelude (a transaction left open before
`configure()` would make Alembic treat it as external and silently keep nothing), then applies
each revision in its own transaction. Offline (`--sql`): the same plan as one script wrapped in a single transaction,
broken only where a revision asks for it (gamedb.migrate.autocommit, gamedb.migrate.enum_ops).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from logging.config import fileConfig
from pathlib import Path
from typing import Any, Literal, Protocol

from alembic.config import Config
from alembic.environment import EnvironmentContext
from alembic.runtime.migration import MigrationContext, MigrationInfo
from alembic.script import Script
from alembic.util import CommandError

from gamedb.autogen import autogenerate_options
from gamedb.autogen.impl import OFFLINE_BREAKS_OPTION
from gamedb.discovery import SchemaInfo, discover_schemas, get_schema
from gamedb.errors import GamedbError, MissingSchemaArgument
from gamedb.migrate import checksums
from gamedb.migrate.autocommit import InvalidIndexes, OfflineBreaks
from gamedb.migrate.run_options import run_options
from gamedb.migrate.session import (
    OFFLINE_EPILOGUE,
    SchemaLock,
    offline_prelude,
    prepare_migration_session,
)
from gamedb.migrate.step_gate import step_gate
from gamedb.names import create_schema_sql, drop_schema_sql
from gamedb.project import Project
from gamedb.server.connections import connect, migration_engine
from gamedb.server.placement import schema_route

log = logging.getLogger("gamedb.migrate.environment")

# Alembic's notes while comparing ("Detected sequence ... assuming SERIAL", "Couldn't determine database
# type ..."): hundreds of lines at forty schemas, shown only with -v.
CHATTY_LOGGERS = ("alembic.autogenerate", "alembic.ddl")


def schema_version_tables(config: Config | None = None) -> dict[str, str]:
    """The seed's SCHEMA_VERSION_TABLES, computed from discovery: {"auth": "alembic_version_auth", ...}."""
    options = run_options(config) if config is not None else None
    schemas = options.schemas if options is not None else discover_schemas()
    return {name: info.version_table for name, info in schemas.items()}


def run_env(context: EnvironmentContext) -> None:
    """The body of migrations/env.py."""
    config = context.config
    options = run_options(config)
    try:
        if config.config_file_name and not (options and options.logging_configured):
            fileConfig(config.config_file_name, disable_existing_loggers=False)
            logging.getLogger("alembic.runtime.migration").addFilter(_quiet_preamble)
            if not (options and options.verbose):
                for name in CHATTY_LOGGERS:
                    logging.getLogger(name).setLevel(logging.WARNING)
        schema = target_schema(context)
        _ = schema.metadata  # import and check the models before anything touches the database
        if context.is_offline_mode():
            _run_offline(context, schema)
        else:
            _run_online(context, schema)
    except GamedbError as exc:
        if options is not None:  # launched by gamedb, which prints it as one line itself
            raise
        raise CommandError(str(exc)) from None  # plain `alembic` prints these as one FAILED line


def _quiet_preamble(record: logging.LogRecord) -> bool:
    """Drop Alembic's two lines of preamble on every run ("Context impl ...", "Will assume ...")."""
    return not record.getMessage().startswith(("Context impl", "Will assume"))


class RunContext(Protocol):
    """What target_schema reads of a run: an EnvironmentContext, or the module `alembic.context`
    that proxies the one in use (what env.py and a revision's helpers have at hand)."""

    @property
    def config(self) -> Config: ...

    def get_x_argument(self, as_dictionary: Literal[True]) -> dict[str, str]: ...


def target_schema(context: RunContext) -> SchemaInfo:
    """The schema this run works on: handed over by the CLI, or `-x schema=NAME`."""
    options = run_options(context.config)
    if options is not None and options.schema is not None:
        return options.schema
    schemas = options.schemas if options is not None else discover_schemas()
    name = context.get_x_argument(as_dictionary=True).get("schema")
    if not name:
        raise MissingSchemaArgument(f"missing -x schema=NAME (known schemas: {', '.join(schemas) or 'none installed'})")
    return get_schema(name, schemas)


def _configure_options(
    context: EnvironmentContext, schema: SchemaInfo, lock: SchemaLock | None = None
) -> dict[str, Any]:
    options = autogenerate_options(schema)
    callbacks = []
    if _loads_foreign_revisions(context, schema):
        callbacks.append(_refuse_foreign_revision(schema))
    if lock is not None:
        # a revision commits only while the run still holds the schema's lock and no invalid index is
        # left over; its checksum rows go in with it: one statement in the step's transaction
        callbacks.append(step_gate(schema, lock))
    else:  # offline: the step's checksum rows are written into the script
        callbacks.append(checksums.record_step(schema))
    handed = run_options(context.config)
    if handed is not None and handed.applied is not None:
        callbacks.append(_record_step(handed.applied))
    if callbacks:
        options["on_version_apply"] = callbacks
    return options


def _record_step(applied: list[tuple[tuple[str, ...], tuple[str, ...]]]) -> Callable[..., None]:
    def record(ctx: MigrationContext, step: MigrationInfo, heads: set[str], run_args: dict[str, Any]) -> None:
        applied.append((step.source_revision_ids, step.destination_revision_ids))

    return record


def _run_offline(context: EnvironmentContext, schema: SchemaInfo) -> None:
    options = _configure_options(context, schema)
    options[OFFLINE_BREAKS_OPTION] = OfflineBreaks(schema)
    context.configure(
        dialect_name="postgresql",
        literal_binds=True,
        transaction_per_migration=False,  # one schema's script is one all-or-nothing transaction
        **options,
    )
    breaks = context.get_context().opts[OFFLINE_BREAKS_OPTION]
    with context.begin_transaction():
        # the prelude creates schema alembic: Alembic emits the version table's CREATE before any revision
        context.get_context().impl.static_output(f"-- schema {schema.name}\n")
        guard = checksums.offline_guard_statement(schema, checksums.script_files(context.script))
        for statement in [*offline_prelude(schema), checksums.ensure_table_statement(schema), guard]:
            context.execute(statement)
        breaks.active = True  # an autocommit_block's COMMIT / BEGIN from here on
        context.run_migrations()
        breaks.active = False
        for statement in OFFLINE_EPILOGUE:
            context.execute(statement)


def _run_online(context: EnvironmentContext, schema: SchemaInfo) -> None:
    options = run_options(context.config)
    engine = options.engine if options is not None else None
    owns_engine = engine is None
    if engine is None:
        url = options.url if options is not None else None
        if url is None:
            ini = context.config.config_file_name
            project = Project(Path(ini).resolve().parent if ini else Path.cwd())
            url = schema_route(project, schema.name).url  # the schema's server ([tool.gamedb.placement])
        engine = migration_engine(url)
    try:
        with connect(engine) as connection:
            # autogenerate and check reflect: they keep the default search_path (see gamedb.migrate.session)
            compares_models = "revision_context" in _instance(context).context_opts
            lock = prepare_migration_session(
                connection, schema, runs_revisions=not compares_models, refuse_adoption=_is_upgrade(context)
            )
            try:
                # read in the transaction guard_run goes on with and commits
                invalid_indexes = InvalidIndexes(connection, schema, commit=False)
                lookup = checksums.script_lookup(context.script)
                checksums.guard_run(connection, schema, lookup, checksums.script_files(context.script))
                context.configure(
                    connection=connection,
                    # each revision commits alone, with its version row; an autocommit_block() needs it
                    transaction_per_migration=True,
                    **_configure_options(context, schema, lock),
                )
                try:
                    with context.begin_transaction():
                        context.run_migrations()
                except Exception as exc:
                    invalid_indexes.after_failure(exc)  # a failed concurrent build's index: dropped, and said
                    raise
            finally:
                lock.release()
    finally:
        if owns_engine:
            engine.dispose()


def _instance(context: EnvironmentContext) -> EnvironmentContext:
    # env.py hands over the module `alembic.context`, a proxy of the EnvironmentContext in use
    return getattr(context, "_proxy", None) or context


def _is_upgrade(context: EnvironmentContext) -> bool:
    """Whether this run is `upgrade` (Alembic's command.upgrade hands its inner function `upgrade` as fn).

    `stamp` is not: it is how a schema gamedb did not create is adopted on purpose.
    """
    fn = _instance(context).context_opts.get("fn")
    return getattr(fn, "__name__", None) == "upgrade"


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
            if not isinstance(revision, Script):  # "base" or None: no file to check
                continue
            path = revision.path
            if path and Path(path).resolve().parent != schema.versions_dir:
                raise CommandError(
                    f"revision {revision.revision} ({path}) is not in schema {schema.name!r}'s versions "
                    f"directory; target {schema.name}@head instead of heads"
                )

    return check


def init_revision_body(schema: SchemaInfo) -> dict[str, str]:
    """The seed's init revision for `schema`, as the lines script.py.mako puts first / last.

    The CLI hands this to the template (`RunOptions.init_revision`) when the schema
    has no revision yet, so the first revision creates the schema and its downgrade drops it.
    """
    create, drop = create_schema_sql(schema.name), drop_schema_sql(schema.name)
    return {"upgrade": f"op.execute({create!r})", "downgrade": f"op.execute({drop!r})"}
