"""Which server to use (GAMEDB_URL or the embedded one), masked URLs, and connections to it."""

from __future__ import annotations

import os
from typing import Any

import psycopg
from sqlalchemy import URL, Connection, Engine, create_engine, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError
from sqlalchemy.pool import NullPool

from gamedb import embedded
from gamedb.errors import DatabaseUnavailable
from gamedb.names import EXTENSIONS_SCHEMA
from gamedb.project import Project

URL_ENV = "GAMEDB_URL"
DRIVER = "postgresql+psycopg"


def resolve_url(project: Project) -> URL:
    """GAMEDB_URL if set (any postgresql:// spelling, driver forced to psycopg 3), else the embedded server."""
    raw = os.environ.get(URL_ENV, "").strip()
    if not raw:
        # the embedded server trusts local connections: drop its empty password altogether
        return make_url(embedded.embedded_libpq_uri(project.data_dir))._replace(drivername=DRIVER, password=None)
    try:
        url = make_url(raw)
    except ArgumentError:
        raise DatabaseUnavailable(f"{URL_ENV} is not a database URL (expected {DRIVER}://user@host/game)") from None
    if url.get_backend_name() != "postgresql":
        raise DatabaseUnavailable(f"{URL_ENV} must point to PostgreSQL, not {url.get_backend_name()!r}")
    return url.set(drivername=DRIVER)


def mask_url(url: URL | str) -> str:
    """The URL with its password replaced by ***, safe to print."""
    return make_url(url).render_as_string(hide_password=True)


def libpq_url(url: URL) -> str:
    """The URL as psql understands it; a password is shown as *** (psql prompts or reads PGPASSWORD)."""
    plain = url.set(drivername="postgresql")
    if plain.host is None and "host" in plain.query:
        # a Unix-socket server (the embedded one): keep the socket path readable
        query = "&".join(f"{k}={v}" for k, v in plain.query.items())
        return mask_url(plain.set(query={})).replace(f"/{plain.database}", f"/{plain.database}?{query}", 1)
    return mask_url(plain)


def migration_engine(url: URL) -> Engine:
    """An engine for migration runs: no pool, one dedicated connection per run."""
    return create_engine(url, poolclass=NullPool)


def connect(engine: Engine) -> Connection:
    """Open a connection, turning "server unreachable / login refused" into one masked line."""
    try:
        return engine.connect()
    except DBAPIError as exc:
        raise DatabaseUnavailable(f"cannot connect to {mask_url(engine.url)}: {db_error_line(exc)}") from None


def psycopg_connect(url: URL | str, *, autocommit: bool = False) -> psycopg.Connection:
    """A plain psycopg connection (for statements composed with psycopg.sql), errors masked."""
    libpq = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    try:
        return psycopg.connect(libpq, autocommit=autocommit)
    except psycopg.OperationalError as exc:
        raise DatabaseUnavailable(f"cannot connect to {mask_url(url)}: {db_error_line(exc)}") from None


def service_engine(schema: str, url: URL | str | None = None, **engine_options: Any) -> Engine:
    """An engine for a service's app sessions, e.g. `service_engine("auth")`.

    Sessions get the schema's statement_timeout and idle_in_transaction_session_timeout as connect
    options (on top of the login's own settings, which a login could RESET), search_path set to the
    service schema then `extensions` (where declared extensions' types and operators live), and pool
    pre-ping: an idle-in-transaction timeout (25P03) ends the connection.
    URL: the argument, else GAMEDB_URL, else the embedded server of the monorepo around the cwd.
    """
    from gamedb.discovery import discover_schemas, get_schema
    from gamedb.project import find_project

    info = get_schema(schema, discover_schemas())
    if url is None:
        url = resolve_url(find_project())
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
    """The first line of a database error, without SQLAlchemy's statement dump."""
    orig = getattr(exc, "orig", None) or exc
    text = str(orig).strip().splitlines()
    line = text[0] if text else type(orig).__name__
    sqlstate = getattr(orig, "sqlstate", None)
    return f"{line} [SQLSTATE {sqlstate}]" if sqlstate else line


def error_line(exc: BaseException) -> str:
    """Any error as one line: a database error's first line and SQLSTATE, else the message joined."""
    if isinstance(exc, DBAPIError):
        return db_error_line(exc)
    return " ".join(str(exc).split())
