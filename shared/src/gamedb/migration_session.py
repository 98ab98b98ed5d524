"""How a migration connection is prepared: one run per schema at a time, bounded waits, the owner's role.

Online, the prelude runs on a dedicated connection and ends with COMMIT (an open transaction before
Alembic's `configure()` would make it keep nothing). Offline, the same intent is written as SQL for
the transaction the script runs in.
"""

from __future__ import annotations

import logging
import math
import os
import re
import time
from collections.abc import Callable
from typing import TypeVar

from sqlalchemy import Connection, text
from sqlalchemy.exc import DBAPIError

from gamedb.discovery import SchemaInfo
from gamedb.errors import GamedbError, InvalidSetting
from gamedb.extensions import ensure_extensions, extension_statements, see_extension_types
from gamedb.names import VERSION_TABLE_SCHEMA, quote_ident, quote_literal, search_path_for

log = logging.getLogger("gamedb.migration_session")
T = TypeVar("T")

# Advisory-lock key space: (class id, hashtext(schema)); the class id spells "gdb1".
LOCK_CLASS_ID = 0x67646231
LOCK_POLL_SECONDS = 0.2


# PostgreSQL's duration syntax for timeouts: a number with an optional unit (none = milliseconds)
_DURATION = re.compile(r"\d+(\.\d+)?\s*(us|ms|s|min|h|d)?")


def _env_duration(name: str, default: str) -> str:
    value = os.environ.get(name, "").strip() or default  # set but empty = unset, as for GAMEDB_URL
    if not _DURATION.fullmatch(value):
        raise InvalidSetting(f"{name}={value!r} is not a duration (e.g. 500ms, 2s, 30min)")
    return value


def _env_number(name: str, default: str, kind: Callable[[str], T]) -> T:
    value = os.environ.get(name, "").strip() or default
    try:
        number = kind(value)
    except ValueError:
        number = None
    if number is None or not math.isfinite(number) or number < 0:
        what = "a whole number" if kind is int else "a number (seconds)"
        raise InvalidSetting(f"{name}={value!r} is not {what} of 0 or more")
    return number


def lock_timeout() -> str:
    """How long a DDL statement may wait for a table lock (below the apps' statement_timeout)."""
    return _env_duration("GAMEDB_LOCK_TIMEOUT", "2s")


def statement_timeout() -> str:
    """The longest single statement of a migration."""
    return _env_duration("GAMEDB_MIGRATION_STATEMENT_TIMEOUT", "30min")


def lock_wait_seconds() -> float:
    """How long a run waits for another run of the same schema to finish."""
    return _env_number("GAMEDB_LOCK_WAIT", "600", float)


def check_session_settings() -> None:
    """Read every GAMEDB_LOCK_* / timeout variable now, so a bad one stops a run before it connects."""
    lock_timeout()
    statement_timeout()
    lock_wait_seconds()
    lock_retries()


def prepare_migration_session(connection: Connection, schema: SchemaInfo, *, runs_revisions: bool = True) -> None:
    """Session prelude of a migration connection; ends with COMMIT so Alembic owns the transactions.

    Takes the schema's advisory lock by polling pg_try_advisory_lock outside any transaction (a
    blocking pg_advisory_lock deadlocks with CREATE INDEX CONCURRENTLY), sets timeouts, makes the
    server abandon the run if this client dies, creates the `alembic` schema and the declared
    extensions if missing and, when the schema's owner role exists and the login may use it, SET ROLE
    to it. A run that executes revisions gets the schema's search_path (its own schema, then
    `extensions`); a run that compares models (autogenerate, check) keeps the default one, which
    reflection needs to see other schemas' names qualified.
    """
    connection.execute(
        text(
            "SELECT set_config('application_name', 'gamedb:' || :schema, false),"
            " set_config('lock_timeout', :lock_timeout, false),"
            " set_config('statement_timeout', :statement_timeout, false)"
        ),
        {"schema": schema.name, "lock_timeout": lock_timeout(), "statement_timeout": statement_timeout()},
    )
    # PostgreSQL 14+: a backend whose client was killed stops at the next check instead of running
    # the rest of a long statement while holding the schema's lock.
    connection.execute(
        text(
            "SELECT set_config('client_connection_check_interval', '1s', false)"
            " WHERE current_setting('server_version_num')::int >= 140000"
        )
    )
    connection.commit()
    acquire_schema_lock(connection, schema)
    _ensure_version_table_schema(connection)
    ensure_extensions(connection, schema)
    owner = connection.execute(
        text(
            "SELECT rolname FROM pg_roles WHERE rolname = :owner"
            " AND rolname <> current_user AND pg_has_role(current_user, oid, 'MEMBER')"
        ),
        {"owner": schema.owner_role},
    ).scalar()
    if owner is not None:
        connection.execute(text("SELECT set_config('role', :owner, false)"), {"owner": owner})
    if runs_revisions:
        connection.execute(
            text("SELECT set_config('search_path', :path, false)"), {"path": search_path_for(schema.name)}
        )
    else:
        see_extension_types(connection)
    connection.commit()  # see the module docstring: an open transaction here loses the whole run


