"""Whole-database operations: upgrade order, version rows, status, upgrade-all and its SQL plan.

A schema already at its head costs one row read and one pass over its revision files' text:
Alembic (which imports every revision file) only runs for schemas with something to do.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import json
import logging
import multiprocessing
import os
import signal
import sys
import time
from collections.abc import Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from contextlib import nullcontext
from dataclasses import dataclass, field
from graphlib import CycleError, TopologicalSorter
from typing import Any, TextIO

from alembic import command
from alembic.util import CommandError, to_tuple
from psycopg import sql
from sqlalchemy import URL, Connection, Engine
from sqlalchemy.exc import DBAPIError

from gamedb.alembic_config import make_config, script_directory
from gamedb.database import connect, error_line, migration_engine
from gamedb.discovery import SchemaInfo
from gamedb.drift import schema_drift
from gamedb.errors import DiscoveryError, GamedbError
from gamedb.migration_session import check_session_settings, retry_lock_timeouts
from gamedb.names import EXTENSIONS_SCHEMA, VERSION_TABLE_SCHEMA
from gamedb.project import Project
from gamedb.revision_index import RevisionIndex, UnreadableRevisions, read_revision_index
from gamedb.run_options import set_run_options

log = logging.getLogger("gamedb.fleet")

SYSTEM_SCHEMAS = frozenset({"public", "information_schema", VERSION_TABLE_SCHEMA, EXTENSIONS_SCHEMA})


def upgrade_order(schemas: dict[str, SchemaInfo]) -> list[SchemaInfo]:
    """Schemas so that each comes after everything in its depends_on; by name among equals."""
    sorter = TopologicalSorter({name: set(info.depends_on) & schemas.keys() for name, info in schemas.items()})
    try:
        sorter.prepare()
    except CycleError as exc:
        raise DiscoveryError(f"depends_on forms a cycle among schemas: {', '.join(sorted(set(exc.args[1])))}") from None
    ordered: list[SchemaInfo] = []
    while sorter.is_active():
        ready = sorted(sorter.get_ready())
        ordered += [schemas[name] for name in ready]
        sorter.done(*ready)
    return ordered


def revision_index(project: Project, schemas: dict[str, SchemaInfo], info: SchemaInfo) -> RevisionIndex:
    """The schema's revision graph: from the files' text, or from Alembic when the text is unusual."""
    try:
        return read_revision_index(info.versions_dir)
    except UnreadableRevisions as exc:
        log.debug("%s: %s; asking Alembic", info.name, exc)
    script = script_directory(make_config(project, schemas, info))
    return RevisionIndex({s.revision: to_tuple(s.down_revision, default=()) for s in script.walk_revisions()})


# What status needs besides drift, in one round trip (one simple-protocol request): a DO block reads
# each declared version table that exists (table names can't be parameters of a plain SELECT) into a
# transaction-local setting, then one SELECT returns every schema's name, every table of schema
# `alembic` and those rows.
CATALOG_SCRIPT = r"""
DO $gamedb$
DECLARE
    version_table text;
    found jsonb := '{{}}';
    rows jsonb;
BEGIN
    FOR version_table IN
        SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = {schema} AND c.relkind IN ('r', 'p') AND c.relname = ANY({declared})
    LOOP
        EXECUTE format('SELECT coalesce(jsonb_agg(version_num), ''[]'') FROM %I.%I', {schema}, version_table)
            INTO rows;
        found := found || jsonb_build_object(version_table, rows);
    END LOOP;
    PERFORM set_config('gamedb.version_rows', found::text, true);
