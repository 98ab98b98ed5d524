"""The replication a move runs on: one publication on the source, one subscription (and its slot)
on the target, all named `gamedb_move_<schema>`, and their removal (a slot left behind keeps WAL on
the source forever, so every removal path ends by checking for it)."""

from __future__ import annotations

import time
from collections.abc import Callable

import psycopg
from psycopg import sql
from sqlalchemy import URL, make_url

from gamedb.errors import MoveFailed
from gamedb.server.connections import one_value

POLL_SECONDS = 0.05
# pg_subscription is shared by the cluster's databases: only this database's counts
_SUBSCRIPTION = (
    "SELECT 1 FROM pg_subscription WHERE subname = %s "
    "AND subdbid = (SELECT oid FROM pg_database WHERE datname = current_database())"
)


def replication_name(schema: str) -> str:
    """Publication, subscription and slot name of a move of `schema` (at most 52 characters)."""
    return f"gamedb_move_{schema}"


def conninfo(url: URL) -> str:
    """The libpq keyword string the target's subscription uses to reach the source (password included:
    PostgreSQL keeps it in pg_subscription, readable by superusers only; gamedb never prints it)."""
    parsed = make_url(url).set(drivername="postgresql+psycopg")
    _, params = parsed.get_dialect()().create_connect_args(parsed)
    return psycopg.conninfo.make_conninfo(**{k: v for k, v in params.items() if v is not None})


def publish(source: psycopg.Connection, schema: str) -> None:
    name = sql.Identifier(replication_name(schema))
    # via the partition root: the subscription then lists the partitioned tables the move waits for
    # and counts (by default it would list only their partitions, and the wait would never end)
    source.execute(
        sql.SQL("CREATE PUBLICATION {} FOR TABLES IN SCHEMA {} WITH (publish_via_partition_root = true)").format(
            name, sql.Identifier(schema)
        )
    )


def create_slot(source: psycopg.Connection, schema: str, lock_timeout: str) -> None:
    """The move's logical slot, made on the source before the subscription, within `lock_timeout`.

    A logical slot waits for every transaction open on the source server (any database) when it is
    made; made by CREATE SUBSCRIPTION, that wait has no bound, and an idle-in-transaction session
    would hang the move. Here the wait is a lock wait that lock_timeout ends.
    """
    name = replication_name(schema)
    source.execute("SELECT set_config('lock_timeout', %s, false)", (lock_timeout,))
    try:
        source.execute("SELECT pg_create_logical_replication_slot(%s, 'pgoutput')", (name,))
    except psycopg.errors.LockNotAvailable:
        rows = source.execute(
            "SELECT pid, coalesce(nullif(application_name, ''), '-'), coalesce(datname, '-'), "
            "date_trunc('second', now() - xact_start)::text FROM pg_stat_activity "
            "WHERE backend_xid IS NOT NULL AND pid <> pg_backend_pid() ORDER BY xact_start LIMIT 3"
        ).fetchall()
        open_ones = "; ".join(f"pid {pid}, application {app}, database {db}, open {age}" for pid, app, db, age in rows)
        raise MoveFailed(
            f"the source server has an open transaction that logical replication must wait out before it can "
            f"start ({open_ones or 'it ended meanwhile'}): end it, or rerun when it has finished"
        ) from None
    finally:
        source.execute("RESET lock_timeout")


def subscribe(target: psycopg.Connection, schema: str, source_url: URL) -> None:
    """The subscription, on the slot create_slot made; the initial copy starts at once.

    The statement carries the source's password: with the server's defaults a failing statement is
    written to the target's log (log_min_error_statement = error), so this session logs no statement
    text while it runs (a superuser may set that; a subscription-only role keeps the server's choice).
    """
    name = replication_name(schema)
    for setting in ("log_min_error_statement", "log_statement"):
        quiet = "panic" if setting == "log_min_error_statement" else "none"
        try:
            target.execute(sql.SQL("SET {} = {}").format(sql.Identifier(setting), sql.Literal(quiet)))
        except psycopg.errors.InsufficientPrivilege:
            pass
    target.execute(
        # synchronous_commit = on: each applied change is flushed before the target confirms it, so the
        # slot's confirmed position moves at once (off, the default, lags by the WAL writer's delay,
        # which the cut-over would spend waiting) and what the source retires is durable on the target
        sql.SQL(
            "CREATE SUBSCRIPTION {} CONNECTION {} PUBLICATION {} "
            "WITH (slot_name = {}, create_slot = false, copy_data = true, synchronous_commit = on)"
        ).format(sql.Identifier(name), sql.Literal(conninfo(source_url)), sql.Identifier(name), sql.Literal(name))
    )


def table_states(target: psycopg.Connection, schema: str) -> dict[str, str]:
    """table -> its sync state on the target ('r' once copied and streaming)."""
    rows = target.execute(
        "SELECT c.relname, r.srsubstate FROM pg_subscription_rel r JOIN pg_subscription s ON s.oid = r.srsubid "
        "JOIN pg_class c ON c.oid = r.srrelid WHERE s.subname = %s "
        "AND s.subdbid = (SELECT oid FROM pg_database WHERE datname = current_database())",
        (replication_name(schema),),
    ).fetchall()
    return dict(rows)


def subscription_errors(target: psycopg.Connection, schema: str) -> int:
    row = target.execute(
        "SELECT apply_error_count + sync_error_count FROM pg_stat_subscription_stats WHERE subname = %s",
        (replication_name(schema),),
    ).fetchone()
    return int(row[0]) if row else 0


