"""Hostile tests of `gamedb move`: messy real data, drift, concurrent and interrupted moves, bad input.

Two real servers, as in test_move.py: an embedded source with logical WAL and a TCP listener, and the
suite's server as the target ("hot"). Services with unusual tables are scratch services (plain-SQL
revisions) put on PYTHONPATH next to the installed ones.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
import pytest

from conftest import REPO, Result, cli_env, free_port, run_cli, scrub_replication
from gamedb.scaffold.files import ServiceLayout
from gamedb.server import embedded
from gamedb.testing import ThrowawayDatabase

SCHEMA = "inventory"


@dataclass
class Pair:
    project: Path
    source: ThrowawayDatabase
    target: ThrowawayDatabase
    python_path: list[Path] = field(default_factory=list)

    def env(self, **extra: str) -> dict[str, str]:
        return {"GAMEDB_URL_HOT": self.target.url, **extra}

    def run(self, *args: str, url: str | None = None, **extra: str) -> Result:
        return run_cli(
            list(args),
            url=self.source.url if url is None else url,
            cwd=self.project,
            python_path=self.python_path,
            **self.env(**extra),
        )

    def spawn(self, *args: str, **extra: str) -> subprocess.Popen:
        return subprocess.Popen(
            [sys.executable, "-m", "gamedb", *args],
            cwd=self.project,
            env=cli_env(self.source.url, self.python_path, **self.env(**extra)),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    def placement(self) -> str:
        return (self.project / "pyproject.toml").read_text()

    def leftovers(self, schema: str = SCHEMA) -> list[str]:
        name = f"gamedb_move_{schema}"
        found = [f"publication {r[0]}" for r in self.source.query("SELECT pubname FROM pg_publication")]
        found += [f"slot {r[0]}" for r in self.source.query("SELECT slot_name FROM pg_replication_slots")]
        found += [
            f"subscription {r[0]}"
            for r in self.target.query(
                "SELECT subname FROM pg_subscription WHERE subdbid = "
                "(SELECT oid FROM pg_database WHERE datname = current_database())"
            )
        ]
        return [f for f in found if f.endswith(name)]


def make_pair(source_admin: str, target_admin: str, tmp_path: Path) -> Pair:
    project = tmp_path / "project"
    project.mkdir()
    for name in ("alembic.ini", "pyproject.toml"):
        shutil.copy(REPO / name, project / name)
    shutil.copytree(REPO / "migrations", project / "migrations")
    return Pair(project, ThrowawayDatabase(source_admin), ThrowawayDatabase(target_admin))


@pytest.fixture
def servers(source_admin: str, admin_uri: str, tmp_path: Path) -> Iterator[Pair]:
    pair = make_pair(source_admin, admin_uri, tmp_path)
    yield pair
    for db in (pair.target, pair.source):
        scrub_replication(db)
        db.drop()


def seeded(servers: Pair, rows: int = 50) -> None:
    for args in (["upgrade-all"], ["roles", "apply"]):
        result = servers.run(*args)
        assert result.code == 0, result.output
    servers.source.query(
        "INSERT INTO inventory.items (sku, name) SELECT 'sku' || g, 'item ' || g FROM generate_series(1, %s) g",
        (rows,),
    )


def error_lines(result: Result) -> list[str]:
    return [line for line in result.stderr.splitlines() if line.strip()]


def one_error(result: Result) -> str:
    """The single `gamedb: error:` line of a failed command (asserts there is exactly one, no traceback)."""
    assert result.code != 0, result.output
    lines = error_lines(result)
    assert len(lines) == 1 and lines[0].startswith("gamedb: error: "), result.output
    return lines[0]


def add_service(servers: Pair, scratch_service: Callable[..., ServiceLayout], name: str, up: list[str]) -> None:
    """A scratch service `name` whose one revision runs `up`, discoverable by every command of the pair."""
    from gamedb.scaffold.files import write_revision

    layout = scratch_service(name)
    write_revision(layout, "a1", None, "init", [], [])
    write_revision(layout, "a2", "a1", "tables", up, [])
    servers.python_path.append(layout.src_dir)


def finish(proc: subprocess.Popen, timeout: float = 120) -> Result:
    """A spawned move's result; one still running after `timeout` seconds is killed and reported hung."""
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        return Result(-999, out, err + "\n[hung: killed by the test]")
    return Result(proc.returncode, out, err)