END $gamedb$;
SELECT 'schema', nspname, NULL FROM pg_namespace WHERE nspname NOT LIKE 'pg\_%'
UNION ALL
SELECT 'table', c.relname, NULL FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = {schema} AND c.relkind IN ('r', 'p')
UNION ALL
SELECT 'versions', key, value::text FROM jsonb_each(current_setting('gamedb.version_rows')::jsonb)
"""


@dataclass(frozen=True)
class CatalogSnapshot:
    """What the database holds of the fleet, read in one round trip."""

    namespaces: set[str]
    version_tables: set[str]  # every table of schema `alembic`
    versions: dict[str, list[str]]  # schema -> rows of its version table ([] when missing or empty)


def read_catalog(connection: Connection, schemas: list[SchemaInfo]) -> CatalogSnapshot:
    """Namespaces, the tables of schema `alembic` and every declared schema's version rows, in one request."""
    by_table = {info.version_table: info.name for info in schemas}
    with connection.begin() if not connection.in_transaction() else nullcontext():
        cursor = connection.connection.cursor()
        try:
            script = sql.SQL(CATALOG_SCRIPT).format(
                schema=sql.Literal(VERSION_TABLE_SCHEMA), declared=sql.Literal(sorted(by_table))
            )
            cursor.execute(script.as_string(cursor))  # no parameters: one simple-protocol request
            cursor.nextset()  # past the DO block's empty result
            rows = cursor.fetchall()
        finally:
            cursor.close()
    versions: dict[str, list[str]] = {info.name: [] for info in schemas}
    for kind, name, found in rows:
        if kind == "versions" and name in by_table:
            versions[by_table[name]] = sorted(json.loads(found))
    return CatalogSnapshot(
        namespaces={name for kind, name, _ in rows if kind == "schema"},
        version_tables={name for kind, name, _ in rows if kind == "table"},
        versions=versions,
    )


def read_versions(connection: Connection, schemas: list[SchemaInfo]) -> dict[str, list[str]]:
    """Each schema's rows in its version table, in one round trip ([] when the table is missing)."""
    return read_catalog(connection, schemas).versions


@dataclass
class SchemaStatus:
    """One schema's line in `gamedb status`."""

    schema: str
    version_table: str
    current: list[str]
    heads: list[str]
    pending: list[str]
    drift: list[str] | None  # None: not compared (pending revisions first)
    problem: str | None = None  # version rows no run can start from (upgrade-all refuses them too)

    @property
    def state(self) -> str:
        if self.problem:
            return f"broken: {self.problem}"
        if self.pending:
            return f"{len(self.pending)} pending"
        if self.drift:
            return "drift"
        return "at head"

    @property
    def clean(self) -> bool:
        return not self.problem and not self.pending and not self.drift

    def as_json(self) -> dict[str, Any]:
        return {
            "schema": self.schema,
            "version_table": f"{VERSION_TABLE_SCHEMA}.{self.version_table}",
            "current": self.current,
            "heads": self.heads,
            "pending": self.pending,
            "drift": self.drift,
            "problem": self.problem,
            "state": self.state,
        }


@dataclass
class DatabaseStatus:
    """Every declared schema, plus what the database holds that no service declares."""

    schemas: list[SchemaStatus]
    undeclared_schemas: list[str]
    orphan_version_tables: list[str]

    @property
    def clean(self) -> bool:
        return all(s.clean for s in self.schemas)


def database_status(
    project: Project, schemas: dict[str, SchemaInfo], url: URL, *, compare_models: bool = True
) -> DatabaseStatus:
    """Current revision, head, pending revisions and (for schemas at head) drift of every schema.

    Without `compare_models` it is one query: versions, undeclared schemas and orphan version tables.
    """
    ordered = upgrade_order(schemas)
    engine = migration_engine(url)
    try:
        with connect(engine) as conn:
            catalog = read_catalog(conn, ordered)
            current = catalog.versions
            rows: list[SchemaStatus] = []
            for info in ordered:
                index = revision_index(project, schemas, info)
                problem = version_rows_problem(index, current[info.name])
                pending = [] if problem else _pending(index, current[info.name])
                drift = None if pending or problem or not compare_models else schema_drift(conn, info)
                rows.append(
                    SchemaStatus(
                        info.name, info.version_table, current[info.name], index.heads, pending, drift, problem
                    )
                )
    finally:
        engine.dispose()
    declared_tables = {info.version_table for info in ordered}
    return DatabaseStatus(
        rows,
        sorted(catalog.namespaces - SYSTEM_SCHEMAS - set(schemas)),
        sorted(t for t in catalog.version_tables if t.startswith("alembic_version_") and t not in declared_tables),
    )


