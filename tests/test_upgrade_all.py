"""upgrade-all: every schema to head in one process, in depends_on order, safe under concurrency and failure."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from types import SimpleNamespace

import psycopg
import pytest
from psycopg import sql
from sqlalchemy import create_engine
from sqlalchemy.pool import NullPool

from conftest import apply_with_psql, spawn_cli
from gamedb.discovery import discover_schemas
from gamedb.migrate.session import acquire_schema_lock

INSTALLED = sorted(discover_schemas())


def simple(name, steps=2):
    """A service whose revisions each create one table."""
    revisions = [(f"{name}1", [], [])]
    for i in range(2, steps + 1):
        table = f"{name}.t{i}"
        revisions.append((f"{name}{i}", [f"CREATE TABLE {table} (id int PRIMARY KEY)"], [f"DROP TABLE {table}"]))
    return revisions


def heads_of(database, schemas):
    return {s: database.version_rows(s) for s in schemas}


def test_upgrade_all_brings_every_schema_to_head_and_a_second_run_does_nothing(gamedb, database, fleet):
    extra = fleet({"chat": simple("chat", 3)})

    first = gamedb("upgrade-all", extra=extra)

    assert first.code == 0, first.output
    assert "upgraded chat: base -> chat3" in first.stdout
    assert "3 schemas at head" in first.stdout
    assert database.version_rows("chat") == ["chat3"]
    assert database.tables("chat") == {"t2", "t3"}
    for schema in INSTALLED:
        assert len(database.version_rows(schema)) == 1

    second = gamedb("upgrade-all", extra=extra)

    assert second.code == 0, second.output
    assert "upgraded" not in second.stdout
    assert "3 schemas at head (nothing to do)" in second.stdout


def test_two_concurrent_upgrade_alls_both_succeed_and_apply_everything_once(database, fleet):
    slow = [("slow1", [], []), ("slow2", ["CREATE TABLE slow.t (id int)", "SELECT pg_sleep(1)"], ["DROP TABLE slow.t"])]
    extra = fleet({"slow": slow, "chat": simple("chat", 3)})

    runs = [spawn_cli(["upgrade-all"], database.url, extra) for _ in range(2)]
    results = [(p.wait(timeout=120), p.stdout.read(), p.stderr.read()) for p in runs]

    assert [code for code, _, _ in results] == [0, 0], results
    assert heads_of(database, ["slow", "chat", *INSTALLED]) == {
        "slow": ["slow2"],
        "chat": ["chat3"],
        **{s: database.version_rows(s) for s in INSTALLED},
    }
    assert all(len(database.version_rows(s)) == 1 for s in INSTALLED)
    upgraded_lines = [line for _, out, _ in results for line in out.splitlines() if line.startswith("upgraded slow")]
    assert len(upgraded_lines) == 1  # one run applied slow, the other waited and found it done


def test_a_revision_failing_halfway_leaves_its_schema_at_the_previous_revision(gamedb, database, fleet):
    boom = [
        ("pay1", [], []),
        ("pay2", ["CREATE TABLE payments.ledger (id int)"], ["DROP TABLE payments.ledger"]),
        ("pay3", ["CREATE TABLE payments.half (id int)", "SELECT 1/0"], ["DROP TABLE payments.half"]),
    ]
    extra = fleet({"payments": boom})

    result = gamedb("upgrade-all", extra=extra)

    assert result.code == 1
    assert "Traceback" not in result.output
    assert "FAILED payments at revision pay3 (schema left at pay2): division by zero [SQLSTATE 22012]" in result.stderr
    assert database.version_rows("payments") == ["pay2"]
    assert database.tables("payments") == {"ledger"}
    for schema in INSTALLED:  # auth and inventory come first in order, and are at head
        assert f"upgraded {schema}: base -> " in result.stdout
        assert len(database.version_rows(schema)) == 1


def test_the_failure_report_lists_the_schemas_not_attempted(gamedb, database, fleet):
    extra = fleet({"bank": [("bank1", [], []), ("bank2", ["SELECT 1/0"], [])]})

    result = gamedb("upgrade-all", "--jobs", "1", extra=extra)  # one at a time: inventory comes after bank

    assert result.code == 1
    assert "FAILED bank at revision bank2 (schema left at bank1)" in result.stderr
    assert "not attempted: inventory" in result.stderr
    assert database.version_rows("inventory") is None
    assert database.version_rows("auth") is not None


SCHEMA_LOCKS = (
    "SELECT count(*) FROM pg_locks l JOIN pg_class c ON c.oid = l.relation"
    " WHERE c.relname = %s AND l.mode = 'ShareUpdateExclusiveLock'"
)
SLEEPY = "SELECT pg_sleep(CASE WHEN current_setting('gamedb.test_sleep', true) = 'on' THEN 60 ELSE 0 END)"


def wait_for(predicate, timeout=30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.2)
    return False


def test_a_killed_run_leaves_nothing_half_applied_and_releases_its_lock(gamedb, database, fleet):
    slow2 = ("slow2", ["CREATE TABLE slow.t (id int)", SLEEPY], ["DROP TABLE slow.t"])
    extra = fleet({"slow": [("slow1", [], []), slow2]})
    proc = spawn_cli(["upgrade-all"], database.url, extra, PGOPTIONS="-c gamedb.test_sleep=on")
    sleeping = (
        "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'gamedb:slow' AND query LIKE '%pg_sleep%'"
    )
    assert wait_for(lambda: database.query(sleeping) == [(1,)]), proc.communicate(timeout=5)

    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)

    gone = "SELECT count(*) FROM pg_stat_activity WHERE application_name LIKE 'gamedb:slow%'"
    assert wait_for(lambda: database.query(gone) == [(0,)], timeout=20)
    assert database.query(SCHEMA_LOCKS, ("alembic_version_slow",)) == [(0,)]
    assert database.version_rows("slow") == ["slow1"]
    assert database.tables("slow") == set()

    again = gamedb("upgrade-all", extra=extra)

    assert again.code == 0, again.output
    assert database.version_rows("slow") == ["slow2"]


def test_a_run_waits_for_another_run_of_the_same_schema_but_not_of_others(database, fleet):
    engine = create_engine(database.url, poolclass=NullPool)
    holder = acquire_schema_lock(engine, discover_schemas()["auth"])  # what a running migration of auth holds
    try:
        blocked = spawn_cli(["-x", "schema=auth", "upgrade", "head"], database.url, GAMEDB_LOCK_WAIT="2")
        free = spawn_cli(["-x", "schema=inventory", "upgrade", "head"], database.url)
        assert free.wait(timeout=60) == 0, free.stderr.read()
        assert blocked.wait(timeout=60) != 0
        stderr = blocked.stderr.read()
    finally:
        holder.release()
        engine.dispose()
    assert "another migration held its lock" in stderr
    assert database.version_rows("inventory") is not None and len(database.version_rows("inventory")) == 1
    assert not database.version_rows("auth")


def test_depends_on_orders_the_upgrade_even_with_parallel_jobs(gamedb, database, fleet):
    extra = fleet({"aaa": simple("aaa"), "zzz": simple("zzz")}, depends_on={"aaa": ["zzz"]})

    result = gamedb("upgrade-all", "--jobs", "4", extra=extra)

    assert result.code == 0, result.output
    order = [line.split()[1].rstrip(":") for line in result.stdout.splitlines() if line.startswith("upgraded")]
    assert order.index("zzz") < order.index("aaa")


def test_a_failed_dependency_keeps_its_dependents_from_starting(gamedb, database, fleet):
    broken = [("zzz1", [], []), ("zzz2", ["SELECT 1/0"], [])]
    extra = fleet({"aaa": simple("aaa"), "zzz": broken}, depends_on={"aaa": ["zzz"]})

    result = gamedb("upgrade-all", "--jobs", "4", extra=extra)

    assert result.code == 1
    assert "FAILED zzz at revision zzz2" in result.stderr
    assert "not attempted: aaa" in result.stderr
    assert database.version_rows("aaa") is None


def test_jobs_below_one_is_refused(gamedb, database):
    result = gamedb("upgrade-all", "--jobs", "0")

    assert result.code == 2
    assert result.stderr.strip() == "gamedb: error: --jobs must be 1 or more"


def test_a_depends_on_cycle_is_refused_before_any_sql(gamedb, database, fleet):
    extra = fleet({"aaa": simple("aaa"), "zzz": simple("zzz")}, depends_on={"aaa": ["zzz"], "zzz": ["aaa"]})
    before = database.schemas()

    result = gamedb("upgrade-all", extra=extra)

    assert result.code == 2
    assert result.stderr.strip() == "gamedb: error: depends_on forms a cycle among schemas: aaa, zzz"
    assert database.schemas() == before


def test_upgrade_all_sql_plan_applied_with_psql_gives_the_online_result(gamedb, database, fleet, psql, admin_uri):
    extra = fleet({"chat": simple("chat", 3)})
    plan = gamedb("upgrade-all", "--sql", extra=extra)
    assert plan.code == 0, plan.output
    assert plan.stdout.count("BEGIN;") == plan.stdout.count("COMMIT;") == 3  # one transaction per schema

    applied = apply_with_psql(psql, database, plan.stdout)

    assert applied.returncode == 0, applied.stderr
    assert database.version_rows("chat") == ["chat3"]
    assert database.tables("chat") == {"t2", "t3"}
    status = json.loads(gamedb("status", "--json", extra=extra).stdout)
    rows = {row["schema"]: row for row in status["schemas"]}
    assert all(row["pending"] == [] and len(row["current"]) == 1 for row in rows.values())
    for schema in INSTALLED:  # the services' models match what the plan built
        assert rows[schema]["drift"] == []


def test_an_app_login_can_neither_take_nor_block_a_schemas_migration_lock(gamedb, database):
    for args in (["roles", "apply"], ["roles", "login", "auth_app", "--schema", "auth"]):
        assert gamedb(*args).code == 0
    assert gamedb("roles", "login", "deployer", "--migrator").code == 0
    deployer_url = database.url.replace("postgresql+psycopg://postgres", "postgresql+psycopg://deployer", 1)
    with psycopg.connect(database.login_uri("auth_app")) as app:
        for attempt in (
            "LOCK TABLE alembic.alembic_version_auth IN SHARE UPDATE EXCLUSIVE MODE",
            "LOCK TABLE alembic.alembic_version_inventory IN ACCESS EXCLUSIVE MODE",
            "SELECT * FROM alembic.alembic_version_auth FOR UPDATE",
        ):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                app.execute(attempt)
            app.rollback()
        # what blocked deploys before: the advisory key of every schema, held in an open transaction too
        for schema in ("auth", "inventory"):
            app.execute("SELECT pg_advisory_lock(%s, hashtext(%s))", (0x67646231, schema))
            app.execute("SELECT pg_advisory_xact_lock(%s, hashtext(%s))", (0x67646231, schema))

        as_deployer = spawn_cli(["-x", "schema=auth", "upgrade", "head"], deployer_url, GAMEDB_LOCK_WAIT="5")
        deployed = as_deployer.wait(timeout=60), as_deployer.stderr.read()
        as_admin = spawn_cli(["upgrade-all"], database.url, GAMEDB_LOCK_WAIT="5")
        upgraded = as_admin.wait(timeout=60), as_admin.stderr.read()
        app.rollback()

    assert deployed[0] == 0, deployed
    assert upgraded[0] == 0, upgraded
    assert len(database.version_rows("auth")) == len(database.version_rows("inventory")) == 1


def test_create_index_concurrently_in_a_revision_does_not_wait_for_the_runs_own_lock(gamedb, database, fleet):
    extra = fleet(
        {
            "idx": [
                ("idx1", ["CREATE TABLE idx.t (id int)"], []),
                ("idx2", ["CREATE INDEX CONCURRENTLY t_id ON idx.t (id)"], ["DROP INDEX idx.t_id"]),
            ]
        }
    )
    revision = next((extra[0] / "game_idx" / "versions").glob("idx2_*.py"))
    source = revision.read_text()
    statement = "    op.execute('CREATE INDEX CONCURRENTLY t_id ON idx.t (id)')"
    assert statement in source
    revision.write_text(source.replace(statement, "    with op.get_context().autocommit_block():\n    " + statement))

    run = spawn_cli(
        ["-x", "schema=idx", "upgrade", "head"], database.url, extra, GAMEDB_MIGRATION_STATEMENT_TIMEOUT="20s"
    )
    code = run.wait(timeout=60)

    assert code == 0, run.stderr.read()
    assert database.version_rows("idx") == ["idx2"]
    assert database.query("SELECT indisvalid FROM pg_index WHERE indexrelid = 'idx.t_id'::regclass") == [(True,)]


def test_the_sql_plan_waits_for_a_running_migration_of_the_same_schema(gamedb, database, fleet, psql):
    extra = fleet({"chat": simple("chat", 3)})
    plan = gamedb("upgrade-all", "--sql", extra=extra)
    assert plan.code == 0, plan.output
    assert 'LOCK TABLE "alembic"."alembic_version_chat" IN SHARE UPDATE EXCLUSIVE MODE' in plan.stdout
    assert "advisory" not in plan.stdout
    assert gamedb("-x", "schema=chat", "upgrade", "chat1", extra=extra).code == 0
    plan = gamedb("-x", "schema=chat", "upgrade", "chat1:head", "--sql", extra=extra)
    assert plan.code == 0, plan.output
    engine = create_engine(database.url, poolclass=NullPool)
    holder = acquire_schema_lock(
        engine, SimpleNamespace(name="chat", version_table="alembic_version_chat", owner_role="chat_owner")
    )
    try:
        applying = subprocess.Popen(
            [psql, "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", database.libpq],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        applying.stdin.write(plan.stdout)
        applying.stdin.close()
        time.sleep(3)  # longer than lock_timeout (2s): the plan waits up to GAMEDB_LOCK_WAIT instead
        still_waiting = applying.poll() is None
    finally:
        holder.release()
        engine.dispose()

    assert still_waiting
    assert applying.wait(timeout=60) == 0, applying.stderr.read()
    assert database.version_rows("chat") == ["chat3"]


@pytest.mark.parametrize("command", [["-x", "schema=legacy", "upgrade", "head"], ["upgrade-all"]])
def test_an_existing_schema_with_objects_is_never_adopted_by_an_upgrade_from_base(gamedb, database, fleet, command):
    extra = fleet({"legacy": simple("legacy", 2)})
    database.query("CREATE SCHEMA legacy")
    database.query("CREATE TABLE legacy.accounts (id int PRIMARY KEY, name text)")
    database.query("INSERT INTO legacy.accounts VALUES (1, 'kept')")

    result = gamedb(*command, extra=extra)

    assert result.code != 0
    assert "Traceback" not in result.output
    refusal = [line for line in result.stderr.splitlines() if "legacy" in line and not line.startswith("progress ")]
    assert len(refusal) == 1 and "schema 'legacy' already exists and holds 1 relation(s)" in refusal[0]
    assert "gamedb -x schema=legacy stamp REVISION" in refusal[0]
    assert database.query("SELECT id, name FROM legacy.accounts") == [(1, "kept")]
    assert database.tables("legacy") == {"accounts"}
    assert not database.version_rows("legacy")


def test_an_existing_empty_schema_is_taken_and_stamp_adopts_one_on_purpose(gamedb, database, fleet):
    extra = fleet({"empty": simple("empty", 2), "legacy": simple("legacy", 2)})
    database.query("CREATE SCHEMA empty")
    database.query("CREATE SCHEMA legacy")
    database.query("CREATE TABLE legacy.accounts (id int PRIMARY KEY)")

    assert gamedb("-x", "schema=empty", "upgrade", "head", extra=extra).code == 0
    assert gamedb("-x", "schema=legacy", "stamp", "legacy1", extra=extra).code == 0
    adopted = gamedb("-x", "schema=legacy", "upgrade", "head", extra=extra)

    assert adopted.code == 0, adopted.output
    assert database.version_rows("empty") == ["empty2"]
    assert database.version_rows("legacy") == ["legacy2"]
    assert database.tables("legacy") == {"accounts", "t2"}


def test_a_runner_cut_off_mid_revision_is_reported_at_the_revision_it_really_reached(database, fleet, admin_uri):
    """The stand-in for a server restart: the runner's connection is terminated mid-revision and, for
    two seconds, the database refuses every new connection, as a restarting server does."""
    steps = [("slow1", [], [])] + [(f"slow{i}", [f"CREATE TABLE slow.t{i} (id int)"], []) for i in range(2, 10)]
    steps.append(("slow10", ["CREATE TABLE slow.t10 (id int)", SLEEPY], []))
    extra = fleet({"slow": steps})
    proc = spawn_cli(["upgrade-all"], database.url, extra, PGOPTIONS="-c gamedb.test_sleep=on")
    runner = "SELECT pid FROM pg_stat_activity WHERE application_name = 'gamedb:slow' AND query LIKE '%pg_sleep%'"
    assert wait_for(lambda: len(database.query(runner)) == 1), proc.communicate(timeout=5)

    (pid,) = database.query(runner)[0]
    with psycopg.connect(admin_uri, autocommit=True) as admin:
        admin.execute(sql.SQL("ALTER DATABASE {} ALLOW_CONNECTIONS false").format(sql.Identifier(database.name)))
        try:
            admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
            time.sleep(2)
        finally:
            admin.execute(sql.SQL("ALTER DATABASE {} ALLOW_CONNECTIONS true").format(sql.Identifier(database.name)))
    code = proc.wait(timeout=60)
    stderr = proc.stderr.read()

    assert code == 1, stderr
    assert database.version_rows("slow") == ["slow9"]
    assert "FAILED slow at revision slow10 (schema left at slow9): " in stderr
    assert "Traceback" not in stderr


def test_a_run_whose_lock_connection_dies_rolls_back_the_revision_in_flight_and_records_nothing(database, fleet):
    """The lock is confirmed from the migration connection (pg_locks), not on the lock's own connection:
    it must still see the holder gone before the revision commits."""
    nap = "SELECT pg_sleep(CASE WHEN current_setting('gamedb.test_sleep', true) = 'on' THEN 5 ELSE 0 END)"
    steps = [("held1", [], []), ("held2", ["CREATE TABLE held.t2 (id int)"], [])]
    steps.append(("held3", ["CREATE TABLE held.t3 (id int)", nap], []))
    extra = fleet({"held": steps})
    proc = spawn_cli(["upgrade-all"], database.url, extra, PGOPTIONS="-c gamedb.test_sleep=on")
    runner = "SELECT pid FROM pg_stat_activity WHERE application_name = 'gamedb:held' AND query LIKE '%pg_sleep%'"
    assert wait_for(lambda: len(database.query(runner)) == 1, timeout=60), proc.communicate(timeout=5)

    database.query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'gamedb:held:lock'")
    code = proc.wait(timeout=60)
    stderr = proc.stderr.read()

    assert code == 1, stderr
    assert (
        "FAILED held at revision held3 (schema left at held2): schema 'held': the connection holding its "
        "migration lock was lost; the revision in flight was rolled back" in stderr
    )
    assert "Traceback" not in stderr
    assert database.version_rows("held") == ["held2"]
    assert database.tables("held") == {"t2"}
    recorded = database.query(
        "SELECT revision, reason FROM alembic.gamedb_checksums_held WHERE revision <> '' ORDER BY seq"
    )
    assert recorded == [("held1", "applied"), ("held2", "applied")]


def test_sigint_stops_every_worker_at_a_revision_boundary_and_reports_what_was_applied(database, fleet):
    nap = "SELECT pg_sleep(1)"
    extra = fleet(
        {
            name: [(f"{name}1", [], [])]
            + [(f"{name}{i}", [f"CREATE TABLE {name}.t{i} (id int)", nap], []) for i in range(2, 12)]
            for name in ("nap", "zzz")
        }
    )
    proc = spawn_cli(["upgrade-all", "--jobs", "2"], database.url, extra)
    assert wait_for(lambda: (database.version_rows("nap") or ["nap1"]) != ["nap1"], timeout=60), proc.communicate(
        timeout=5
    )

    proc.send_signal(signal.SIGINT)
    code = proc.wait(timeout=30)
    stopped = time.monotonic()
    out, err = proc.stdout.read(), proc.stderr.read()

    assert code == 130, out + err
    busy = "SELECT count(*) FROM pg_stat_activity WHERE application_name LIKE 'gamedb:%'"
    assert wait_for(lambda: database.query(busy) == [(0,)], timeout=5)
    assert time.monotonic() - stopped < 5
    assert "Traceback" not in err and err.strip().endswith("gamedb: interrupted")
    reported = {}
    for line in out.splitlines():
        if line.startswith(("upgraded ", "interrupted ")):
            schema, moved = line.split(" ", 1)[1].split(": ", 1)
            reported[schema] = moved.split(" -> ")[1].split(" ")[0]
    assert "nap" in reported and "zzz" in reported, out
    for schema, revision in reported.items():
        rows = database.version_rows(schema) or []
        assert rows == ([] if revision == "base" else [revision]), (schema, out)
    assert database.version_rows("nap") != ["nap11"]  # it really stopped: 10 more seconds of revisions remained
    for schema in ("nap", "zzz"):  # no revision half applied: a table exists exactly for each recorded revision
        at = int((database.version_rows(schema) or [f"{schema}0"])[0].removeprefix(schema))
        assert database.tables(schema) == {f"t{i}" for i in range(2, at + 1)}


def test_a_workers_kept_connection_serves_the_next_schema_as_a_fresh_session(database):
    """upgrade-all's workers keep their connections across schemas: nothing of one run reaches the next."""
    from sqlalchemy import make_url, text

    from gamedb.fleet.sessions import worker_engine

    database.query("CREATE ROLE kept_owner NOLOGIN")
    engine = worker_engine(make_url(database.url))
    try:
        with engine.connect() as conn:
            pid = conn.execute(text("SELECT pg_backend_pid()")).scalar()
            conn.execute(text("SET ROLE kept_owner"))
            conn.execute(
                text("SELECT set_config('search_path', 'kept', false), set_config('lock_timeout', '7s', false)")
            )
            conn.commit()
        with engine.connect() as conn:
            again = conn.execute(
                text(
                    "SELECT pg_backend_pid(), current_user = session_user, current_setting('search_path'),"
                    " current_setting('lock_timeout')"
                )
            ).one()
        assert again == (pid, True, '"$user", public', "0")
        database.query("SELECT pg_terminate_backend(%s, 5000)", (pid,))  # a kept connection that died is replaced
        with engine.connect() as conn:
            assert conn.execute(text("SELECT pg_backend_pid()")).scalar() != pid
    finally:
        engine.dispose()
        database.query("DROP ROLE kept_owner")