def acquire_schema_lock(connection: Connection, schema: SchemaInfo) -> None:
    """Hold the schema's session-level advisory lock, polling outside any transaction."""
    bind = {"schema": schema.name, "cls": LOCK_CLASS_ID}
    deadline = time.monotonic() + lock_wait_seconds()
    announced = False
    while True:
        got = connection.execute(text("SELECT pg_try_advisory_lock(:cls, hashtext(:schema))"), bind).scalar()
        connection.commit()  # never wait inside a transaction
        if got:
            return
        if not announced:
            log.info("schema %s is being migrated by another session; waiting for it", schema.name)
            announced = True
        if time.monotonic() > deadline:
            raise GamedbError(
                f"schema {schema.name!r}: another migration held its lock for over {lock_wait_seconds():.0f}s"
            )
        time.sleep(LOCK_POLL_SECONDS)


def release_schema_lock(connection: Connection, schema: SchemaInfo) -> None:
    """Release the lock (best effort: a dead connection has released it already)."""
    try:
        if connection.in_transaction():
            connection.rollback()
        connection.execute(
            text("SELECT pg_advisory_unlock(:cls, hashtext(:schema))"), {"cls": LOCK_CLASS_ID, "schema": schema.name}
        )
        connection.commit()
    except DBAPIError:
        log.debug("could not release the lock of %s; the session is gone", schema.name)


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
    lock, role = _offline_lock_and_timeouts(schema), _offline_role_and_search_path(schema)
    return [
        *lock,
        "CREATE SCHEMA IF NOT EXISTS " + quote_ident(VERSION_TABLE_SCHEMA),
        *extension_statements(schema.extensions),
        *role,
    ]


def offline_transaction_settings(schema: SchemaInfo) -> list[str]:
    """What a script's later transaction of the same schema sets first (after a COMMIT inside a revision)."""
    return [*_offline_lock_and_timeouts(schema), *_offline_role_and_search_path(schema)]


def _offline_lock_and_timeouts(schema: SchemaInfo) -> list[str]:
    return [
        f"SELECT pg_advisory_xact_lock({LOCK_CLASS_ID}, hashtext({quote_literal(schema.name)}))",
        f"SET LOCAL lock_timeout = {quote_literal(lock_timeout())}",
        f"SET LOCAL statement_timeout = {quote_literal(statement_timeout())}",
    ]


def _offline_role_and_search_path(schema: SchemaInfo) -> list[str]:
    owner = quote_literal(schema.owner_role)
    return [
        "DO $gamedb$ BEGIN IF EXISTS (SELECT FROM pg_roles WHERE rolname = "
        f"{owner} AND rolname <> current_user AND pg_has_role(current_user, oid, 'MEMBER')) "
        f"THEN PERFORM set_config('role', {owner}, true); END IF; END $gamedb$",
        f"SET LOCAL search_path = {search_path_for(schema.name)}",
    ]


OFFLINE_EPILOGUE = ["RESET ROLE"]


def lock_retries() -> int:
    """How many times a run that hit lock_timeout (55P03) is tried again."""
    return _env_number("GAMEDB_LOCK_RETRIES", "3", int)


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
        except DBAPIError as exc:
            if getattr(exc.orig, "sqlstate", None) != "55P03" or attempt >= lock_retries():
                raise
            delay = first_delay * 2**attempt
            attempt += 1
            log.warning("lock_timeout hit (55P03); retry %d/%d in %.0fs", attempt, lock_retries(), delay)
            time.sleep(delay)
