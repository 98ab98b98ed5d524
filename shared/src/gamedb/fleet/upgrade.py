"""`gamedb upgrade-all`: every schema to its head, in dependency order, up to `jobs` at once.

A schema already at its head costs one row read and one pass over its revision files' text:
Alembic (which imports every revision file) only runs for schemas with something to do.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import multiprocessing
import os
import queue
import signal
import sys
import time
from collections.abc import Iterator, Mapping
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass, field
from graphlib import TopologicalSorter
from typing import Any

import psycopg
from alembic import command
from alembic.util import CommandError
from sqlalchemy import URL, Engine
from sqlalchemy.exc import DBAPIError, SQLAlchemyError

from gamedb.discovery import SchemaInfo
from gamedb.errors import GamedbError
from gamedb.fleet.order import revision_index, upgrade_order
from gamedb.fleet.progress import Listener, Progress
from gamedb.fleet.sessions import worker_engine
from gamedb.fleet.status import as_routes, pending_revisions, read_catalog, read_versions, version_rows_problem
from gamedb.migrate.checksums import Recorded, check_fleet
from gamedb.migrate.config import make_config
from gamedb.migrate.revision_index import RevisionIndex
from gamedb.migrate.run_options import set_run_options
from gamedb.migrate.session import check_session_settings, retry_lock_timeouts
from gamedb.project import Project
from gamedb.server.connections import connect, error_line, migration_engine
from gamedb.server.placement import Route, by_server

log = logging.getLogger(__name__)


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
    servers: dict[str, str] = field(default_factory=dict)  # schema -> server, when schemas are on several

    def where(self, schema: str) -> str:
        """The text " on SERVER" when the fleet spans several servers, else nothing."""
        return f" on {self.servers[schema]}" if schema in self.servers else ""

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


def upgrade_all(
    project: Project,
    schemas: dict[str, SchemaInfo],
    where: URL | Mapping[str, Route],
    *,
    jobs: int = 1,
    progress: Progress | None = None,
) -> UpgradeReport:
    """Bring every schema to its head; stop starting new schemas at the first failure.

    `where`: one URL for every schema, or each schema's Route (placement). A schema starts once
    everything in its depends_on is at head, whichever server that is on; up to `jobs` schemas run
    at once on each server, each in its own process, on its own connection, under its own migration
    lock. Each revision commits alone with its version row, so a failure leaves the schema at the
    last revision that completed. `progress`, when given, is told what starts, steps and finishes.
    """
    check_session_settings()  # a bad GAMEDB_LOCK_* must be one error, not a failure per worker
    ordered = upgrade_order(schemas)
    report = UpgradeReport()
    routes = as_routes(schemas, where)
    if len(by_server(routes)) > 1:
        report.servers = {name: route.server for name, route in routes.items()}
    current: dict[str, list[str]] = {}
    recorded: dict[str, dict[str, Recorded]] = {}
    chains: dict[str, str | None] = {}
    old_forms: set[str] = set()  # a run under the schema's lock converts the table (gamedb.migrate.history)
    for names in by_server(routes).values():
        engine = migration_engine(routes[names[0]].url)
        try:
            with connect(engine) as conn:
                catalog = read_catalog(conn, [schemas[name] for name in names])
                current |= catalog.versions
                recorded |= catalog.checksums
                chains |= catalog.chains
                old_forms |= catalog.old_forms
        finally:
            engine.dispose()
    indexes = {info.name: revision_index(project, schemas, info) for info in ordered}
    # refuses an applied revision edited or gone; a schema whose applied revisions lack checksum rows
    # runs (a no-op upgrade under its lock) so that they get recorded
    unrecorded = check_fleet(ordered, current, recorded, indexes, chains)
    for info in ordered:
        if current[info.name] == indexes[info.name].heads and not unrecorded[info.name] and info.name not in old_forms:
            report.already_at_head.append(info.name)
    todo = [info for info in ordered if info.name not in report.already_at_head]
    for info in todo:
        problem = version_rows_problem(indexes[info.name], current[info.name])
        if problem:  # what status reports; Alembic would refuse it with a less useful message
            report.failed = SchemaFailure(info.name, current[info.name], None, f"version table {problem}")
            report.not_attempted = [i.name for i in todo if i.name != info.name]
            return report
    events: Any = None  # the progress events' queue: multiprocessing's when workers fork, else queue.Queue
    listener: Listener | None = None
    if progress is not None:
        progress.begin({info.name: pending_revisions(indexes[info.name], current[info.name]) for info in todo})
        fork = "fork" in multiprocessing.get_all_start_methods()
        events = multiprocessing.get_context("fork").Queue() if fork else queue.Queue()
        listener = Listener(progress, events)
    try:
        for outcome in _schedule(todo, jobs, (project, schemas, routes), events):
            _record(report, outcome, current, indexes)
            if progress is not None:
                progress.finished(outcome.schema, _outcome_word(outcome))
    except _Interrupted:
        report.was_interrupted = True
    finally:
        if listener is not None:
            listener.stop()
    position = {info.name: i for i, info in enumerate(ordered)}  # workers finish in any order; print in one
    report.upgraded.sort(key=lambda upgraded: position[upgraded[0]])
    finished = {name for name, _, _ in report.upgraded} | set(report.already_at_head)
    finished |= {name for name, *_ in report.interrupted}
    if report.failed is not None:
        finished.add(report.failed.schema)
    report.not_attempted = [info.name for info in todo if info.name not in finished]
    return report


def _outcome_word(outcome: _Outcome) -> str:
    if outcome.interrupted:
        return "interrupted"
    return "at head" if outcome.error is None else "FAILED"


class _Announced(Steps):
    """The steps a run applied (RunOptions.applied), each also announced on the progress queue."""

    def __init__(self, events: Any, schema: str) -> None:
        super().__init__()
        self.events, self.schema = events, schema

    def append(self, step: Any) -> None:
        super().append(step)
        self.events.put(("step", self.schema))


def _record(
    report: UpgradeReport, outcome: _Outcome, current: dict[str, list[str]], indexes: dict[str, RevisionIndex]
) -> None:
    """Add one schema's outcome to the report."""
    if outcome.interrupted:
        report.was_interrupted = True
        after = outcome.stayed_at
        pending = pending_revisions(indexes[outcome.schema], after) if after is not None else []
        report.interrupted.append((outcome.schema, current[outcome.schema], after, pending[0] if pending else None))
        return
    if outcome.error is None:
        if outcome.applied:
            report.upgraded.append((outcome.schema, sorted(outcome.applied[0][0]), sorted(outcome.applied[-1][1])))
        else:  # a concurrent run did the work while this one waited for the lock
            report.already_at_head.append(outcome.schema)
    elif report.failed is None:
        pending = pending_revisions(indexes[outcome.schema], outcome.stayed_at) if outcome.stayed_at is not None else []
        report.failed = SchemaFailure(outcome.schema, outcome.stayed_at, pending[0] if pending else None, outcome.error)


