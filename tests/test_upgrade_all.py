"""upgrade-all: every schema to head in one process, in depends_on order, safe under concurrency and failure."""

from __future__ import annotations

import json
import os
import signal
import time

import psycopg

from conftest import apply_with_psql, spawn_cli
from gamedb.discovery import discover_schemas

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

    gone = "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'gamedb:slow'"
    assert wait_for(lambda: database.query(gone) == [(0,)], timeout=20)
    assert database.query("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'") == [(0,)]
    assert database.version_rows("slow") == ["slow1"]
    assert database.tables("slow") == set()

    again = gamedb("upgrade-all", extra=extra)

    assert again.code == 0, again.output
    assert database.version_rows("slow") == ["slow2"]


def test_a_run_waits_for_another_run_of_the_same_schema_but_not_of_others(database, fleet):
    from gamedb.migration_session import LOCK_CLASS_ID

    with psycopg.connect(database.libpq, autocommit=True) as holder:
        holder.execute("SELECT pg_advisory_lock(%s, hashtext('auth'))", (LOCK_CLASS_ID,))
        blocked = spawn_cli(["-x", "schema=auth", "upgrade", "head"], database.url, GAMEDB_LOCK_WAIT="2")
        free = spawn_cli(["-x", "schema=inventory", "upgrade", "head"], database.url)
        assert free.wait(timeout=60) == 0, free.stderr.read()
        assert blocked.wait(timeout=60) != 0
        stderr = blocked.stderr.read()
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
