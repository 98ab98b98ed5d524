"""`gamedb move`: the steps in order, the markers a rerun reads, and the clean-up on any failure.

1. checks (gamedb.move.checks): nothing changes unless every one passes;
2. the target: the schema's roles and logins, the schema itself marked "move in progress", brought
   to the source's revision by the schema's own migrations (the reviewed DDL), emptied of rows the
   migrations seeded (the copy brings them);
3. publication on the source, subscription on the target, the initial copy shown table by table;
4. the cut-over (gamedb.move.cutover), committed on the source in one transaction;
5. the placement line rewritten, the target's marker cleared.

A failure or Ctrl-C before the cut-over's COMMIT removes the subscription, slot, publication and
the target's half-made schema, and leaves the source as it was. A kill (no chance to clean up)
leaves the marker: the next `gamedb move` of the schema cleans up first, or, when the cut-over had
committed, resumes at step 5, and says which.
"""

from __future__ import annotations

import os
import signal
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import psycopg
from alembic import command
from psycopg import sql
from sqlalchemy import URL

from gamedb.discovery import SchemaInfo, get_schema
from gamedb.errors import GamedbError, MoveFailed, MoveInterrupted, MoveRefused
from gamedb.migrate.config import make_config
from gamedb.migrate.revision_files import check_versions_dir
from gamedb.migrate.run_options import set_run_options
from gamedb.move import checks, replication
from gamedb.move.cutover import CutoverReport, cut_over, retired_on_source, tables_of
from gamedb.move.progress import CopyProgress
from gamedb.names import VERSION_TABLE_SCHEMA
from gamedb.project import Project
from gamedb.roles.apply import model_statements, serialize_role_changes
from gamedb.roles.model import login_statements, role_marker, session_settings
from gamedb.server.connections import error_line, one_value, psycopg_connect
from gamedb.server.placement import DEFAULT_SERVER, read_placement, server_url, validate_server_name, write_placement
from gamedb.timeouts import lock_timeout

IN_PROGRESS = "gamedb: move from server {} in progress"
# For the kill tests: the move stops (sleeps) at this step so a test can kill it there.
HOLD_AT_ENV = "GAMEDB_MOVE_HOLD_AT"


def _step(name: str, say: Callable[[str], None]) -> None:
    if os.environ.get(HOLD_AT_ENV) == name:
        say(f"holding at step {name}")
        sys.stdout.flush()
        time.sleep(600)


Say = Callable[[str], None]


@dataclass
class MoveReport:
    """What a move did."""

    schema: str
    source: str
    target: str
    revision: list[str] = field(default_factory=list)
    cutover: CutoverReport | None = None
    logins: list[str] = field(default_factory=list)
    copy_seconds: float = 0.0
    total_seconds: float = 0.0
    placement_file: Path | None = None
    earlier: str | None = None  # "resumed" / "cleaned up": what this run did about an earlier one


def move_schema(
    project: Project,
    schemas: dict[str, SchemaInfo],
    schema: str,
    to: str,
    *,
    verify: bool = False,
    drop_source: bool = False,
    say: Say = print,
) -> MoveReport:
    """Move `schema` to server `to`; rewrite its placement line. See the module docstring."""
    started = time.monotonic()
    info = get_schema(schema, schemas)
    validate_server_name(to)
    check_versions_dir(info, schemas)  # the target is built by these files: refuse unusable ones first
    source_server = read_placement(project, known=schemas).get(info.name, DEFAULT_SERVER)
    target_url = server_url(project, to)
    report = MoveReport(info.name, source_server, to)
    if to == source_server:
        with _connect(target_url, f"server {to!r}") as target:
            if _marker(target, info.name) is not None:  # a move that was killed after its placement was written
                _clear_marker(target, info.name)
                say(f"finished an earlier move of {info.name} to {to}: its marker on the target was left behind")
                report.earlier = "resumed"
                return report
        raise MoveRefused(f"schema {info.name!r} is already on server {to!r} ([tool.gamedb.placement])")
    source_url = server_url(project, source_server)
    with (
        _connect(source_url, f"source server {source_server!r}") as source,
        _connect(target_url, f"target server {to!r}") as target,
    ):
        if checks.system_identity(source) == checks.system_identity(target):
            raise MoveRefused(f"servers {source_server!r} and {to!r} are the same database: nothing to move")
        checks.claim_move(source, info.name)  # before the markers: a running move's are not an earlier one's
        marker = _marker(target, info.name)
        if marker == IN_PROGRESS.format(source_server) and not _schema_exists(source, info.name):
            # the source schema is gone only once a cut-over committed (renamed, or with --drop-source
            # dropped, when no renamed copy is left to find): the target holds the data, never clean it up
            kept = retired_on_source(source, info.name, to)
            say(
                f"resuming an earlier move of {info.name} to {to}: its cut-over had committed"
                + ("" if kept else " (the source schema is gone: the target holds the only copy)")
            )
            report.earlier = "resumed"
            report.placement_file = _finish(project, target, info.name, to, say)
            return report
        if marker is not None or replication.leftovers(source, target, info.name):
            say(f"an earlier move of {info.name} was interrupted: cleaning up first")
            _clean_up(source, target, info, say, source_server)
            report.earlier = "cleaned up"
        report.revision = checks.check_source(source, info, source_server)
        _verify_history(project, schemas, info, source_url)  # the target is built from these files
        checks.check_target(target, info, to)
        with _cleaned_up_on_failure(source, target, info, say, source_server):
            report.logins = _prepare_target(
                project, schemas, info, source, target, target_url, source_server, report, say
            )
            say(f"target {to}: schema {info.name} at {','.join(report.revision)} by its migrations, roles applied")
            checks.refuse_drift(source, target, info.name)
            _step("prepared", say)
            tables = tables_of(source, info.name)
            replication.publish(source, info.name)
            replication.create_slot(source, info.name, lock_timeout())
            replication.subscribe(target, info.name, source_url)
            say(f"copying {len(tables)} table(s) of {info.name} from {source_server} to {to}")
            _step("copying", say)
            copy_started = time.monotonic()
            live = CopyProgress(info.name, len(tables))

            def copied(table: str, rows: int) -> None:
                live.clear()
                say(f"  copied {info.name}.{table}: {rows} rows")

            try:
                rows = replication.wait_for_copy(target, info.name, tables, copied, live.update)
            finally:
                live.clear()
            report.copy_seconds = time.monotonic() - copy_started
            say(f"initial copy: {sum(rows.values()):,} rows in {len(rows)} table(s), {report.copy_seconds:.1f}s")
            say("initial copy done, streaming; cutting over (writes to the source wait)")
            report.cutover = _cut_over(source_url, source, target, info, to, verify, drop_source, say, report.revision)
        _step("committed", say)
        report.placement_file = _finish(project, target, info.name, to, say)
    report.total_seconds = time.monotonic() - started
    return report


