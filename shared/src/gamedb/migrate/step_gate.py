"""What a revision's transaction checks and appends before it commits, in one statement.

Online, each revision Alembic applies commits alone with its version row. Before it does, three
things must hold or be done in that same transaction: the run still holds the schema's migration
lock (gamedb.migrate.session), the schema holds no invalid index nobody is building
(gamedb.migrate.autocommit), and the step's events are appended to the schema's record
(gamedb.migrate.checksums). Asked one by one they cost three round trips a revision, one of them on
the lock's own connection; here they are one statement on the migration connection. The lock is
seen in `pg_locks` as held by the lock's transaction: its backend's pid and its virtual transaction
id, which no later transaction on the server reuses, so a reused pid is not taken for it (pg_locks
shows every login's locks; pg_stat_activity hides another login's session from `<s>_owner`). The
events are appended only when both checks pass; a failed check raises, so Alembic rolls the
revision back with its version row and nothing is recorded for it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from psycopg import sql
from sqlalchemy import TextClause, text

from gamedb.migrate import history
from gamedb.migrate.autocommit import LEFT_OVER_SQL, left_over_error
from gamedb.migrate.checksums import event_values, step_events
from gamedb.migrate.session import LOCK_MODE
from gamedb.names import VERSION_TABLE_SCHEMA

if TYPE_CHECKING:
    from alembic.runtime.migration import MigrationContext, MigrationInfo

    from gamedb.discovery import SchemaInfo
    from gamedb.migrate.session import SchemaLock

# LOCK_MODE as pg_locks names it ("SHARE UPDATE EXCLUSIVE" -> "ShareUpdateExclusiveLock")
LOCK_MODE_NAME = "".join(word.capitalize() for word in LOCK_MODE.split()) + "Lock"


def gate_sql(schema: SchemaInfo, events: int) -> str:
    """The statement: whether the lock is held, the left-over invalid indexes ([[schema, index], ...]
    or NULL), then one call of the record's function per event (history.record_many_sql), each made
    only when the lock is held and nothing is left over."""
    held = (
        "SELECT EXISTS (SELECT FROM pg_catalog.pg_locks l"
        " WHERE l.pid = :lock_pid AND l.virtualtransaction = :lock_transaction AND l.locktype = 'relation'"
        f" AND l.relation = pg_catalog.to_regclass(:version_table) AND l.mode = '{LOCK_MODE_NAME}' AND l.granted)"
    )
    left_over = f"SELECT array_agg(ARRAY[nspname::text, relname::text]) FROM ({LEFT_OVER_SQL}) left_over"
    calls = history.record_calls(schema.name, events)
    recorded = "".join(f", CASE WHEN held AND left_over IS NULL THEN {call} END" for call in calls)
    return f"SELECT held, left_over{recorded} FROM (SELECT ({held}) AS held, ({left_over}) AS left_over) gate"


def step_gate(schema: SchemaInfo, lock: SchemaLock) -> Callable[..., None]:
    """Alembic `on_version_apply` callback of an online run under `lock`: the step's checks and events."""

    statements: dict[int, TextClause] = {}  # by number of events: a run's steps share one (most have one event)

    def gate(ctx: MigrationContext, step: MigrationInfo, heads: set[str], run_args: dict[str, Any]) -> None:
        events = step_events(step)
        if len(events) not in statements:
            statements[len(events)] = text(gate_sql(schema, len(events)))
        values = {
            "lock_pid": lock.pid,
            "lock_transaction": lock.transaction,
            "version_table": sql.Identifier(VERSION_TABLE_SCHEMA, schema.version_table).as_string(None),
            "schema": schema.name,
            **event_values(events),
        }
        row = ctx.connection.execute(statements[len(events)], values).one()  # type: ignore[union-attr]
        held, left_over = row[0], row[1]
        if not held:
            raise lock.lost()
        if left_over:
            revision = ", ".join(step.destination_revision_ids)
            raise left_over_error(schema, revision, [(name, index) for name, index in left_over])

    return gate