def version_rows_problem(index: RevisionIndex, current: list[str]) -> str | None:
    """Why a version table's rows can't all be current (one row below another), or None.

    Several rows are normal only for a schema with several heads, each row on its own branch.
    """
    if len(current) < 2:
        return None
    try:
        below = sorted(r for r in current if any(r in index.ancestry([o]) - {o} for o in current if o != r))
    except UnreadableRevisions:
        return None  # an unknown revision is reported as such by _pending
    if not below:
        return None
    return (
        f"{len(current)} version rows ({', '.join(current)}) and {', '.join(below)} is below another; "
        "delete the stale row by hand"
    )


def _pending(index: RevisionIndex, current: list[str]) -> list[str]:
    try:
        return index.pending(current)
    except UnreadableRevisions:
        return [f"? (database at unknown revision {','.join(current)})"]


@dataclass
class SchemaFailure:
    """The schema upgrade-all stopped at."""

    schema: str
    stayed_at: list[str] | None  # None: its version table could not be re-read after the failure
    revision: str | None
    error: str


Steps = list[tuple[tuple[str, ...], tuple[str, ...]]]


@dataclass
class UpgradeReport:
    """What `upgrade-all` did: upgraded (schema, from, to), the failure if any, what it never tried."""

    upgraded: list[tuple[str, list[str], list[str]]] = field(default_factory=list)
    already_at_head: list[str] = field(default_factory=list)
    failed: SchemaFailure | None = None
    not_attempted: list[str] = field(default_factory=list)
    # stopped by SIGINT: (schema, from, to as re-read (None: unknown), next pending revision)
    interrupted: list[tuple[str, list[str], list[str] | None, str | None]] = field(default_factory=list)
    was_interrupted: bool = False

    @property
    def ok(self) -> bool:
        return self.failed is None


@dataclass
class _Outcome:
    """One schema's run, as a worker process hands it back."""

    schema: str
    applied: Steps
    error: str | None = None
    stayed_at: list[str] | None = None
    interrupted: bool = False


def upgrade_all(project: Project, schemas: dict[str, SchemaInfo], url: URL, *, jobs: int = 1) -> UpgradeReport:
    """Bring every schema to its head; stop starting new schemas at the first failure.

    A schema starts once everything in its depends_on is at head; up to `jobs` schemas run at
    once, each in its own process, on its own connection, under its own migration lock. Each
    revision commits alone with its version row, so a failure leaves the schema at the last
    revision that completed.
    """
    check_session_settings()  # a bad GAMEDB_LOCK_* must be one error, not a failure per worker
    ordered = upgrade_order(schemas)
    report = UpgradeReport()
    engine = migration_engine(url)
    try:
        with connect(engine) as conn:
            current = read_versions(conn, ordered)
    finally:
        engine.dispose()
    indexes: dict[str, RevisionIndex] = {}
    for info in ordered:
        indexes[info.name] = revision_index(project, schemas, info)
        if current[info.name] == indexes[info.name].heads:
            report.already_at_head.append(info.name)
    todo = [info for info in ordered if info.name not in report.already_at_head]
    for info in todo:
        problem = version_rows_problem(indexes[info.name], current[info.name])
        if problem:  # what status reports; Alembic would refuse it with a less useful message
            report.failed = SchemaFailure(info.name, current[info.name], None, f"version table {problem}")
            report.not_attempted = [i.name for i in todo if i.name != info.name]
            return report
    try:
        for outcome in _schedule(todo, jobs, (project, schemas, url)):
            _record(report, outcome, current, indexes)
    except _Interrupted:
        report.was_interrupted = True
    finished = {name for name, _, _ in report.upgraded} | set(report.already_at_head)
    finished |= {name for name, *_ in report.interrupted}
    if report.failed is not None:
        finished.add(report.failed.schema)
    report.not_attempted = [info.name for info in todo if info.name not in finished]
    return report


