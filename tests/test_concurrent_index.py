"""Steps outside a transaction (`autocommit_block()`: CREATE INDEX CONCURRENTLY) under the schema's lock.

Every run here has a statement timeout and every wait a timeout, so a deadlock fails a test instead
of hanging it.
"""

from __future__ import annotations

import textwrap
import threading
import time

import psycopg
import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.exc import SQLAlchemyError

from conftest import apply_with_psql, run_cli, spawn_cli
from gamedb.migrate.autocommit import INVALID_SQL
from gamedb.server import service_engine

TABLE = "CREATE TABLE idx.events (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, player int NOT NULL)"
ROWS = "INSERT INTO idx.events (player) SELECT g % 1000 FROM generate_series(1, 50000) g"
CONCURRENT_BUILD = """
with op.get_context().autocommit_block():
    op.create_index(
        "events_player", "events", ["player"], schema="idx", postgresql_concurrently=True, if_not_exists=True
    )
"""
DROP_BUILD = """
with op.get_context().autocommit_block():
    op.drop_index(
        "events_player", table_name="events", schema="idx", postgresql_concurrently=True, if_exists=True
    )
"""
TIMEOUTS = {"GAMEDB_MIGRATION_STATEMENT_TIMEOUT": "60s", "GAMEDB_LOCK_WAIT": "60"}
WAIT = 120  # seconds any one run may take before the test calls it a hang


@pytest.fixture
def indexed(fleet):
    """Service `idx`: idx1 creates the table with rows, idx2 builds an index concurrently (bodies replaceable)."""
    extra = fleet({"idx": [("idx1", [TABLE, ROWS], []), ("idx2", ["BODY"], ["DOWN"])]})
    versions = extra[0] / "game_idx" / "versions"

    def revise(upgrade: str = CONCURRENT_BUILD, downgrade: str = DROP_BUILD) -> list:
        path = next(versions.glob("idx2_*.py"))
        source = path.read_text()
        for placeholder, body in (("BODY", upgrade), ("DOWN", downgrade)):
            code = textwrap.indent(textwrap.dedent(body).strip(), "    ")
            source = source.replace(f"    op.execute({placeholder!r})", code)
        path.write_text(source)
        return extra

    return revise


def cli(database, extra, *args, url=None, **env):
    return run_cli(list(args), url=url or database.url, python_path=extra, **{**TIMEOUTS, **env})


def ok(result):
    assert result.code == 0, result.output
    return result


def index_state(database):
    return database.query(
        "SELECT indisvalid, indisready FROM pg_index WHERE indexrelid = to_regclass('idx.events_player')"
    )


