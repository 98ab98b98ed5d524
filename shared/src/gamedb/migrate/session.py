"""How a migration connection is prepared: one run per schema at a time, bounded waits, the owner's role.

Online, the prelude runs on a dedicated connection and ends with COMMIT (an open transaction before
Alembic's `configure()` would make it keep nothing). Offline, the same intent is written as SQL for
the transaction the script runs in.

The schema's migration lock is a SHARE UPDATE EXCLUSIVE lock on its version table
`alembic.alembic_version_<s>`, held by an open transaction on a second connection of the run.
Only the migrator side can take it: LOCK TABLE in that mode needs UPDATE, DELETE or TRUNCATE on the
table, which only `<s>_owner` (and a superuser) has, and app roles have no USAGE on schema `alembic`
(42501). An advisory lock, the previous design, can be taken by any login with the same key. The
mode conflicts with itself (one run per schema) but not with the ROW EXCLUSIVE of Alembic's own
version-row writes on the migration connection, nor with another schema's table. The holding
transaction has no transaction id and, in READ COMMITTED, no snapshot between statements, so CREATE
INDEX CONCURRENTLY in a revision (which waits for transactions with an older snapshot) never waits
for it, and it holds back no vacuum. Under REPEATABLE READ or SERIALIZABLE its first query would
take a snapshot it keeps to the end, and a concurrent build would wait for the run's own lock
forever (verified on PostgreSQL 15 and 18): the lock's session sets READ COMMITTED itself, whatever
`default_transaction_isolation` the server, database or login has.
A killed runner's idle connection is closed by the kernel and the server ends its transaction.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TypeVar

from psycopg import sql
from sqlalchemy import Connection, Engine, text
from sqlalchemy.exc import DBAPIError

from gamedb.discovery import SchemaInfo
from gamedb.errors import (
    ConcurrentBuildFailed,
    ForeignSchema,
    LockLost,
    SchemaLocked,
    VersionTableMissing,
)
from gamedb.extensions import ensure_extensions, extension_statements, see_extension_types
from gamedb.names import VERSION_TABLE_SCHEMA, quote_ident, quote_literal, search_path_for
from gamedb.timeouts import lock_retries, lock_timeout, lock_wait_seconds, statement_timeout

log = logging.getLogger("gamedb.migrate.session")
T = TypeVar("T")
Number = TypeVar("Number", int, float)

LOCK_POLL_SECONDS = 0.2
# Conflicts with itself, not with the ROW EXCLUSIVE of INSERT/UPDATE/DELETE on the version rows.
LOCK_MODE = "SHARE UPDATE EXCLUSIVE"


def check_session_settings() -> None:
    """Read every GAMEDB_LOCK_* / timeout variable now, so a bad one stops a run before it connects."""
    lock_timeout()
    statement_timeout()
    lock_wait_seconds()
    lock_retries()


def prepare_migration_session(
    connection: Connection, schema: SchemaInfo, *, runs_revisions: bool = True, refuse_adoption: bool = False
) -> SchemaLock:
    """Session prelude of a migration connection; ends with COMMIT so Alembic owns the transactions.

    Sets timeouts, makes the server abandon the run if this client dies, creates the `alembic`
    schema and the declared extensions if missing, SET ROLE to the schema's owner role when it
    exists and the login may use it, then takes the schema's migration lock on a second connection
    (see the module docstring) and returns it: the caller releases it. With `refuse_adoption`
    (an upgrade), a schema with no version row must not exist yet or be empty (ForeignSchema). A run
    that executes revisions gets the schema's search_path (its own schema, then `extensions`); a run
    that compares models (autogenerate, check) keeps the default one, which reflection needs to see
    other schemas' names qualified.
    """
    if schema.extensions:  # installed as the login, before SET ROLE
        _session_settings(connection, f"gamedb:{schema.name}")
        ensure_extensions(connection, schema)
        _set_owner_role(connection, schema)
    else:  # one round trip: settings and role together
        _session_settings(connection, f"gamedb:{schema.name}", owner=schema.owner_role)
    connection.commit()
    lock = acquire_schema_lock(connection.engine, schema)
    try:
        if runs_revisions:
            connection.execute(
                text("SELECT set_config('search_path', :path, false)"), {"path": search_path_for(schema.name)}
            )
        else:
            see_extension_types(connection)
        if refuse_adoption:
            refuse_foreign_schema(connection, schema)  # reads qualified names only: the search_path is no matter
        connection.commit()  # see the module docstring: an open transaction here loses the whole run
    except BaseException:
        lock.release()
        raise
    return lock


# One statement for a connection's settings. client_connection_check_interval (PostgreSQL 14+): a
# backend whose client was killed stops at the next check instead of running the rest of a long
# statement while holding the schema's lock; the subquery sets it only where it exists.
_SETTINGS = (
    "SELECT set_config('application_name', :name, false),"
    " set_config('lock_timeout', :lock_timeout, false),"
    " set_config('statement_timeout', :statement_timeout, false),"
    " (SELECT set_config('client_connection_check_interval', '1s', false)"
    " WHERE current_setting('server_version_num')::int >= 140000)"
)
# The owner role, set when it exists and the login may use it (no row: nothing set).
_OWNER_ROLE = (
    "SELECT set_config('role', rolname, false) FROM pg_roles WHERE rolname = :owner"
    " AND rolname <> current_user AND pg_has_role(current_user, oid, 'MEMBER')"
)


def _session_settings(connection: Connection, application_name: str, *, owner: str | None = None) -> None:
    """Timeouts and application_name, and (given `owner`) SET ROLE to it when the login may; committed."""
    statement = _SETTINGS
    if owner is not None:
        statement += ", (" + _OWNER_ROLE.replace(":owner", ":owner_role") + ")"
    values = {"name": application_name, "lock_timeout": lock_timeout(), "statement_timeout": statement_timeout()}
    connection.execute(text(statement), {**values, **({"owner_role": owner} if owner is not None else {})})
    connection.commit()


def _set_owner_role(connection: Connection, schema: SchemaInfo) -> None:
    connection.execute(text(_OWNER_ROLE), {"owner": schema.owner_role})


class SchemaLock:
    """The schema's migration lock: an open transaction holding LOCK_MODE on its version table.

    `pid` and `transaction` (its virtual transaction id, which no later transaction on the server
    reuses) name the holder in `pg_locks`, so that the migration connection can see there that the lock
    is still held (gamedb.migrate.step_gate) without a round trip on this connection.
    """

    def __init__(self, connection: Connection, schema: SchemaInfo, pid: int, transaction: str) -> None:
        self.connection = connection
        self.schema = schema
        self.pid = pid
        self.transaction = transaction

    def lost(self) -> LockLost:
        """The error of a revision that found the lock gone before it committed."""
        return LockLost(
            f"schema {self.schema.name!r}: the connection holding its migration lock was lost; "
            "the revision in flight was rolled back"
        )

    def release(self) -> None:
        """End the holding transaction and close its connection (best effort: a dead one released it)."""
        try:
            self.connection.rollback()
        except DBAPIError:
            log.debug("could not release the lock of %s; the session is gone", self.schema.name)
        finally:
            self.connection.close()


def _version_table(schema: SchemaInfo) -> sql.Composable:
    return sql.Identifier(VERSION_TABLE_SCHEMA, schema.version_table)


def acquire_schema_lock(engine: Engine, schema: SchemaInfo) -> SchemaLock:
    """Open a connection and hold the schema's migration lock on it, polling with NOWAIT.

    Creates schema `alembic` and the version table first if missing (with Alembic's own DDL, owned by the owner role
    when there is one), since the lock lives on it.
    """
    connection = engine.connect()
    try:
        # One request: the settings (the holding transaction stays open for the whole run: a server-wide
        # idle timeout must not end it, and it must keep no snapshot, see the module docstring), what is
        # there, and the owner's role (the version table is created as the owner)
        has_schema, table_exists, _ = connection.execute(
            text(
                _SETTINGS + ", set_config('idle_in_transaction_session_timeout', '0', false),"
                " set_config('default_transaction_isolation', 'read committed', false),"
                " EXISTS (SELECT FROM pg_namespace WHERE nspname = :alembic), to_regclass(:table) IS NOT NULL,"
                " (" + _OWNER_ROLE + ")"
            ),
            {
                "name": f"gamedb:{schema.name}:lock",
                "lock_timeout": lock_timeout(),
                "statement_timeout": statement_timeout(),
                "alembic": VERSION_TABLE_SCHEMA,
                "table": _version_table(schema).as_string(None),
                "owner": schema.owner_role,
            },
        ).one()[-3:]
        connection.commit()
        if not has_schema:  # schema `alembic` is created as the login (the owner role may not create schemas)
            connection.execute(text("RESET ROLE"))
            connection.commit()
            _ensure_version_table_schema(connection)
            _set_owner_role(connection, schema)
            connection.commit()
        if not table_exists:
            _ensure_version_table(connection, schema, known_missing=True)
        pid = connection.connection.dbapi_connection.info.backend_pid  # type: ignore[union-attr]
        statement = sql.SQL("LOCK TABLE {} IN " + LOCK_MODE + " MODE NOWAIT").format(_version_table(schema))
        deadline = time.monotonic() + lock_wait_seconds()
        announced = False
        while True:
            try:
                connection.exec_driver_sql(statement.as_string(None))
                held_by = text(
                    "SELECT virtualtransaction FROM pg_locks WHERE pid = pg_backend_pid() AND locktype = 'virtualxid'"
                )
                return SchemaLock(connection, schema, pid, connection.execute(held_by).scalar_one())
            except DBAPIError as exc:
                connection.rollback()  # never wait inside a transaction
                if getattr(exc.orig, "sqlstate", None) != "55P03":
                    raise
            if not announced:
                log.info("schema %s is being migrated by another session; waiting for it", schema.name)
                announced = True
            if time.monotonic() > deadline:
                raise SchemaLocked(
                    f"schema {schema.name!r}: another migration held its lock for over {lock_wait_seconds():.0f}s"
                )
            time.sleep(LOCK_POLL_SECONDS)
    except BaseException:
        connection.close()
        raise


def _ensure_version_table(connection: Connection, schema: SchemaInfo, *, known_missing: bool = False) -> None:
    name = f"{VERSION_TABLE_SCHEMA}.{schema.version_table}"
    find = text("SELECT to_regclass(:name) IS NOT NULL")
    qualified = {"name": quote_ident(VERSION_TABLE_SCHEMA) + "." + quote_ident(schema.version_table)}
    if not known_missing:
        exists = connection.execute(find, qualified).scalar()
        connection.commit()
        if exists:
            return
    create = sql.SQL(
        "CREATE TABLE IF NOT EXISTS {} (version_num VARCHAR(32) NOT NULL, CONSTRAINT {} PRIMARY KEY (version_num))"
    ).format(_version_table(schema), sql.Identifier(f"{schema.version_table}_pkc"))
    try:
        connection.exec_driver_sql(create.as_string(None))
        connection.commit()
    except DBAPIError as exc:  # a concurrent run created it first (23505), or this login may not
        connection.rollback()
        if connection.execute(find, qualified).scalar():
            connection.commit()
            return
        connection.commit()
        if getattr(exc.orig, "sqlstate", None) == "42501":
            raise VersionTableMissing(
                f"schema {schema.name!r}: its version table {name} does not exist and this login may not "
                "create it: an admin runs `gamedb roles apply`"
            ) from None
        raise


# Whatever a schema can hold, by catalog: any row means someone put something there. Indexes, a
# table's row type and array types come with another object and are not counted twice.
_SCHEMA_CONTENTS = (
    ("relation", "pg_class", "relnamespace", "relkind NOT IN ('i', 'I')"),
    ("type", "pg_type", "typnamespace", "typrelid = 0 AND typcategory <> 'A'"),
    ("function", "pg_proc", "pronamespace", "true"),
    ("collation", "pg_collation", "collnamespace", "true"),
    ("operator", "pg_operator", "oprnamespace", "true"),
    ("conversion", "pg_conversion", "connamespace", "true"),
    ("operator family", "pg_opfamily", "opfnamespace", "true"),
    ("text search configuration", "pg_ts_config", "cfgnamespace", "true"),
    ("text search dictionary", "pg_ts_dict", "dictnamespace", "true"),
    ("extension", "pg_extension", "extnamespace", "true"),
)


def refuse_foreign_schema(connection: Connection, schema: SchemaInfo) -> None:
    """Refuse to upgrade from base into an existing schema that holds objects (gamedb never adopts one).

    A schema with no version row was not made by gamedb's init revision, whose version row commits
    with it. An existing empty schema (`roles apply` creates one) is taken as if new.
    """
    counts = sql.SQL(", ").join(
        sql.SQL(
            "CASE WHEN n.oid IS NOT NULL THEN (SELECT count(*) FROM pg_catalog.{} WHERE {} = n.oid AND {}) END"
        ).format(sql.Identifier(table), sql.Identifier(column), sql.SQL(condition))
        for _, table, column, condition in _SCHEMA_CONTENTS
    )
    # one request: the version rows and, only when there are none, what the schema holds (CASE: a
    # schema with version rows, or none of that name, costs no catalog scan)
    query = sql.SQL(
        "SELECT v.rows, {} FROM (SELECT count(*) AS rows FROM {}) v"
        " LEFT JOIN pg_namespace n ON n.nspname = :schema AND v.rows = 0"
    ).format(counts, _version_table(schema))
    rows, *found = connection.execute(text(query.as_string(None)), {"schema": schema.name}).one()
    connection.commit()
    if rows or not any(found):
        return
    held = ", ".join(f"{n} {kind}(s)" for (kind, *_), n in zip(_SCHEMA_CONTENTS, found, strict=True) if n)
    raise ForeignSchema(
        f"schema {schema.name!r} already exists and holds {held} that no gamedb revision created (it has no "
        f"version row); gamedb does not adopt it: rename it, or adopt it on purpose once it matches a revision "
        f"with gamedb -x schema={schema.name} stamp REVISION"
    )


def _ensure_version_table_schema(connection: Connection) -> None:
    # CREATE SCHEMA IF NOT EXISTS needs CREATE on the database even when the schema exists:
    # look first, so a least-privilege migrator never needs that right.
    find = text("SELECT 1 FROM pg_namespace WHERE nspname = :name")
    exists = connection.execute(find, {"name": VERSION_TABLE_SCHEMA}).scalar()
    connection.commit()
    if exists:
        return
    try:
        connection.execute(text("CREATE SCHEMA IF NOT EXISTS " + quote_ident(VERSION_TABLE_SCHEMA)))
        connection.commit()
    except DBAPIError:  # a concurrent run created it first (23505)
        connection.rollback()
        if not connection.execute(find, {"name": VERSION_TABLE_SCHEMA}).scalar():
            raise
        connection.commit()


def offline_prelude(schema: SchemaInfo) -> list[str]:
    """The prelude as SQL for a script applied in one transaction (`psql -1 -f`)."""
    return [
        *offline_timeouts(),
        "CREATE SCHEMA IF NOT EXISTS " + quote_ident(VERSION_TABLE_SCHEMA),
        *extension_statements(schema.extensions),
        *offline_role_and_search_path(schema),
        _offline_lock(schema),
    ]


def offline_transaction_settings(schema: SchemaInfo) -> list[str]:
    """What a script's later transaction of the same schema sets first (after a COMMIT inside a revision)."""
    return [*offline_timeouts(), *offline_role_and_search_path(schema), _offline_lock(schema)]


