"""The cut-over: the source's writes stopped, the target caught up and checked, the source retired.

Everything on the source happens in ONE transaction that begins by taking SHARE locks on the
schema's tables (in-flight writes finish first; new ones wait) and ends, after the target is
verified and the subscription gone, by revoking the `_rw` role's writes, moving the version table
into the schema and renaming it. Until that COMMIT the source is untouched: a failure or a kill
anywhere before it leaves the source authoritative and writable, as it was.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import psycopg
from psycopg import sql

from gamedb.discovery import SchemaInfo
from gamedb.errors import MoveFailed
from gamedb.migrate.history import function_signature
from gamedb.move.checks import version_rows
from gamedb.move.replication import replication_name, wait_for_replay
from gamedb.names import VERSION_TABLE_SCHEMA
from gamedb.server.connections import one_value

log = logging.getLogger(__name__)
REPLAY_TIMEOUT_SECONDS = 120.0
MOVED_MARKER = "gamedb: moved to server "


@dataclass
class CutoverReport:
    """What the cut-over checked and how long the source refused writes."""

    rows: dict[str, int] = field(default_factory=dict)
    sequences: dict[str, int] = field(default_factory=dict)
    verified: bool = False
    write_pause_seconds: float = 0.0  # from the locks taken to the caller's COMMIT
    paused_at: float = 0.0
    source_left_as: str | None = None  # the renamed schema, None when dropped


def tables_of(conn: psycopg.Connection, schema: str) -> list[str]:
    """The schema's tables (partitioned parents, not their partitions), by name."""
    rows = conn.execute(
        "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = %s AND c.relkind IN ('r', 'p') AND NOT c.relispartition ORDER BY 1",
        (schema,),
    ).fetchall()
    return [r[0] for r in rows]


def _count(conn: psycopg.Connection, schema: str, table: str) -> int:
    rows: int = one_value(conn.execute(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(schema, table))))
    return rows


# How values print depends on session settings each server (or database) may set differently: the
# checksums compare text, so both sides print it the same way
_CANONICAL_OUTPUT = {
    "timezone": "UTC",
    "datestyle": "ISO, MDY",
    "intervalstyle": "postgres",
    "extra_float_digits": "1",
    "bytea_output": "hex",
    "lc_monetary": "C",
}


def _canonical_output(conn: psycopg.Connection) -> None:
    for name, value in _CANONICAL_OUTPUT.items():
        conn.execute("SELECT set_config(%s, %s, false)", (name, value))


def _checksum(conn: psycopg.Connection, schema: str, table: str) -> str:
    """An order-independent digest of every row's text (sum of per-row md5 prefixes)."""
    query = sql.SQL(
        "SELECT coalesce(sum(('x' || substr(md5(t::text), 1, 15))::bit(60)::bigint), 0)::text FROM {} t"
    ).format(sql.Identifier(schema, table))
    digest: str = one_value(conn.execute(query))
    return digest