def rows_of(db: ThrowawayDatabase, table: str) -> list[tuple]:
    return db.query(f"SELECT t::text FROM {table} t ORDER BY 1")


MESSY = [
    "CREATE TYPE messy.mood AS ENUM ('calm', 'angry', 'it''s complicated')",
    "CREATE TABLE messy.things (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, mood messy.mood, "
    "moods messy.mood[], tags text[], doc jsonb, big text, price numeric, f float8, at timestamptz, "
    "span interval, raw bytea, len int GENERATED ALWAYS AS (length(big)) STORED)",
    "CREATE TABLE messy.nokey (a int, b text, c jsonb)",
    "ALTER TABLE messy.nokey REPLICA IDENTITY FULL",
    "CREATE TABLE messy.parent (a int, b int, PRIMARY KEY (a, b))",
    "CREATE TABLE messy.child (id int PRIMARY KEY, a int, b int, "
    "FOREIGN KEY (a, b) REFERENCES messy.parent DEFERRABLE INITIALLY DEFERRED)",
    "CREATE SEQUENCE messy.ticket",
    "CREATE VIEW messy.thing_ids AS SELECT id FROM messy.things",
    "CREATE MATERIALIZED VIEW messy.thing_count AS SELECT count(*) AS n FROM messy.things",
]
MESSY_TABLES = ["messy.things", "messy.nokey", "messy.parent", "messy.child"]


def fill_messy(db: ThrowawayDatabase) -> None:
    db.query(
        "INSERT INTO messy.things (mood, moods, tags, doc, big, price, f, at, span, raw) VALUES "
        "('it''s complicated', '{calm,angry}', '{a,NULL,\"b c\"}', '{\"k\": [1, null, {\"x\": \"\\u00e9\"}]}', "
        "repeat('xyz', 400000), 1.10, 0.1, '2026-07-01 12:00+02', '1 day 2 hours', '\\x00ff'), "
        "(NULL, NULL, NULL, 'null', NULL, NULL, 'NaN', NULL, NULL, NULL), "
        "('calm', '{}', '{}', '{}', '', -0, '-Infinity', '-infinity', '0', '')"
    )
    db.query("INSERT INTO messy.nokey VALUES (1, 'dup', '{}'), (1, 'dup', '{}'), (NULL, NULL, NULL)")
    db.query("INSERT INTO messy.parent VALUES (1, 1), (1, 2)")
    db.query("INSERT INTO messy.child VALUES (1, 1, 1), (2, 1, 2), (3, NULL, 7)")
    db.query("SELECT nextval('messy.ticket') FROM generate_series(1, 41)")
    db.query("REFRESH MATERIALIZED VIEW messy.thing_count")


def test_messy_types_move_with_verify(servers: Pair, scratch_service) -> None:
    add_service(servers, scratch_service, "messy", MESSY)
    seeded(servers)
    fill_messy(servers.source)
    before = {t: rows_of(servers.source, t) for t in MESSY_TABLES}
    result = finish(servers.spawn("move", "messy", "--to", "hot", "--verify"))
    assert result.code == 0, result.output
    for table in MESSY_TABLES:
        assert rows_of(servers.target, table) == before[table], table
    assert servers.target.query("SELECT nextval('messy.ticket')") == [(42,)]
    assert servers.target.query("SELECT n FROM messy.thing_count") == [(3,)]
    assert servers.target.query("SELECT count(*) FROM messy.thing_ids") == [(3,)]
    new = servers.target.query("INSERT INTO messy.things (big) VALUES ('abc') RETURNING id, len")
    assert new == [(4, 3)]
    assert servers.leftovers("messy") == []