def offline_timeouts(*, local: bool = True) -> list[str]:
    """The run's timeouts as SQL: for the script's transaction (SET LOCAL), or the session itself."""
    scope = "SET LOCAL" if local else "SET"
    return [
        f"{scope} lock_timeout = {quote_literal(lock_timeout())}",
        f"{scope} statement_timeout = {quote_literal(statement_timeout())}",
    ]


def _offline_lock(schema: SchemaInfo) -> str:
    """The online run's lock, taken by the script's transaction after SET ROLE, waiting up to GAMEDB_LOCK_WAIT.

    While the version table does not exist yet, the script's own CREATE TABLE of it serializes
    instead: a second creator waits for the first to commit, then fails.
    """
    table = sql.Identifier(VERSION_TABLE_SCHEMA, schema.version_table).as_string(None)
    wait = f"{max(1, round(lock_wait_seconds() * 1000))}ms"
    return (
        f"DO $gamedb$ BEGIN IF to_regclass({quote_literal(table)}) IS NOT NULL THEN "
        f"PERFORM set_config('lock_timeout', {quote_literal(wait)}, true); "
        f"LOCK TABLE {table} IN {LOCK_MODE} MODE; "
        f"PERFORM set_config('lock_timeout', {quote_literal(lock_timeout())}, true); END IF; END $gamedb$"
    )