STOP_GRACE_SECONDS = 15.0  # after SIGINT, how long workers get to roll back before SIGKILL
Work = tuple[Project, dict[str, SchemaInfo], dict[str, Route]]  # what every schema's upgrade needs


class _Interrupted(Exception):
    """upgrade-all was interrupted (SIGINT); every outcome up to the stop has been yielded."""


class _Runner:
    """Upgrades schemas in one process: the work it was given and an engine made in that process,
    whose connections it keeps from one schema to the next (gamedb.fleet.sessions)."""

    def __init__(self, work: Work, *, in_worker: bool, events: Any = None) -> None:
        self.project, self.schemas, self.routes = work
        self.in_worker = in_worker
        self.events = events  # where progress is announced (None: nobody listens)
        self.engines: dict[str, Engine] = {}  # one per server, made when its first schema runs here

    def run(self, name: str) -> _Outcome:
        route = self.routes[name]
        if route.server not in self.engines:  # its connections serve this process's next schemas too
            self.engines[route.server] = worker_engine(route.url)
        engine = self.engines[route.server]
        info = self.schemas[name]
        if self.in_worker:  # idle workers ignore SIGINT (see _init_worker); while migrating, it stops the run
            signal.signal(signal.SIGINT, signal.default_int_handler)
        applied: Steps = []
        if self.events is not None:
            self.events.put(("start", name))
            applied = _Announced(self.events, name)
        try:
            return _Outcome(name, _upgrade_one(self.project, self.schemas, info, engine, applied))
        except KeyboardInterrupt:
            # psycopg cancelled the statement in flight; its revision's transaction is rolled back
            signal.signal(signal.SIGINT, signal.SIG_IGN)
            return _Outcome(name, [], "interrupted", _versions_after_failure(engine, info), interrupted=True)
        except (CommandError, SQLAlchemyError, psycopg.Error, GamedbError) as exc:
            # SQLAlchemyError: also what a connection lost inside an autocommit block leaves behind
            return _Outcome(name, [], error_line(exc), _versions_after_failure(engine, info))
        finally:
            if self.in_worker:
                signal.signal(signal.SIGINT, signal.SIG_IGN)

    def close(self) -> None:
        for engine in self.engines.values():
            engine.dispose()
        self.engines.clear()


