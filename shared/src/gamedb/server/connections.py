"""Connections to a server: engines, plain psycopg connections, and any error as one masked line
(which URL to use, and masking it, is gamedb.server.urls)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import psycopg
from sqlalchemy import URL, Connection, Engine, create_engine, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, SQLAlchemyError
from sqlalchemy.pool import NullPool

from gamedb.errors import DatabaseUnavailable
from gamedb.names import EXTENSIONS_SCHEMA
from gamedb.server.urls import DRIVER, mask_url, redact

if TYPE_CHECKING:
    from gamedb.project import Project


def migration_engine(url: URL | str) -> Engine:
    """An engine for migration runs: no pool, one dedicated connection per run."""
    return create_engine(url, poolclass=NullPool)


@contextmanager
def schema_migration_engine(project: Project, schema: str) -> Iterator[Engine]:
    """A migration engine on the server `schema` is placed on, disposed when the block ends."""
    from gamedb.server.placement import schema_route

    engine = migration_engine(schema_route(project, schema).url)
    try:
        yield engine
    finally:
        engine.dispose()


def connect(engine: Engine) -> Connection:
    """Open a connection, turning "server unreachable / login refused" into one masked line."""
    try:
        return engine.connect()
    except DBAPIError as exc:
        raise DatabaseUnavailable(f"cannot connect to {mask_url(engine.url)}: {db_error_line(exc)}") from None


def psycopg_connect(url: URL | str, *, autocommit: bool = False) -> psycopg.Connection:
    """A plain psycopg connection (for statements composed with psycopg.sql), errors masked.

    Connects with the parameters SQLAlchemy's psycopg dialect derives from the URL (never a
    re-rendered URL string), so a password with a space or a `?password=` works as for an engine.
    """
    parsed = make_url(url).set(drivername=DRIVER)
    try:
        _, params = parsed.get_dialect()().create_connect_args(parsed)
        return psycopg.connect(autocommit=autocommit, **params)
    except (psycopg.Error, ArgumentError, ValueError) as exc:
        raise DatabaseUnavailable(f"cannot connect to {mask_url(url)}: {db_error_line(exc)}") from None


def one_value(cursor: psycopg.Cursor[Any]) -> Any:
    """The first column of the one row a query always returns (count(*), SHOW, to_regclass(...))."""
    row = cursor.fetchone()
    assert row is not None, "a query that always returns a row returned none"
    return row[0]


def service_engine(schema: str, url: URL | str | None = None, **engine_options: Any) -> Engine:
    """An engine for a service's app sessions, e.g. `service_engine("auth")`.

    Sessions get the schema's statement_timeout and idle_in_transaction_session_timeout as connect
    options (on top of the login's own settings, which a login could RESET), search_path set to the
    service schema then `extensions` (where declared extensions' types and operators live), and pool
    pre-ping: an idle-in-transaction timeout (25P03) ends the connection.
    URL: the argument, else the schema's server by `[tool.gamedb.placement]` in the monorepo around
    the cwd (GAMEDB_URL or the embedded server for `default`, GAMEDB_URL_<NAME> for another), read
    when the engine is made: after `gamedb move`, a new engine (a restarted app) follows the schema.
    """
    from gamedb.discovery import discover_schemas, get_schema
    from gamedb.project import find_project
    from gamedb.server.placement import schema_route

    schemas = discover_schemas()
    info = get_schema(schema, schemas)
    if url is None:
        url = schema_route(find_project(), info.name).url
    options = " ".join(
        f"-c {name}={value}"
        for name, value in (
            ("statement_timeout", info.statement_timeout),
            ("idle_in_transaction_session_timeout", info.idle_in_transaction_session_timeout),
            ("search_path", f"{info.name},{EXTENSIONS_SCHEMA}"),  # citext's operators live in extensions
        )
    )
    engine_options.setdefault("pool_pre_ping", True)
    connect_args = {**engine_options.pop("connect_args", {}), "options": options}
    return create_engine(make_url(url).set(drivername=DRIVER), connect_args=connect_args, **engine_options)


def db_error_line(exc: BaseException) -> str:
    """The first line of a database error, without SQLAlchemy's statement dump, secrets masked."""
    orig = getattr(exc, "orig", None) or exc
    text = str(orig).strip().splitlines()
    line = text[0] if text else type(orig).__name__
    sqlstate = getattr(orig, "sqlstate", None)
    return redact(f"{line} [SQLSTATE {sqlstate}]" if sqlstate else line)


# SQLAlchemy appends a link to its docs to every message: noise for a user of gamedb
_BACKGROUND = re.compile(r"\s*\(Background on this error at: [^)]*\)")


def error_line(exc: BaseException) -> str:
    """Any error as one line, secrets masked: a database error's first line and SQLSTATE, else the message.

    A SQLAlchemy error caused by a database error (a connection lost mid-revision leaves "Can't
    reconnect until invalid transaction is rolled back") is reported as that database error.
    """
    if isinstance(exc, DBAPIError | psycopg.Error):
        return db_error_line(exc)
    if isinstance(exc, SQLAlchemyError):
        cause = database_cause(exc)
        if cause is not None:
            return db_error_line(cause)
    return redact(_BACKGROUND.sub("", " ".join(str(exc).split())) or type(exc).__name__)


def database_cause(exc: BaseException) -> BaseException | None:
    """The database error an exception was raised from or while handling, if any."""
    seen: set[int] = set()
    link: BaseException | None = exc
    while link is not None and id(link) not in seen:
        if isinstance(link, DBAPIError | psycopg.Error):
            return link
        seen.add(id(link))
        link = link.__cause__ or link.__context__
    return None