def _record(
    report: UpgradeReport, outcome: _Outcome, current: dict[str, list[str]], indexes: dict[str, RevisionIndex]
) -> None:
    """Add one schema's outcome to the report."""
    if outcome.interrupted:
        report.was_interrupted = True
        after = outcome.stayed_at
        pending = _pending(indexes[outcome.schema], after) if after is not None else []
        report.interrupted.append((outcome.schema, current[outcome.schema], after, pending[0] if pending else None))
        return
    if outcome.error is None:
        if outcome.applied:
            report.upgraded.append((outcome.schema, sorted(outcome.applied[0][0]), sorted(outcome.applied[-1][1])))
        else:  # a concurrent run did the work while this one waited for the lock
            report.already_at_head.append(outcome.schema)
    elif report.failed is None:
        pending = _pending(indexes[outcome.schema], outcome.stayed_at) if outcome.stayed_at is not None else []
        report.failed = SchemaFailure(outcome.schema, outcome.stayed_at, pending[0] if pending else None, outcome.error)


STOP_GRACE_SECONDS = 15.0  # after SIGINT, how long workers get to roll back before SIGKILL
Work = tuple[Project, dict[str, SchemaInfo], URL]  # what every schema's upgrade needs


class _Interrupted(Exception):
    """upgrade-all was interrupted (SIGINT); every outcome up to the stop has been yielded."""


class _Runner:
    """Upgrades schemas in one process: the work it was given and an engine made in that process."""

    def __init__(self, work: Work, *, in_worker: bool) -> None:
        self.project, self.schemas, self.url = work
        self.in_worker = in_worker
        self.engine: Engine | None = None

    def run(self, name: str) -> _Outcome:
        if self.engine is None:
            self.engine = migration_engine(self.url)
        info = self.schemas[name]
        if self.in_worker:  # idle workers ignore SIGINT (see _init_worker); while migrating, it stops the run
            signal.signal(signal.SIGINT, signal.default_int_handler)
        try:
            return _Outcome(name, _upgrade_one(self.project, self.schemas, info, self.engine))
        except KeyboardInterrupt:
            # psycopg cancelled the statement in flight; its revision's transaction is rolled back
            signal.signal(signal.SIGINT, signal.SIG_IGN)
            return _Outcome(name, [], "interrupted", _versions_after_failure(self.engine, info), interrupted=True)
        except (CommandError, DBAPIError, GamedbError) as exc:
            return _Outcome(name, [], error_line(exc), _versions_after_failure(self.engine, info))
        finally:
            if self.in_worker:
                signal.signal(signal.SIGINT, signal.SIG_IGN)

    def close(self) -> None:
        if self.engine is not None:
            self.engine.dispose()
            self.engine = None


_WORKER: _Runner | None = None  # in a worker process only: set by the pool's initializer


def _run_in_worker(name: str) -> _Outcome:
    assert _WORKER is not None
    return _WORKER.run(name)


def _schedule(todo: list[SchemaInfo], jobs: int, work: Work) -> Iterator[_Outcome]:
    """Run schemas as their dependencies finish; after a failure, start nothing new."""
    plan = _Plan(todo)
    ready = plan.ready()
    failed = False
    if jobs <= 1 or len(todo) <= 1 or "fork" not in multiprocessing.get_all_start_methods():
        runner = _Runner(work, in_worker=False)
        try:
            while ready and not failed:
                try:
                    outcome = runner.run(ready.pop(0))
                except KeyboardInterrupt:  # between two schemas
                    raise _Interrupted from None
                failed = outcome.error is not None
                ready += plan.finished(outcome)
                yield outcome
                if outcome.interrupted:
                    raise _Interrupted
        finally:  # in this process the engine must not outlive the call (a next call may use another URL)
            runner.close()
        return
    context = multiprocessing.get_context("fork")
    with ProcessPoolExecutor(jobs, mp_context=context, initializer=_init_worker, initargs=(work, os.getpid())) as pool:
        running: dict[Future[_Outcome], str] = {}
        try:
            while ready or running:
                while ready and not failed and len(running) < jobs:
                    name = ready.pop(0)
                    running[pool.submit(_run_in_worker, name)] = name
                if not running:
                    break
                done, _ = wait(running, return_when=FIRST_COMPLETED)
                for future in done:
                    del running[future]
                    outcome = future.result()
                    failed = failed or outcome.error is not None
                    ready += plan.finished(outcome)
                    yield outcome
        except KeyboardInterrupt:
            yield from _stop_workers(running)
            raise _Interrupted from None