def test_partitioned_table_moves(servers: Pair, scratch_service) -> None:
    add_service(
        servers,
        scratch_service,
        "parts",
        [
            "CREATE TABLE parts.events (id int, at date, PRIMARY KEY (id, at)) PARTITION BY RANGE (at)",
            "CREATE TABLE parts.events_2026 PARTITION OF parts.events FOR VALUES FROM ('2026-01-01') TO ('2027-01-01')",
            "CREATE TABLE parts.events_2027 PARTITION OF parts.events FOR VALUES FROM ('2027-01-01') TO ('2028-01-01')",
        ],
    )
    seeded(servers)
    servers.source.query("INSERT INTO parts.events SELECT g, date '2026-06-01' + g FROM generate_series(1, 400) g")
    result = finish(servers.spawn("move", "parts", "--to", "hot", "--verify"), timeout=90)
    assert result.code == 0, result.output
    assert servers.target.query("SELECT count(*) FROM parts.events") == [(400,)]
    assert servers.leftovers("parts") == []


def hold(servers: Pair, step: str, *args: str) -> subprocess.Popen:
    """A move started in the background and stopped (sleeping) at `step`."""
    proc = servers.spawn("move", SCHEMA, "--to", "hot", *args, GAMEDB_MOVE_HOLD_AT=step)
    seen = ""
    while f"holding at step {step}" not in seen:
        line = proc.stdout.readline()
        assert line, proc.stderr.read()
        seen += line
    return proc


def test_a_second_move_while_one_runs_is_refused_and_leaves_the_first_alone(servers: Pair) -> None:
    seeded(servers)
    first = hold(servers, "copying")
    try:
        second = servers.run("move", SCHEMA, "--to", "hot")
        assert "another gamedb move of inventory is running" in one_error(second)
        assert "cleaning up" not in second.stdout
        # the first move's replication and half-made target are untouched
        assert sorted(servers.leftovers()) == [
            "publication gamedb_move_inventory",
            "slot gamedb_move_inventory",
            "subscription gamedb_move_inventory",
        ]
        assert SCHEMA in servers.target.schemas()
        assert 'inventory = "hot"' not in servers.placement()
    finally:
        first.kill()
        first.wait()


def assert_source_kept(servers: Pair, before_placement: str) -> None:
    """A failed move: nothing of it on either side, the placement as it was, the source writable."""
    assert servers.leftovers() == []
    assert SCHEMA not in servers.target.schemas()
    assert servers.placement() == before_placement
    servers.source.query("SET ROLE inventory_rw; INSERT INTO inventory.items (sku, name) VALUES ('after', 'x')")


def test_an_open_write_transaction_does_not_hang_the_move(servers: Pair) -> None:
    """A logical slot waits for every transaction with an xid that is open on the source server
    when it is made: an idle-in-transaction writer must not hang the move forever."""
    seeded(servers)
    before = servers.placement()
    with psycopg.connect(servers.source.libpq) as app:  # an app mid-transaction, holding its row lock
        app.execute("SET ROLE inventory_rw")
        app.execute("INSERT INTO inventory.items (sku, name) VALUES ('open-tx', 'x')")
        result = finish(servers.spawn("move", SCHEMA, "--to", "hot", GAMEDB_LOCK_TIMEOUT="300ms"), timeout=60)
        app.commit()  # the app's transaction outlives the move and commits on the source
    line = one_error(result)
    assert "open transaction" in line and "stays on default" in line, line
    assert_source_kept(servers, before)
    assert servers.source.query("SELECT count(*) FROM inventory.items WHERE sku = 'open-tx'") == [(1,)]


def test_a_table_lock_held_at_cut_over_fails_cleanly_and_keeps_the_source_writable(servers: Pair) -> None:
    seeded(servers)
    before = servers.placement()
    with psycopg.connect(servers.source.libpq) as app:  # holds ROW EXCLUSIVE, no xid: the slot doesn't wait
        app.execute("SET ROLE inventory_rw")
        app.execute("LOCK TABLE inventory.items IN ROW EXCLUSIVE MODE")
        result = finish(servers.spawn("move", SCHEMA, "--to", "hot", GAMEDB_LOCK_TIMEOUT="300ms"), timeout=60)
        app.execute("INSERT INTO inventory.items (sku, name) VALUES ('open-tx', 'x')")
        app.commit()
    line = one_error(result)
    assert "lock timeout" in line and "stays on default" in line, line
    assert_source_kept(servers, before)
    assert servers.source.query("SELECT count(*) FROM inventory.items WHERE sku = 'open-tx'") == [(1,)]