def wait_for(database, query, params=(), timeout=WAIT):
    """Poll until `query` returns a row (a state another process reaches), failing after `timeout`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if database.query(query, params):
            return
        time.sleep(0.1)
    pytest.fail(f"never reached: {query}")


BUILD_WAITING = (
    "SELECT 1 FROM pg_stat_activity WHERE application_name = 'gamedb:idx' AND wait_event_type = 'Lock'"
    " AND query LIKE %s"
)


@pytest.fixture
def under_roles(database, gamedb, indexed):
    """idx under the role model: a deployer login runs migrations, an app login (`idx_rw`) writes."""
    extra = indexed()
    for args in (
        ["roles", "apply"],
        ["roles", "login", "idx_app", "--schema", "idx"],
        ["roles", "login", "deployer", "--migrator"],
    ):
        ok(gamedb(*args, extra=extra))
    database.deployer_url = database.url.replace("postgresql+psycopg://postgres", "postgresql+psycopg://deployer", 1)
    database.app_url = database.url.replace("postgresql+psycopg://postgres", "postgresql+psycopg://idx_app", 1)
    ok(cli(database, extra, "-x", "schema=idx", "upgrade", "idx1", url=database.deployer_url))
    return extra


def test_an_index_built_concurrently_under_constant_app_writes_is_valid_and_every_row_is_kept(
    database, under_roles, monkeypatch
):
    monkeypatch.syspath_prepend(str(under_roles[0]))  # service_engine discovers idx in this process
    engine = service_engine("idx", database.app_url)
    written, failures, stop = [], [], threading.Event()

    def write() -> None:
        deadline = time.monotonic() + WAIT
        while not stop.is_set() and time.monotonic() < deadline:
            try:
                with engine.begin() as conn:
                    row = conn.execute(text("INSERT INTO events (player) VALUES (5000) RETURNING id"))
                    written.append(row.scalar())
            except SQLAlchemyError as exc:  # every failed write is a finding
                failures.append(repr(exc))
                return

    writer = threading.Thread(target=write)
    writer.start()
    try:
        wait_for(database, "SELECT 1 FROM idx.events WHERE player = 5000")  # the app is writing
        run = spawn_cli(["-x", "schema=idx", "upgrade", "head"], database.deployer_url, under_roles, **TIMEOUTS)
        before = len(written)
        code = run.wait(timeout=WAIT)
        during = len(written) - before
        wait_for(database, "SELECT 1 FROM idx.events WHERE id > %s", (max(written),))  # still writing after
    finally:
        stop.set()
        writer.join(timeout=WAIT)
        engine.dispose()

    assert code == 0, run.stderr.read()
    assert failures == []
    assert during > 0
    assert database.version_rows("idx") == ["idx2"]
    assert index_state(database) == [(True, True)]
    assert database.query("SELECT count(*) FROM idx.events WHERE player = 5000") == [(len(written),)]
    ids = {i for (i,) in database.query("SELECT id FROM idx.events WHERE player = 5000")}
    assert ids == set(written)
    # the index holds every row: counted through it alone, it agrees with the table
    with psycopg.connect(database.libpq, autocommit=True) as conn:
        conn.execute("SET enable_seqscan = off; SET enable_bitmapscan = off")
        plan = "\n".join(r[0] for r in conn.execute("EXPLAIN SELECT count(*) FROM idx.events WHERE player = 5000"))
        assert "events_player" in plan
        assert conn.execute("SELECT count(*) FROM idx.events WHERE player = 5000").fetchone() == (len(written),)


@pytest.mark.parametrize("isolation", ["repeatable read", "serializable"])
def test_a_concurrent_build_does_not_wait_for_the_runs_own_lock_whatever_the_default_isolation(
    database, indexed, isolation
):
    extra = indexed()
    # a DBA's default for every session of the database: the lock's session must not keep a snapshot
    database.query(f"ALTER DATABASE {database.name} SET default_transaction_isolation = '{isolation}'")

    # a wait for the lock's session would last until the statement timeout: no lock_timeout and retry to hide it
    run = cli(
        database,
        extra,
        "-x",
        "schema=idx",
        "upgrade",
        "head",
        GAMEDB_MIGRATION_STATEMENT_TIMEOUT="20s",
        GAMEDB_LOCK_TIMEOUT="60s",
        GAMEDB_LOCK_RETRIES="0",
    )

    ok(run)
    assert "retry" not in run.stderr
    assert database.version_rows("idx") == ["idx2"]
    assert index_state(database) == [(True, True)]
    ok(cli(database, extra, "-x", "schema=idx", "downgrade", "idx1", GAMEDB_LOCK_RETRIES="0"))  # DROP ... CONCURRENTLY
    assert database.version_rows("idx") == ["idx1"]
    assert index_state(database) == []


def test_a_second_runner_waits_while_the_first_is_inside_the_autocommit_block(database, indexed):
    extra = indexed()
    ok(cli(database, extra, "-x", "schema=idx", "upgrade", "idx1"))
    with psycopg.connect(database.libpq) as app:
        app.execute("INSERT INTO idx.events (player) VALUES (1)")  # open: the build waits for it
        # the build waits for the app's transaction longer than the default lock_timeout
        first = spawn_cli(
            ["-x", "schema=idx", "upgrade", "head"], database.url, extra, **TIMEOUTS, GAMEDB_LOCK_TIMEOUT="60s"
        )
        wait_for(database, BUILD_WAITING, ("CREATE INDEX CONCURRENTLY%",))

        refused = cli(database, extra, "-x", "schema=idx", "upgrade", "head", GAMEDB_LOCK_WAIT="1")
        patient = spawn_cli(["-x", "schema=idx", "upgrade", "head"], database.url, extra, **TIMEOUTS)
        # the patient runner polls for the lock: two lock sessions of idx exist
        wait_for(
            database, "SELECT 1 FROM pg_stat_activity WHERE application_name = 'gamedb:idx:lock' HAVING count(*) = 2"
        )
        assert first.poll() is None  # still inside the block
        app.commit()
        first_code = first.wait(timeout=WAIT)
        patient_code = patient.wait(timeout=WAIT)

    assert refused.code != 0
    assert refused.stderr.strip().splitlines() == [
        "INFO  [gamedb.migrate.session] schema idx is being migrated by another session; waiting for it",
        "gamedb: error: schema 'idx': another migration held its lock for over 1s",
    ]
    assert first_code == 0, first.stderr.read()
    assert patient_code == 0, patient.stderr.read()
    assert database.version_rows("idx") == ["idx2"]
    assert index_state(database) == [(True, True)]


SEEN = """
op.execute("CREATE TABLE idx.seen (at text, who text, path text, lock_timeout text, statement_timeout text)")
op.execute("SET lock_timeout = '7s'")  # the revision's own session setting
op.execute("INSERT INTO idx.seen SELECT 'before', current_user, current_setting('search_path'),"
           " current_setting('lock_timeout'), current_setting('statement_timeout')")