def _stop_workers(running: dict[Future[_Outcome], str]) -> Iterator[_Outcome]:
    """SIGINT every worker (each rolls back the revision in flight and re-reads its version row), then
    collect what they report; a worker still busy after STOP_GRACE_SECONDS is killed."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not abandon the workers mid-stop
    try:
        for child in multiprocessing.active_children():
            os.kill(child.pid, signal.SIGINT)
        done, late = wait(running, timeout=STOP_GRACE_SECONDS)
        for child in multiprocessing.active_children() if late else ():
            os.kill(child.pid, signal.SIGKILL)
        for future, name in running.items():
            outcome = future.result() if future in done and future.exception() is None else None
            yield outcome or _Outcome(name, [], "interrupted", None, interrupted=True)
    finally:
        signal.signal(signal.SIGINT, signal.default_int_handler)


def _init_worker(work: Work, parent_pid: int) -> None:
    """Worker initializer: the work this process runs; SIGINT is the parent's to handle (it stops the
    workers itself, see _stop_workers); if upgrade-all is killed, its workers die too (their sessions
    then end, rolling back the revision in flight and releasing the schema's lock) instead of running on."""
    global _WORKER
    _WORKER = _Runner(work, in_worker=True)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
        if os.getppid() != parent_pid:  # the parent died before prctl took effect
            os._exit(1)


PR_SET_PDEATHSIG = 1


class _Plan:
    """The schemas still to run, as graphlib hands them out: a schema is ready once its depends_on are done.

    A schema that failed is never marked done, so nothing that depends on it becomes ready.
    """

    def __init__(self, todo: list[SchemaInfo]) -> None:
        names = {info.name for info in todo}
        self.order = [info.name for info in todo]
        self.sorter = TopologicalSorter({info.name: set(info.depends_on) & names for info in todo})
        self.sorter.prepare()  # upgrade_order already refused cycles

    def ready(self) -> list[str]:
        return sorted(self.sorter.get_ready(), key=self.order.index)

    def finished(self, outcome: _Outcome) -> list[str]:
        """Schemas whose last dependency just reached head, in upgrade order."""
        if outcome.error is not None:
            return []
        self.sorter.done(outcome.schema)
        return self.ready()


def _upgrade_one(project: Project, schemas: dict[str, SchemaInfo], info: SchemaInfo, engine: Engine) -> Steps:
    """Upgrade one schema to head; return the steps this run applied (source ids, destination ids)."""
    config = make_config(project, schemas, info)
    applied: Steps = []
    set_run_options(config, engine=engine, logging_configured=True, applied=applied)
    retry_lock_timeouts(lambda: command.upgrade(config, "head"))
    return applied


REREAD_DELAYS = (0.0, 0.5, 1.0, 2.0, 4.0, 8.0)  # about 15 s: a server restart's recovery


def _versions_after_failure(engine: Engine, info: SchemaInfo) -> list[str] | None:
    """The schema's version rows re-read on a fresh connection, retried while the server is away
    (restarting, refusing connections); None when they could not be read: the report says so
    instead of guessing."""
    for delay in REREAD_DELAYS:
        time.sleep(delay)
        try:
            with connect(engine) as conn:
                return read_versions(conn, [info])[info.name]
        except (GamedbError, DBAPIError) as exc:
            log.debug("re-reading the version row of %s: %s", info.name, exc)
    return None


def write_upgrade_plan(project: Project, schemas: dict[str, SchemaInfo], output: TextIO) -> None:
    """The SQL of upgrade-all from an empty database: every schema in order, each with its prelude."""
    check_session_settings()  # before the first line of the plan is written
    ordered = upgrade_order(schemas)
    output.write(
        "-- gamedb upgrade-all: every schema from base to head, in depends_on order:\n"
        f"--   {', '.join(s.name for s in ordered)}\n"
        "-- Each schema is one transaction (BEGIN ... COMMIT), as in upgrade-all; apply with\n"
        "--   psql -v ON_ERROR_STOP=1 -f this_file.sql\n"
        "-- (psql -1 also works for small plans, but one transaction for the whole fleet can exceed\n"
        "-- the server's lock table: max_locks_per_transaction.)\n\n"
    )
    for info in ordered:
        config = make_config(project, schemas, info, output_buffer=output)
        set_run_options(config, logging_configured=True)
        command.upgrade(config, "head", sql=True)