def offline_role_and_search_path(schema: SchemaInfo, *, local: bool = True) -> list[str]:
    """SET ROLE to the owner (when it exists and the login may) and the schema's search_path, as SQL."""
    owner = quote_literal(schema.owner_role)
    return [
        "DO $gamedb$ BEGIN IF EXISTS (SELECT FROM pg_roles WHERE rolname = "
        f"{owner} AND rolname <> current_user AND pg_has_role(current_user, oid, 'MEMBER')) "
        f"THEN PERFORM set_config('role', {owner}, {'true' if local else 'false'}); END IF; END $gamedb$",
        f"{'SET LOCAL' if local else 'SET'} search_path = {search_path_for(schema.name)}",
    ]


OFFLINE_EPILOGUE = ["RESET ROLE"]


def retry_lock_timeouts(action: Callable[[], T], *, first_delay: float = 1.0) -> T:
    """Run `action`; when a DDL statement gave up waiting for a lock (55P03), wait and run it again.

    Safe because each revision is its own transaction: the retry resumes after the last revision
    that committed. The delay doubles each time; after `lock_retries()` retries the error stands.
    """
    check_session_settings()
    attempt = 0
    while True:
        try:
            return action()
        except (DBAPIError, ConcurrentBuildFailed) as exc:
            sqlstate = exc.sqlstate if isinstance(exc, ConcurrentBuildFailed) else getattr(exc.orig, "sqlstate", None)
            if sqlstate != "55P03" or attempt >= lock_retries():
                raise
            delay = first_delay * 2**attempt
            attempt += 1
            log.warning("lock_timeout hit (55P03); retry %d/%d in %.0fs", attempt, lock_retries(), delay)
            time.sleep(delay)