def test_target_in_another_timezone_still_verifies(servers: Pair) -> None:
    """Two servers configured differently (TimeZone, DateStyle, IntervalStyle): the same rows must
    compare equal with --verify (timestamptz::text depends on the session's TimeZone)."""
    seeded(servers)
    servers.target.query(
        f"ALTER DATABASE {servers.target.name} SET timezone = 'Asia/Tokyo';"
        f"ALTER DATABASE {servers.target.name} SET datestyle = 'SQL, DMY';"
        f"ALTER DATABASE {servers.target.name} SET extra_float_digits = 0"
    )
    result = servers.run("move", SCHEMA, "--to", "hot", "--verify")
    assert result.code == 0, result.output
    assert "row counts and checksums equal" in result.stdout


@pytest.mark.parametrize(
    ("drift", "named"),
    [
        ("CREATE TABLE inventory.hand_made (id int PRIMARY KEY)", "inventory.hand_made"),
        ("ALTER TABLE inventory.items ADD COLUMN note text", "inventory.items.note"),
        ("CREATE SEQUENCE inventory.tickets; SELECT nextval('inventory.tickets')", "inventory.tickets"),
    ],
)
def test_schema_drift_on_the_source_is_named_before_anything_changes(servers: Pair, drift: str, named: str) -> None:
    """An object made by hand on the source is not in the migrations the target is built from: the
    move must say which one, not fail later with a guess ("can it reach the source?")."""
    seeded(servers)
    servers.source.query(drift)
    before = servers.placement()
    line = one_error(servers.run("move", SCHEMA, "--to", "hot"))
    assert named in line and "migrations" in line, line
    assert_source_kept(servers, before)


@pytest.mark.parametrize(
    ("args", "env", "expected"),
    [
        (["nosuch", "--to", "hot"], {}, "unknown schema 'nosuch'"),
        ([SCHEMA, "--to", "Hot"], {}, "invalid server name 'Hot'"),
        ([SCHEMA, "--to", "../x"], {}, "invalid server name '../x'"),
        ([SCHEMA, "--to", ""], {}, "invalid server name ''"),
        ([SCHEMA, "--to", "cold"], {}, "server 'cold' has no URL: set GAMEDB_URL_COLD"),
        ([SCHEMA, "--to", "hot"], {"GAMEDB_URL_HOT": "mysql://u:hunter2@localhost/db"}, "must point to PostgreSQL"),
        ([SCHEMA, "--to", "hot"], {"GAMEDB_URL_HOT": "https://hunter2@example.invalid/x"}, "GAMEDB_URL_HOT"),
        (
            [SCHEMA, "--to", "hot"],
            {"GAMEDB_URL_HOT": "postgresql://u:hunter2@127.0.0.1:1/db"},
            "target server 'hot' is unreachable",
        ),
    ],
)
def test_bad_input_is_one_line_and_changes_nothing(servers: Pair, args: list[str], env: dict, expected: str) -> None:
    seeded(servers, rows=5)
    before = servers.placement()
    result = servers.run("move", *args, **env)
    line = one_error(result)
    assert expected in line, line
    assert "hunter2" not in result.output
    assert servers.placement() == before and servers.leftovers() == []
    assert SCHEMA not in servers.target.schemas() and SCHEMA in servers.source.schemas()


def test_malformed_placement_file_is_refused_before_anything(servers: Pair) -> None:
    seeded(servers, rows=5)
    (servers.project / "pyproject.toml").write_text(servers.placement() + "\n[tool.gamedb.placement\ninventory = \n")
    line = one_error(servers.run("move", SCHEMA, "--to", "hot"))
    assert "pyproject.toml can't be read" in line
    assert servers.leftovers() == [] and SCHEMA not in servers.target.schemas()