def _verify_history(project: Project, schemas: dict[str, SchemaInfo], info: SchemaInfo, source_url: URL) -> None:
    """Refuse to move a schema whose applied revisions were edited (or whose record was altered): the
    target runs the files as they are now, and its record would take the edited ones as applied."""
    from gamedb.fleet.order import revision_index
    from gamedb.migrate.checksums import verify_history
    from gamedb.server.connections import connect, migration_engine

    engine = migration_engine(source_url)
    try:
        with connect(engine) as connection:
            verify_history(connection, info, revision_index(project, schemas, info))
    finally:
        engine.dispose()


def _cut_over(
    source_url: URL,
    source: psycopg.Connection,
    target: psycopg.Connection,
    info: SchemaInfo,
    to: str,
    verify: bool,
    drop_source: bool,
    say: Say,
    revision: list[str],
) -> CutoverReport:
    moved_at = datetime.now(UTC).strftime("%Y%m%d%H%M%S")
    with psycopg_connect(source_url) as source_tx:  # not autocommit: the one transaction of the switch
        result = cut_over(
            source_tx,
            source,
            target,
            info,
            target_server=to,
            verify=verify,
            drop_source=drop_source,
            lock_timeout=lock_timeout(),
            drop_subscription=lambda: replication.drop_subscription(target, info.name),
            moved_at=moved_at,
            revision=revision,
        )
        _step("cutover", say)
        source_tx.commit()
        result.write_pause_seconds = time.monotonic() - result.paused_at
    return result


def _prepare_target(
    project: Project,
    schemas: dict[str, SchemaInfo],
    info: SchemaInfo,
    source: psycopg.Connection,
    target: psycopg.Connection,
    target_url: URL,
    source_server: str,
    report: MoveReport,
    say: Say,
) -> list[str]:
    """Roles, logins, the marked schema at the source's revision, no rows. Returns the logins copied."""
    ident = sql.Identifier(info.name)
    with target.transaction():  # roles, the schema and its marker together: a kill leaves all or none
        serialize_role_changes(target, say)  # a move of another schema to this server may be at this step
        target.execute(sql.SQL("CREATE SCHEMA {}").format(ident))
        target.execute(
            sql.SQL("COMMENT ON SCHEMA {} IS {}").format(ident, sql.Literal(IN_PROGRESS.format(source_server)))
        )
        target.execute(sql.SQL("SET LOCAL client_min_messages = warning"))
        for statement in model_statements([info]):
            target.execute(statement)
        target.execute(sql.SQL("ALTER SCHEMA {} OWNER TO {}").format(ident, sql.Identifier(info.owner_role)))
    config = make_config(project, schemas, info)
    set_run_options(config, url=target_url, logging_configured=True)
    for revision in report.revision:
        command.upgrade(config, revision)
    tables = tables_of(target, info.name)
    if tables:  # rows a revision seeded: the copy brings the source's own
        names = sql.SQL(", ").join(sql.Identifier(info.name, t) for t in tables)
        target.execute(sql.SQL("TRUNCATE {}").format(names))
    return _copy_logins(source, target, info, say)