_WORKER: _Runner | None = None  # in a worker process only: set by the pool's initializer


def _run_in_worker(name: str) -> _Outcome:
    assert _WORKER is not None
    return _WORKER.run(name)


def _schedule(todo: list[SchemaInfo], jobs: int, work: Work, events: Any = None) -> Iterator[_Outcome]:
    """Run schemas as their dependencies finish, at most `jobs` at once per server; after a failure,
    start nothing new."""
    routes = work[2]
    servers = {routes[info.name].server for info in todo}
    plan = _Plan(todo)
    ready = plan.ready()
    failed = False
    if jobs * len(servers) <= 1 or len(todo) <= 1 or "fork" not in multiprocessing.get_all_start_methods():
        runner = _Runner(work, in_worker=False, events=events)
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
    workers = min(len(todo), jobs * len(servers))
    initargs = (work, os.getpid(), events)
    with ProcessPoolExecutor(workers, mp_context=context, initializer=_init_worker, initargs=initargs) as pool:
        running: dict[Future[_Outcome], str] = {}
        try:
            while ready or running:
                busy = [routes[name].server for name in running.values()]
                startable = [name for name in ready if busy.count(routes[name].server) < jobs]
                while startable and not failed:
                    name = startable.pop(0)
                    ready.remove(name)
                    running[pool.submit(_run_in_worker, name)] = name
                    busy.append(routes[name].server)
                    startable = [n for n in startable if busy.count(routes[n].server) < jobs]
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
            if child.pid is not None:  # started, as every active child is
                os.kill(child.pid, signal.SIGINT)
        done, late = wait(running, timeout=STOP_GRACE_SECONDS)
        for child in multiprocessing.active_children() if late else ():
            if child.pid is not None:
                os.kill(child.pid, signal.SIGKILL)
        for future, name in running.items():
            outcome = future.result() if future in done and future.exception() is None else None
            yield outcome or _Outcome(name, [], "interrupted", None, interrupted=True)
    finally:
        signal.signal(signal.SIGINT, signal.default_int_handler)


def _init_worker(work: Work, parent_pid: int, events: Any = None) -> None:
    """Worker initializer: the work this process runs; SIGINT is the parent's to handle (it stops the
    workers itself, see _stop_workers); if upgrade-all is killed, its workers die too (their sessions
    then end, rolling back the revision in flight and releasing the schema's lock) instead of running on."""
    global _WORKER
    _WORKER = _Runner(work, in_worker=True, events=events)
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


def _upgrade_one(
    project: Project, schemas: dict[str, SchemaInfo], info: SchemaInfo, engine: Engine, applied: Steps | None = None
) -> Steps:
    """Upgrade one schema to head; return the steps this run applied (source ids, destination ids)."""
    config = make_config(project, schemas, info)
    applied = [] if applied is None else applied
    set_run_options(config, engine=engine, logging_configured=True, applied=applied)
    retry_lock_timeouts(lambda: command.upgrade(config, "head"))
    return list(applied)  # a plain list: an _Announced one holds the queue, which can't travel back from a worker


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