def test_target_user_without_rights_is_refused(servers: Pair) -> None:
    seeded(servers, rows=5)
    role = f"weak_{servers.target.name}"[:60]
    servers.target.query(f"CREATE ROLE \"{role}\" LOGIN PASSWORD 'hunter2'")
    try:
        from sqlalchemy import make_url

        weak = make_url(servers.target.url).set(username=role, password="hunter2").render_as_string(hide_password=False)
        assert weak != servers.target.url, servers.target.url
        result = servers.run("move", SCHEMA, "--to", "hot", GAMEDB_URL_HOT=weak)
        line = one_error(result)
        assert "may not create a subscription" in line and "hunter2" not in result.output
        assert servers.leftovers() == [] and SCHEMA not in servers.target.schemas()
    finally:
        servers.target.query(f'DROP ROLE "{role}"')


def test_a_password_in_the_source_url_is_never_printed(servers: Pair, source_admin: str) -> None:
    """The subscription carries the source URL's password in its conninfo; no line gamedb prints, on
    success or on a failed CREATE SUBSCRIPTION, may show it. A quote and a space in it must survive."""
    seeded(servers, rows=5)
    secret = "S3cr'et pw\\x"
    from urllib.parse import quote

    url = servers.source.url.replace("postgres@", f"postgres:{quote(secret, safe='')}@", 1)
    assert url != servers.source.url, servers.source.url
    servers.source.query("CREATE TABLE inventory.hand_made (id int PRIMARY KEY)")  # CREATE SUBSCRIPTION fails
    failed = servers.run("move", SCHEMA, "--to", "hot", url=url)
    assert failed.code != 0
    servers.source.query("DROP TABLE inventory.hand_made")
    moved = servers.run("move", SCHEMA, "--to", "hot", "--verify", url=url)
    assert moved.code == 0, moved.output
    for text in (failed.output, moved.output):
        assert "S3cr" not in text and quote(secret, safe="") not in text


def test_placement_file_that_cannot_be_written_says_so_and_a_rerun_finishes(servers: Pair) -> None:
    seeded(servers, rows=5)
    blocker = servers.project / "pyproject.toml.gamedb-tmp"
    blocker.mkdir()  # the atomic rewrite's temporary file can't be made
    result = servers.run("move", SCHEMA, "--to", "hot")
    line = one_error(result)
    assert "placement" in line and "rerun" in line, line
    assert 'inventory = "hot"' not in servers.placement()
    blocker.rmdir()
    rerun = servers.run("move", SCHEMA, "--to", "hot")
    assert rerun.code == 0, rerun.output
    assert "resuming an earlier move" in rerun.stdout
    assert 'inventory = "hot"' in servers.placement()


def test_placement_symlink_stays_a_symlink(servers: Pair) -> None:
    """Teams share one pyproject.toml through a symlink; the rewrite must edit the file it points to."""
    seeded(servers, rows=5)
    real = servers.project / "shared-pyproject.toml"
    (servers.project / "pyproject.toml").rename(real)
    (servers.project / "pyproject.toml").symlink_to(real.name)
    result = servers.run("move", SCHEMA, "--to", "hot")
    assert result.code == 0, result.output
    assert (servers.project / "pyproject.toml").is_symlink()
    assert 'inventory = "hot"' in real.read_text()


@pytest.fixture
def logical_pair(source_admin: str, admin_uri: str, tmp_path: Path) -> Iterator[Pair]:
    """Two servers that can both be a move's source: the suite's server when it has logical WAL,
    else (PostgreSQL 15 here runs wal_level=replica) a second embedded server with a TCP listener."""
    with psycopg.connect(admin_uri) as conn:
        logical = conn.execute("SHOW wal_level").fetchone()[0] == "logical"
    target_admin = admin_uri
    if not logical:
        port = free_port()
        data = Path(tempfile.mkdtemp(prefix="gamedb-attack-second-"))
        embedded.start_server(data, keep_running=False, listen_port=port)
        target_admin = f"postgresql://postgres@127.0.0.1:{port}/postgres"
    pair = make_pair(source_admin, target_admin, tmp_path)
    yield pair
    for db in (pair.target, pair.source):
        scrub_replication(db)
        db.drop()