def _copy_logins(source: psycopg.Connection, target: psycopg.Connection, info: SchemaInfo, say: Say) -> list[str]:
    """The service logins gamedb made for the schema on the source, with their password verifiers
    (never the passwords: the server stores a verifier as given), so the apps log in unchanged."""
    rows = source.execute(
        "SELECT a.rolname, a.rolpassword FROM pg_authid a WHERE shobj_description(a.oid, 'pg_authid') = %s ORDER BY 1",
        (role_marker("service login", info.name),),
    ).fetchall()
    with target.transaction():
        serialize_role_changes(target, say)
        for login, verifier in rows:
            for statement in login_statements(login, info.rw_role, session_settings(info), verifier, schema=info.name):
                target.execute(statement)
    return [login for login, _ in rows]


def _finish(project: Project, target: psycopg.Connection, schema: str, to: str, say: Say) -> Path:
    try:
        path = write_placement(project, schema, to)
    except (OSError, GamedbError) as exc:  # the data has moved: say so, and how to record it
        raise MoveFailed(
            f"{schema} has moved to server {to!r}, but its placement could not be written ({error_line(exc)}): "
            f'rerun `gamedb move {schema} --to {to}` to write it, or set {schema} = "{to}" in '
            "[tool.gamedb.placement] by hand; until then commands and apps still look for it on its old server"
        ) from None
    _clear_marker(target, schema)
    if to == DEFAULT_SERVER:  # an unlisted schema is on the default server: its line is gone
        say(f"placement: {schema} removed from {path} (an unlisted schema is on server {DEFAULT_SERVER!r})")
    else:
        say(f"placement: {schema} = {to!r} written to {path}")
    return path


@contextmanager
def _cleaned_up_on_failure(
    source: psycopg.Connection, target: psycopg.Connection, info: SchemaInfo, say: Say, source_server: str
) -> Iterator[None]:
    try:
        yield
    except KeyboardInterrupt:
        previous = signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not stop the clean-up
        try:
            _clean_up(source, target, info, say, source_server)
        finally:
            signal.signal(signal.SIGINT, previous)
        raise MoveInterrupted(f"interrupted: cleaned up; {info.name} stays on {source_server}") from None
    except Exception as exc:  # noqa: BLE001 - any failure (a revision's own error too) is cleaned up and named
        reason = error_line(exc)
        _clean_up(source, target, info, say, source_server)
        raise MoveFailed(
            f"move of {info.name} stopped: {reason}; cleaned up, {info.name} stays on {source_server}"
        ) from None


def _clean_up(
    source: psycopg.Connection, target: psycopg.Connection, info: SchemaInfo, say: Say, source_server: str
) -> None:
    """Subscription, slot, publication and the target's half-made schema removed; the source as it was.

    The target is cleaned first: a source that died mid-move must not keep the target's half-made
    schema (a rerun would refuse it); what is left on the dead source is named for a rerun to remove.
    """
    for conn in (source, target):
        if not conn.closed and conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
            conn.rollback()
    removed = []
    name = replication.replication_name(info.name)
    try:
        if replication.drop_subscription(target, info.name):
            removed.append(f"subscription {name}")
    except psycopg.Error:
        if replication.drop_subscription(target, info.name, source_reachable=False):
            removed.append(f"subscription {name} (detached from its slot)")
    if _marker(target, info.name) is not None:
        target.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(info.name)))
        for table in (info.version_table, info.checksum_table):
            target.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(sql.Identifier(VERSION_TABLE_SCHEMA, table)))
        removed.append(f"schema {info.name} and its history tables on the target")
    try:
        removed += replication.drop_leftovers(source, info.name)
        left = replication.leftovers(source, target, info.name)
    except psycopg.OperationalError as exc:
        raise MoveFailed(
            f"move of {info.name} stopped and source server {source_server!r} went away during "
            f"the clean-up ({error_line(exc)}); removed: {', '.join(removed) or 'nothing'}; its publication and "
            f"replication slot {name} may remain (a slot holds WAL): rerun the move once it is back, it cleans up "
            f"first; {info.name} stays on the source"
        ) from None
    if left:
        raise MoveFailed(f"clean-up of {info.name} incomplete: {', '.join(left)} still exist; drop them by hand")
    say(f"removed: {', '.join(removed) or 'nothing was left'}")


def _marker(conn: psycopg.Connection, schema: str) -> str | None:
    """The move marker on `schema`, if the schema exists and carries one."""
    row = conn.execute(
        "SELECT obj_description(oid, 'pg_namespace') FROM pg_namespace WHERE nspname = %s", (schema,)
    ).fetchone()
    if row is None or row[0] is None or not row[0].startswith("gamedb: move from server "):
        return None
    marker: str = row[0]
    return marker


def _clear_marker(conn: psycopg.Connection, schema: str) -> None:
    conn.execute(sql.SQL("COMMENT ON SCHEMA {} IS NULL").format(sql.Identifier(schema)))


def _schema_exists(conn: psycopg.Connection, schema: str) -> bool:
    return one_value(conn.execute("SELECT to_regnamespace(%s)", (schema,))) is not None


@contextmanager
def _connect(url: URL, what: str) -> Iterator[psycopg.Connection]:
    try:
        conn = psycopg_connect(url, autocommit=True)
    except GamedbError as exc:
        raise MoveRefused(f"{what} is unreachable: {exc}") from None
    with conn:
        yield conn