def wait_for_copy(
    target: psycopg.Connection,
    schema: str,
    tables: list[str],
    report: Callable[[str, int], None],
    progress: Callable[[dict[str, int], dict[str, int]], None] | None = None,
) -> dict[str, int]:
    """Until every table is copied and streaming; `report(table, rows)` as each one finishes,
    `progress(rows still copying per table, rows of finished tables)` on each poll. A subscription
    that keeps failing (its errors are in the target server's log) stops the wait. Returns each
    table's rows as copied."""
    from gamedb.move.progress import rows_copying

    done: dict[str, int] = {}
    while len(done) < len(tables):
        states = table_states(target, schema)
        missing = [t for t in tables if t not in states]
        if missing:  # the subscription lists its tables when made: one it lacks would be waited for forever
            raise MoveFailed(f"the subscription does not carry {', '.join(f'{schema}.{t}' for t in missing)}")
        for table in tables:
            if table not in done and states.get(table) in ("r", "s"):
                query = sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(schema, table))
                done[table] = one_value(target.execute(query))
                report(table, done[table])
        if subscription_errors(target, schema):
            raise MoveFailed(
                f"the subscription on the target failed while copying {schema} (see the target server's log: "
                "can it reach the source with the source's URL?)"
            )
        if progress is not None and len(done) < len(tables):
            progress(rows_copying(target, schema), done)
        if len(done) < len(tables):
            time.sleep(POLL_SECONDS)
    return done


def wait_for_replay(
    source: psycopg.Connection, target: psycopg.Connection, schema: str, lsn: str, timeout: float
) -> None:
    """Until the slot confirms everything up to `lsn` (the WAL position after writes were stopped); a
    change the target fails to apply stops the wait at once (the source's writes are waiting)."""
    deadline = time.monotonic() + timeout
    errors_before = subscription_errors(target, schema)
    while True:
        if subscription_errors(target, schema) > errors_before:
            raise MoveFailed(
                f"the target failed to apply a change of {schema} during the cut-over (see the target server's log)"
            )
        row = source.execute(
            "SELECT confirmed_flush_lsn >= %s::pg_lsn FROM pg_replication_slots WHERE slot_name = %s",
            (lsn, replication_name(schema)),
        ).fetchone()
        if row is None:
            raise MoveFailed(f"the replication slot {replication_name(schema)} vanished from the source")
        if row[0]:
            return
        if time.monotonic() > deadline:
            raise MoveFailed(f"the target did not replay {schema} up to {lsn} within {timeout:.0f} s")
        time.sleep(POLL_SECONDS)


def drop_subscription(target: psycopg.Connection, schema: str, source_reachable: bool = True) -> bool:
    """Remove the subscription (and, through it, its slot on the source); False if there was none.

    When the source can't be reached the slot is detached first, so the drop doesn't hang on it;
    drop_leftovers then removes the slot from the source side.
    """
    name = replication_name(schema)
    if target.execute(_SUBSCRIPTION, (name,)).fetchone() is None:
        return False
    ident = sql.Identifier(name)
    if not source_reachable:
        target.execute(sql.SQL("ALTER SUBSCRIPTION {} DISABLE").format(ident))
        target.execute(sql.SQL("ALTER SUBSCRIPTION {} SET (slot_name = NONE)").format(ident))
    for attempt in range(50):  # "replication slot ... is active": the walsender is still stopping
        try:
            target.execute(sql.SQL("DROP SUBSCRIPTION {}").format(ident))
            return True
        except psycopg.errors.ObjectInUse:
            if attempt == 49:
                raise
            time.sleep(POLL_SECONDS)
    return True


def drop_leftovers(source: psycopg.Connection, schema: str) -> list[str]:
    """The publication and slot on the source, if still there; returns what was removed."""
    name = replication_name(schema)
    removed = []
    if source.execute("SELECT 1 FROM pg_publication WHERE pubname = %s", (name,)).fetchone():
        source.execute(sql.SQL("DROP PUBLICATION {}").format(sql.Identifier(name)))
        removed.append(f"publication {name}")
    for _ in range(50):
        row = source.execute("SELECT active_pid FROM pg_replication_slots WHERE slot_name = %s", (name,)).fetchone()
        if row is None:
            break
        if row[0] is not None:  # a walsender still holds it: end it, then drop
            source.execute("SELECT pg_terminate_backend(%s)", (row[0],))
            time.sleep(POLL_SECONDS)
            continue
        try:
            source.execute("SELECT pg_drop_replication_slot(%s)", (name,))
            removed.append(f"replication slot {name}")
            break
        except psycopg.errors.ObjectInUse:
            time.sleep(POLL_SECONDS)
    return removed


def leftovers(source: psycopg.Connection | None, target: psycopg.Connection | None, schema: str) -> list[str]:
    """What of a move of `schema` still exists on either side (empty: nothing)."""
    name = replication_name(schema)
    found = []
    if source is not None:
        if source.execute("SELECT 1 FROM pg_publication WHERE pubname = %s", (name,)).fetchone():
            found.append(f"publication {name}")
        if source.execute("SELECT 1 FROM pg_replication_slots WHERE slot_name = %s", (name,)).fetchone():
            found.append(f"replication slot {name}")
    if target is not None and target.execute(_SUBSCRIPTION, (name,)).fetchone():
        found.append(f"subscription {name}")
    return found