def test_moving_there_and_back_and_dropping_the_source_keeps_roles_clean(logical_pair: Pair) -> None:
    servers = logical_pair
    seeded(servers, rows=20)
    assert servers.run("move", SCHEMA, "--to", "hot").code == 0
    back = servers.run("move", SCHEMA, "--to", "default", "--verify")
    assert back.code == 0, back.output
    assert 'inventory = "hot"' not in servers.placement()
    assert "placement: inventory removed from " in back.output  # not "= 'default' written": the line is gone
    assert servers.source.query("SELECT count(*) FROM inventory.items") == [(20,)]
    for args in (["roles", "check"], ["check-all"], ["status"]):
        checked = servers.run(*args)
        assert checked.code == 0, (args, checked.output)
    again = servers.run("move", SCHEMA, "--to", "hot", "--drop-source")
    assert again.code == 0, again.output
    assert SCHEMA not in servers.source.schemas()
    assert servers.target.query("SELECT count(*) FROM inventory.items") == [(20,)]
    for args in (["roles", "check"], ["check-all"], ["status"]):
        checked = servers.run(*args)
        assert checked.code == 0, (args, checked.output)


def test_source_server_stopped_during_the_copy(admin_uri: str, tmp_path: Path) -> None:
    """The source dies mid-move and the user presses Ctrl-C: the clean-up must not hang, must leave
    nothing on the target, and say in one line what it could not remove (the slot and publication on
    the source, for a rerun to clean up)."""
    port = free_port()
    data = Path(tempfile.mkdtemp(prefix="gamedb-attack-dying-"))
    embedded.start_server(data, keep_running=False, listen_port=port)
    servers = make_pair(f"postgresql://postgres@127.0.0.1:{port}/postgres", admin_uri, tmp_path)
    try:
        seeded(servers, rows=20)
        proc = hold(servers, "copying")
        embedded.stop_server(data)
        proc.send_signal(signal.SIGINT)
        result = finish(proc, timeout=60)
        assert result.code not in (0, -999), result.output
        subscriptions = "SELECT count(*) FROM pg_subscription WHERE subname = 'gamedb_move_inventory'"
        assert servers.target.query(subscriptions) == [(0,)]
        assert SCHEMA not in servers.target.schemas(), result.output
        line = one_error(result)
        assert "source server 'default'" in line and "rerun" in line, line
    finally:
        scrub_replication(servers.target)
        servers.target.drop()
        shutil.rmtree(data, ignore_errors=True)


def test_killed_after_a_drop_source_cut_over_the_rerun_keeps_the_data(servers: Pair) -> None:
    """--drop-source, killed after the cut-over committed (the source schema is gone, the target's
    marker still set): the target holds the only copy, and a rerun must finish the move, not clean
    the target up as a half-made one."""
    seeded(servers, rows=30)
    first = hold(servers, "committed", "--drop-source")
    first.kill()
    first.wait()
    assert SCHEMA not in servers.source.schemas()
    assert servers.target.query("SELECT count(*) FROM inventory.items") == [(30,)]
    rerun = servers.run("move", SCHEMA, "--to", "hot", "--drop-source")
    assert rerun.code == 0, rerun.output
    assert "resuming an earlier move" in rerun.stdout
    assert servers.target.query("SELECT count(*) FROM inventory.items") == [(30,)]
    assert 'inventory = "hot"' in servers.placement()