def cut_over(
    source_tx: psycopg.Connection,
    source: psycopg.Connection,
    target: psycopg.Connection,
    info: SchemaInfo,
    *,
    target_server: str,
    verify: bool,
    drop_source: bool,
    lock_timeout: str,
    drop_subscription: Callable[[], object],
    moved_at: str,
    revision: list[str],
) -> CutoverReport:
    """Stop writes, catch up, check, retire the source. `source_tx` is a non-autocommit connection
    whose transaction this function leaves OPEN: the caller commits it (that is the switch)."""
    report = CutoverReport()
    schema = info.name
    tables = tables_of(source_tx, schema)
    source_tx.execute(sql.SQL("SET LOCAL lock_timeout = {}").format(sql.Literal(lock_timeout)))
    if tables:
        names = sql.SQL(", ").join(sql.Identifier(schema, t) for t in tables)
        source_tx.execute(sql.SQL("LOCK TABLE {} IN SHARE MODE").format(names))
    report.paused_at = time.monotonic()
    # SHARE conflicts with a migration run's lock on the version table: a running one is waited
    # for, later ones wait; one that ran during the copy changed rows that replicated while the
    # target's version table stayed at the revision the move began at (its next upgrade would run
    # the revision again there)
    version_table = sql.Identifier(VERSION_TABLE_SCHEMA, info.version_table)
    source_tx.execute(sql.SQL("LOCK TABLE {} IN SHARE MODE").format(version_table))
    now_at = version_rows(source_tx, info)
    if now_at != revision:
        raise MoveFailed(
            f"a migration ran on the source during the move ({schema} went from {','.join(revision)} to "
            f"{','.join(now_at) or 'no revision'}): rerun the move"
        )
    lsn = one_value(source_tx.execute("SELECT pg_current_wal_lsn()::text"))
    wait_for_replay(source, target, schema, lsn, REPLAY_TIMEOUT_SECONDS)
    log.debug("cut-over: replayed after %.3f s", time.monotonic() - report.paused_at)
    for name, last_value in source_tx.execute(
        "SELECT sequencename, last_value FROM pg_sequences WHERE schemaname = %s AND last_value IS NOT NULL",
        (schema,),
    ).fetchall():
        target.execute(
            "SELECT setval(format('%%I.%%I', %s::text, %s::text)::regclass, %s, true)", (schema, name, last_value)
        )
        report.sequences[name] = last_value
    if verify:
        _canonical_output(source_tx)
        _canonical_output(target)
    for table in tables:
        here, there = _count(source_tx, schema, table), _count(target, schema, table)
        if here != there:
            raise MoveFailed(f"{schema}.{table} has {here} rows on the source but {there} on the target")
        if verify and _checksum(source_tx, schema, table) != _checksum(target, schema, table):
            raise MoveFailed(f"{schema}.{table}: the rows' checksums differ between source and target")
        report.rows[table] = here
    report.verified = verify
    log.debug("cut-over: sequences and rows checked after %.3f s", time.monotonic() - report.paused_at)
    for (view,) in target.execute(
        "SELECT matviewname FROM pg_matviews WHERE schemaname = %s ORDER BY 1", (schema,)
    ).fetchall():  # logical replication carries tables only
        target.execute(sql.SQL("REFRESH MATERIALIZED VIEW {}").format(sql.Identifier(schema, view)))
    drop_subscription()
    log.debug("cut-over: subscription dropped after %.3f s", time.monotonic() - report.paused_at)
    source_tx.execute(sql.SQL("DROP PUBLICATION IF EXISTS {}").format(sql.Identifier(replication_name(schema))))
    # the schema's history (version rows, applied revisions' checksums) goes with the retired copy
    history = [sql.Identifier(VERSION_TABLE_SCHEMA, t) for t in (info.version_table, info.checksum_table)]
    # its recording function would point at a table that is no longer there (gamedb.migrate.history)
    source_tx.execute(sql.SQL("DROP FUNCTION IF EXISTS {}").format(sql.SQL(function_signature(schema))))
    if drop_source:
        source_tx.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(schema)))
        for history_table in history:
            source_tx.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(history_table))
    else:
        retired = retired_name(schema, moved_at)
        # no role model on the source (the embedded demo server before `roles apply`): no app role to revoke from
        if source_tx.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (info.rw_role,)).fetchone():
            source_tx.execute(
                sql.SQL("REVOKE INSERT, UPDATE, DELETE, TRUNCATE ON ALL TABLES IN SCHEMA {} FROM {}").format(
                    sql.Identifier(schema), sql.Identifier(info.rw_role)
                )
            )
            source_tx.execute(
                sql.SQL("REVOKE USAGE, UPDATE ON ALL SEQUENCES IN SCHEMA {} FROM {}").format(
                    sql.Identifier(schema), sql.Identifier(info.rw_role)
                )
            )
        for history_table in history:
            source_tx.execute(
                sql.SQL("ALTER TABLE IF EXISTS {} SET SCHEMA {}").format(history_table, sql.Identifier(schema))
            )
        source_tx.execute(
            sql.SQL("ALTER SCHEMA {} RENAME TO {}").format(sql.Identifier(schema), sql.Identifier(retired))
        )
        source_tx.execute(
            sql.SQL("COMMENT ON SCHEMA {} IS {}").format(
                sql.Identifier(retired), sql.Literal(f"{MOVED_MARKER}{target_server} at {moved_at}")
            )
        )
        report.source_left_as = retired
    return report


def retired_name(schema: str, moved_at: str) -> str:
    """What the source schema is renamed to: `<schema>_moved_<YYYYmmddHHMMSS>` (at most 61 characters)."""
    return f"{schema}_moved_{moved_at}"


def retired_on_source(source: psycopg.Connection, schema: str, target_server: str) -> str | None:
    """The renamed source schema of a committed cut-over of `schema` to `target_server`, if any."""
    row = source.execute(
        "SELECT nspname FROM pg_namespace WHERE nspname LIKE %s AND obj_description(oid, 'pg_namespace') LIKE %s "
        "ORDER BY nspname DESC LIMIT 1",
        (f"{schema}\\_moved\\_%", f"{MOVED_MARKER}{target_server} at %"),
    ).fetchone()
    return row[0] if row else None