with op.get_context().autocommit_block():
    op.execute("INSERT INTO idx.seen SELECT 'inside', current_user, current_setting('search_path'),"
               " current_setting('lock_timeout'), current_setting('statement_timeout')")
    op.create_index("events_player", "events", ["player"], schema="idx", postgresql_concurrently=True)
op.execute("INSERT INTO idx.seen SELECT 'after', current_user, current_setting('search_path'),"
           " current_setting('lock_timeout'), current_setting('statement_timeout')")
"""


def test_the_owner_role_search_path_and_timeouts_hold_before_inside_and_after_the_block(database, gamedb, indexed):
    extra = indexed(SEEN, "op.execute('DROP TABLE idx.seen')\n" + DROP_BUILD)
    ok(gamedb("roles", "apply", extra=extra))
    ok(gamedb("roles", "login", "deployer", "--migrator", extra=extra))
    deployer = database.url.replace("postgresql+psycopg://postgres", "postgresql+psycopg://deployer", 1)

    ok(cli(database, extra, "-x", "schema=idx", "upgrade", "head", url=deployer))

    seen = database.query("SELECT at, who, path, lock_timeout, statement_timeout FROM idx.seen ORDER BY ctid")
    assert seen == [
        (at, "idx_owner", '"idx", "extensions", pg_catalog', "7s", "1min") for at in ("before", "inside", "after")
    ]
    assert index_state(database) == [(True, True)]


def test_a_failed_unique_build_drops_its_invalid_index_and_leaves_the_schema_where_it_was(database, gamedb, indexed):
    unique = CONCURRENT_BUILD.replace("postgresql_concurrently=True", "unique=True, postgresql_concurrently=True")
    extra = indexed(unique)
    ok(cli(database, extra, "-x", "schema=idx", "upgrade", "idx1"))

    failed = cli(database, extra, "-x", "schema=idx", "upgrade", "head")

    assert failed.code == 1
    lines = [line for line in failed.stderr.strip().splitlines() if not line.startswith("INFO  ")]
    assert len(lines) == 1, failed.stderr
    assert lines[0].startswith("gamedb: error: schema 'idx': could not create unique index \"events_player\"")
    assert lines[0].endswith("[SQLSTATE 23505]; dropped the invalid index idx.events_player the failed build left")
    assert index_state(database) == []
    assert database.version_rows("idx") == ["idx1"]

    # the same through upgrade-all, then the data fixed and the same revision run again
    failed_all = cli(database, extra, "upgrade-all")
    assert failed_all.code == 1
    assert (
        "FAILED idx at revision idx2 (schema left at idx1): schema 'idx': could not create unique index"
        in failed_all.stdout + failed_all.stderr
    )
    assert "dropped the invalid index idx.events_player the failed build left" in failed_all.output
    database.query("DELETE FROM idx.events WHERE id > 1000")
    ok(cli(database, extra, "-x", "schema=idx", "upgrade", "head"))
    assert database.version_rows("idx") == ["idx2"]
    assert index_state(database) == [(True, True)]


def test_a_build_that_gave_up_on_a_long_app_transaction_is_cleaned_up_and_retried(database, indexed):
    extra = indexed()
    ok(cli(database, extra, "-x", "schema=idx", "upgrade", "idx1"))
    with psycopg.connect(database.libpq) as app:
        app.execute("INSERT INTO idx.events (player) VALUES (1)")  # longer than the build's lock_timeout
        run = spawn_cli(["-x", "schema=idx", "upgrade", "head"], database.url, extra, GAMEDB_LOCK_TIMEOUT="200ms")
        # the build gave up (55P03) and left an invalid index; its DROP waits for the app, not for lock_timeout
        wait_for(database, BUILD_WAITING, ("DROP INDEX CONCURRENTLY%",))
        app.commit()
        code = run.wait(timeout=WAIT)

    stderr = run.stderr.read()
    assert code == 0, stderr
    assert "lock_timeout hit (55P03); retry 1/3" in stderr
    assert database.version_rows("idx") == ["idx2"]
    assert index_state(database) == [(True, True)]
    assert database.query("SELECT count(*) FROM pg_index WHERE indrelid = 'idx.events'::regclass") == [(2,)]


def test_an_invalid_index_the_run_cannot_drop_is_named_with_the_statement_that_drops_it(database, indexed):
    extra = indexed()
    ok(cli(database, extra, "-x", "schema=idx", "upgrade", "idx1"))
    with psycopg.connect(database.libpq) as app:
        app.execute("INSERT INTO idx.events (player) VALUES (1)")
        failed = cli(
            database,
            extra,
            "-x",
            "schema=idx",
            "upgrade",
            "head",
            GAMEDB_MIGRATION_STATEMENT_TIMEOUT="1s",
            GAMEDB_LOCK_TIMEOUT="0",
        )
        app.rollback()

    assert failed.code == 1
    assert failed.stderr.strip().splitlines()[-1:] == [
        "gamedb: error: schema 'idx': canceling statement due to statement timeout [SQLSTATE 57014]; "
        "the failed build left the invalid index idx.events_player, not dropped (canceling statement due to "
        'statement timeout [SQLSTATE 57014]): DROP INDEX CONCURRENTLY "idx"."events_player"'
    ]
    assert index_state(database) in ([(False, True)], [(False, False)])
    assert database.version_rows("idx") == ["idx1"]
    database.query('DROP INDEX CONCURRENTLY "idx"."events_player"')
    ok(cli(database, extra, "-x", "schema=idx", "upgrade", "head"))
    assert index_state(database) == [(True, True)]


def test_an_invalid_index_from_before_the_run_is_left_alone(database, indexed):
    extra = indexed("op.execute('CREATE TABLE idx.other (id int)')\nop.execute('SELECT 1/0')")
    ok(cli(database, extra, "-x", "schema=idx", "upgrade", "idx1"))
    with psycopg.connect(database.libpq) as app:
        app.execute("INSERT INTO idx.events (player) VALUES (1)")
        with psycopg.connect(database.libpq, autocommit=True) as dba:
            dba.execute("SET statement_timeout = '500ms'")
            with pytest.raises(psycopg.errors.QueryCanceled):
                dba.execute("CREATE INDEX CONCURRENTLY dba_index ON idx.events (player)")
        app.rollback()

    failed = cli(database, extra, "-x", "schema=idx", "upgrade", "head")

    assert failed.code == 1
    assert failed.stderr.strip().splitlines()[-1:] == ["gamedb: error: schema 'idx': division by zero [SQLSTATE 22012]"]
    assert database.query("SELECT indisvalid FROM pg_index WHERE indexrelid = 'idx.dba_index'::regclass") == [(False,)]


def test_the_sql_plan_ends_the_transaction_around_the_block_and_applies_with_psql(database, gamedb, indexed, psql):
    extra = indexed(SEEN, "op.execute('DROP TABLE idx.seen')\n" + DROP_BUILD)
    ok(gamedb("roles", "apply", extra=extra))
    ok(cli(database, extra, "-x", "schema=idx", "upgrade", "idx1"))

    plan = ok(cli(database, extra, "-x", "schema=idx", "upgrade", "idx1:head", "--sql")).stdout

    block = plan[plan.index("INSERT INTO idx.seen SELECT 'before'") :]
    assert block.index("COMMIT;") < block.index("CREATE INDEX CONCURRENTLY events_player")
    assert block.index("CREATE INDEX CONCURRENTLY events_player") < block.index("BEGIN;")
    after_begin = block[block.index("BEGIN;") :]
    assert after_begin.index('LOCK TABLE "alembic"."alembic_version_idx"') < after_begin.index(
        "INSERT INTO idx.seen SELECT 'after'"
    )
    applied = apply_with_psql(psql, database, plan)
    assert applied.returncode == 0, applied.stderr
    assert database.version_rows("idx") == ["idx2"]
    assert index_state(database) == [(True, True)]
    seen = database.query("SELECT at, who, replace(path, '\"', ''), lock_timeout FROM idx.seen ORDER BY ctid")
    path = "idx, extensions, pg_catalog"
    # the revision's own SET lasts to the block, where the plan sets the run's timeouts again
    assert seen == [
        ("before", "idx_owner", path, "7s"),
        ("inside", "idx_owner", path, "2s"),
        ("after", "idx_owner", path, "2s"),
    ]


def test_a_revision_building_an_index_concurrently_passes_lint(database, indexed):
    extra = indexed()

    linted = cli(database, extra, "-x", "schema=idx", "lint")

    assert linted.code == 0, linted.output


def test_an_invalid_index_left_by_an_unfinished_build_fails_the_revision_instead_of_being_skipped(database, indexed):
    extra = indexed()  # CREATE INDEX CONCURRENTLY IF NOT EXISTS events_player
    ok(cli(database, extra, "-x", "schema=idx", "upgrade", "idx1"))
    with psycopg.connect(database.libpq) as app:  # a build cancelled half-way leaves the name taken
        app.execute("INSERT INTO idx.events (player) VALUES (1)")
        with psycopg.connect(database.libpq, autocommit=True) as killed:
            killed.execute("SET statement_timeout = '500ms'")
            with pytest.raises(psycopg.errors.QueryCanceled):
                killed.execute("CREATE INDEX CONCURRENTLY events_player ON idx.events (player)")
        app.rollback()

    failed = cli(database, extra, "-x", "schema=idx", "upgrade", "head")

    assert failed.code == 1
    assert failed.stderr.strip().splitlines()[-1] == (
        "gamedb: error: schema 'idx': revision idx2 was rolled back: the schema holds the invalid index "
        "idx.events_player, a concurrent build that never finished (an IF NOT EXISTS build of that name would do "
        'nothing); drop it and run again: DROP INDEX CONCURRENTLY "idx"."events_player"'
    )
    assert database.version_rows("idx") == ["idx1"]
    assert index_state(database)[0][0] is False
    database.query('DROP INDEX CONCURRENTLY "idx"."events_player"')
    ok(cli(database, extra, "-x", "schema=idx", "upgrade", "head"))
    assert index_state(database) == [(True, True)]


# Every catalog row, the way the lookup's first version found them: a scan of pg_index over the whole database.
INVALID_BY_SCANNING = (
    "SELECT n.nspname, c.relname FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid"
    " JOIN pg_namespace n ON n.oid = c.relnamespace WHERE NOT i.indisvalid AND n.nspname = %s ORDER BY 1, 2"
)


def test_the_invalid_index_lookup_finds_them_on_every_kind_of_relation_in_the_schema_and_none_elsewhere(database):
    failing_builds = [  # each leaves an INVALID index behind: a unique build over duplicate rows
        "CREATE UNIQUE INDEX CONCURRENTLY plain_k ON look.plain (k)",
        "CREATE UNIQUE INDEX CONCURRENTLY mv_k ON look.mv (k)",
        "CREATE UNIQUE INDEX CONCURRENTLY moved_k ON elsewhere.moved (k)",
        "CREATE UNIQUE INDEX CONCURRENTLY stays_k ON elsewhere.stays (k)",
    ]
    with psycopg.connect(database.libpq, autocommit=True) as conn:
        for statement in (
            "CREATE SCHEMA look",
            "CREATE SCHEMA elsewhere",
            "CREATE TABLE look.plain (k int)",
            "INSERT INTO look.plain VALUES (1), (1)",
            "CREATE INDEX plain_valid ON look.plain (k)",
            "CREATE MATERIALIZED VIEW look.mv AS SELECT 1 AS k UNION ALL SELECT 1",
            "CREATE TABLE look.parted (k int) PARTITION BY RANGE (k)",
            "CREATE TABLE look.parted_1 PARTITION OF look.parted FOR VALUES FROM (0) TO (10)",
            "CREATE INDEX parted_k ON ONLY look.parted (k)",  # invalid until every partition's is attached
            "CREATE TABLE elsewhere.moved (k int)",
            "INSERT INTO elsewhere.moved VALUES (1), (1)",
            "CREATE TABLE elsewhere.stays (k int)",
            "INSERT INTO elsewhere.stays VALUES (1), (1)",
        ):
            conn.execute(statement)
        for statement in failing_builds:
            with pytest.raises(psycopg.errors.UniqueViolation):
                conn.execute(statement)
        conn.execute("ALTER TABLE elsewhere.moved SET SCHEMA look")  # its index moves with it

    engine = create_engine(database.url)
    try:
        with engine.connect() as connection:
            found = sorted(tuple(row) for row in connection.execute(text(INVALID_SQL), {"schema": "look"}))
    finally:
        engine.dispose()

    expected = [("look", "moved_k"), ("look", "mv_k"), ("look", "parted_k"), ("look", "plain_k")]
    assert found == expected
    assert database.query(INVALID_BY_SCANNING, ("look",)) == expected