def test_a_migration_on_the_source_during_the_move_is_not_applied_twice(servers: Pair, scratch_service) -> None:
    """A data migration that runs on the source while the move copies: its row changes replicate,
    but the target's version table stays at the revision the move started from, so the next upgrade
    on the target runs it again. The move must refuse to cut over (or carry the revision)."""
    from gamedb.scaffold.files import write_revision

    layout = scratch_service("drifty")
    write_revision(layout, "a1", None, "init", [], [])
    write_revision(
        layout,
        "a2",
        "a1",
        "tables",
        ["CREATE TABLE drifty.t (id int PRIMARY KEY, n int)", "CREATE TABLE drifty.slow (id int PRIMARY KEY)"],
        [],
    )
    servers.python_path.append(layout.src_dir)
    seeded(servers)
    servers.source.query("INSERT INTO drifty.t SELECT g, 1 FROM generate_series(1, 10) g")
    move = servers.spawn("move", "drifty", "--to", "hot")
    watchdog = threading.Timer(90, move.kill)  # a move stuck before its copy must not hang the test
    watchdog.start()

    def read_until(text: str) -> None:
        seen = ""
        while text not in seen:
            line = move.stdout.readline()
            assert line, seen + move.stderr.read()
            seen += line

    read_until("target hot:")
    with psycopg.connect(servers.target.libpq) as locker:  # holds the copy into drifty.slow back
        locker.execute("LOCK TABLE drifty.slow IN SHARE MODE")
        read_until("copying")
        write_revision(layout, "a3", "a2", "double", ["UPDATE drifty.t SET n = n * 2"], [])
        upgraded = servers.run("-x", "schema=drifty", "upgrade", "head")
        assert upgraded.code == 0, upgraded.output
        locker.rollback()
    watchdog.cancel()
    result = finish(move, timeout=180)
    assert result.code != -999, result.output
    if result.code == 0:
        assert servers.run("upgrade-all").code == 0
        assert servers.target.query("SELECT DISTINCT n FROM drifty.t") == [(2,)]
    else:
        assert "migration" in one_error(result)
        assert servers.source.query("SELECT DISTINCT n FROM drifty.t") == [(2,)]


@pytest.mark.parametrize("drop_source", [False, True])
def test_another_schemas_view_of_the_moved_tables_is_named_before_anything(servers: Pair, drop_source: bool) -> None:
    """A view in another schema reading the moved tables would, after the move, read the frozen copy
    left behind (or, with --drop-source, be dropped by DROP SCHEMA ... CASCADE without a word)."""
    seeded(servers, rows=5)
    servers.source.query("CREATE VIEW auth.item_names AS SELECT name FROM inventory.items")
    before = servers.placement()
    args = ["--drop-source"] if drop_source else []
    line = one_error(servers.run("move", SCHEMA, "--to", "hot", *args))
    assert "auth.item_names" in line, line
    assert_source_kept(servers, before)
    assert servers.source.query("SELECT count(*) FROM auth.item_names") == [(6,)]


def test_updates_to_a_replica_identity_full_table_with_a_json_column(servers: Pair, scratch_service) -> None:
    """REPLICA IDENTITY FULL finds a changed row on the target by comparing every column, and `json`
    has no equality operator: updates during the move either land or the move refuses up front."""
    add_service(
        servers,
        scratch_service,
        "loose",
        ["CREATE TABLE loose.notes (k int, body json)", "ALTER TABLE loose.notes REPLICA IDENTITY FULL"],
    )
    seeded(servers)
    servers.source.query("INSERT INTO loose.notes SELECT g, '{\"v\": 0}' FROM generate_series(1, 20) g")
    stop = threading.Event()

    def update() -> None:
        with psycopg.connect(servers.source.libpq, autocommit=True) as conn:
            n = 0
            while not stop.is_set():
                n += 1
                try:
                    conn.execute("UPDATE loose.notes SET body = json_build_object('v', %s) WHERE k = 1", (n,))
                except psycopg.Error:
                    return  # the table moved away
                time.sleep(0.01)

    writer = threading.Thread(target=update, daemon=True)
    writer.start()
    result = finish(servers.spawn("move", "loose", "--to", "hot"), timeout=200)
    stop.set()
    writer.join(10)
    assert result.code != -999, result.output
    if result.code == 0:
        assert servers.target.query("SELECT count(*) FROM loose.notes") == [(20,)]
    else:
        line = one_error(result)
        assert "loose.notes.body (json)" in line and "REPLICA IDENTITY FULL" in line, line
        assert servers.leftovers("loose") == [] and "loose" not in servers.target.schemas()
