"""Steps a revision runs outside a transaction (Alembic's `autocommit_block()`), under the schema's lock.

`CREATE INDEX CONCURRENTLY` (and `REINDEX CONCURRENTLY`, `ALTER TYPE ... ADD VALUE` on old servers)
can't run in a transaction. The schema's lock lives on a connection of its own (see
gamedb.migrate.session), so it stays held while the migration connection runs in autocommit.

Online, a concurrent build that fails (a duplicate in a UNIQUE index, a timeout) leaves an INVALID
index behind; `InvalidIndexes` drops the ones the failed run left, so the revision can run again,
and the error says so (or names the index and the statement that drops it, when that could not be
done). A revision that completes while the schema holds an invalid index nobody is building (a
killed run's) is rolled back: `CREATE INDEX CONCURRENTLY IF NOT EXISTS` would skip it. Offline,
Alembic writes COMMIT / BEGIN around the block; `OfflineBreaks` adds what the steps in between need
(the owner's role, search_path, timeouts, as session settings reset afterwards) and opens the next
transaction with the same prelude as the script's others, lock included.
"""

from __future__ import annotations

import logging
from typing import Any

from psycopg import sql
from sqlalchemy import Connection, text
from sqlalchemy.exc import DBAPIError

from gamedb.discovery import SchemaInfo
from gamedb.errors import ConcurrentBuildFailed, InvalidIndexLeftOver
from gamedb.migrate.session import (
    offline_role_and_search_path,
    offline_timeouts,
    offline_transaction_settings,
)
from gamedb.server.connections import error_line

log = logging.getLogger("gamedb.migrate.autocommit")

# DROP INDEX CONCURRENTLY takes no lock an app's reads or writes wait behind, so cleaning up may
# wait longer than lock_timeout for the app transaction that made the build give up.
DROP_LOCK_TIMEOUT = "1min"


# The schema's INVALID indexes, found from its relations (each has a dependency on its namespace:
# pg_depend's index) through pg_index's index on indrelid: the cost grows with the schema, not with the
# database. Every revision's gate runs this (gamedb.migrate.step_gate); scanning pg_index instead took
# about 1-2.5 ms a revision at 100 schemas x 50 tables, where this takes about 0.2 ms.
INVALID_SQL = (
    "SELECT n.nspname, c.relname FROM pg_catalog.pg_namespace n"
    " JOIN pg_catalog.pg_depend d ON d.refclassid = 'pg_catalog.pg_namespace'::pg_catalog.regclass"
    " AND d.refobjid = n.oid AND d.classid = 'pg_catalog.pg_class'::pg_catalog.regclass"
    " JOIN pg_catalog.pg_index i ON i.indrelid = d.objid AND NOT i.indisvalid"
    " JOIN pg_catalog.pg_class c ON c.oid = i.indexrelid WHERE n.nspname = :schema"
)
_INVALID = text(INVALID_SQL)
# ... and nobody is building it: a concurrent build holds a lock on its table until it ends
LEFT_OVER_SQL = (
    INVALID_SQL + " AND NOT EXISTS (SELECT FROM pg_locks l WHERE l.relation = i.indrelid"
    " AND l.pid <> pg_backend_pid() AND l.mode = 'ShareUpdateExclusiveLock' AND l.granted) ORDER BY 1, 2"
)


class InvalidIndexes:
    """The schema's INVALID indexes when a run starts; after a failure, the new ones are dropped.

    Only the run's own leftovers are touched: an invalid index that was there before (a build killed
    with its runner, a DBA's build in progress) is left alone.
    """

    def __init__(self, connection: Connection, schema: SchemaInfo, *, commit: bool = True) -> None:
        """Read the invalid indexes there now; `commit=False`: the caller commits the transaction it goes on with."""
        self.connection = connection
        self.schema = schema
        self.before = self._read(commit=commit)

    def _read(self, *, commit: bool = True) -> set[tuple[str, str]]:
        found = {(n, r) for n, r in self.connection.execute(_INVALID, {"schema": self.schema.name})}
        if commit:
            self.connection.commit()  # never leave a transaction open (before configure(), or in between)
        return found

    def after_failure(self, error: BaseException) -> None:
        """Drop the invalid indexes the failed run left; raise ConcurrentBuildFailed saying so (none: return)."""
        try:
            self.connection.rollback()
            left = sorted(self._read() - self.before)
        except DBAPIError:  # the connection is gone: the original error says why
            return
        if not left:
            return
        parts = [f"schema {self.schema.name!r}: {error_line(error)}"]
        kept = False
        for schema_name, index in left:
            name = f"{schema_name}.{index}"
            problem = self._drop(schema_name, index)
            if problem is None:
                parts.append(f"dropped the invalid index {name} the failed build left")
            else:
                kept = True
                parts.append(
                    f"the failed build left the invalid index {name}, not dropped ({problem}): "
                    f"DROP INDEX CONCURRENTLY {sql.Identifier(schema_name, index).as_string(None)}"
                )
        sqlstate = getattr(getattr(error, "orig", None), "sqlstate", None)
        # nothing left behind: a lock timeout may be retried like any other
        raise ConcurrentBuildFailed("; ".join(parts), sqlstate=None if kept else sqlstate) from error

    def _drop(self, schema_name: str, index: str) -> str | None:
        """DROP INDEX CONCURRENTLY (outside a transaction, as the run's role); why it failed, or None."""
        statement = sql.SQL("DROP INDEX CONCURRENTLY IF EXISTS {}").format(sql.Identifier(schema_name, index))
        level = self.connection.get_isolation_level()
        autocommit = self.connection.execution_options(isolation_level="AUTOCOMMIT")
        try:
            set_lock_timeout = text("SELECT set_config('lock_timeout', :value, false)")
            restore = autocommit.execute(text("SELECT current_setting('lock_timeout')")).scalar()
            autocommit.execute(set_lock_timeout, {"value": DROP_LOCK_TIMEOUT})
            try:
                autocommit.exec_driver_sql(statement.as_string(None))
            finally:
                autocommit.execute(set_lock_timeout, {"value": restore})
        except DBAPIError as exc:
            log.debug("could not drop %s.%s: %s", schema_name, index, exc)
            return error_line(exc)
        finally:
            autocommit.rollback()  # SQLAlchemy's autobegun marker; the server has no transaction open
            self.connection.execution_options(isolation_level=level)
        return None


def left_over_error(schema: SchemaInfo, revision: str, left: list[tuple[str, str]]) -> InvalidIndexLeftOver:
    """The error of a revision rolled back for the left-over invalid indexes `left` (schema, index)."""
    names = ", ".join(f"{n}.{r}" for n, r in left)
    drops = "; ".join(f"DROP INDEX CONCURRENTLY {sql.Identifier(n, r).as_string(None)}" for n, r in left)
    return InvalidIndexLeftOver(
        f"schema {schema.name!r}: revision {revision} was rolled back: the schema holds the invalid index "
        f"{names}, a concurrent build that never finished (an IF NOT EXISTS build of that name would do "
        f"nothing); drop it and run again: {drops}"
    )


class OfflineBreaks:
    """What a `--sql` script writes around an autocommit block (Alembic writes the COMMIT and BEGIN).

    Between them the statements run in the psql session itself: they need the owner's role, the
    schema's search_path and the timeouts as session settings, reset before the next BEGIN so the
    script's next schema starts clean. The schema's lock is not held there: offline, only a
    transaction holds it.
    """

    def __init__(self, schema: SchemaInfo) -> None:
        self.schema = schema
        self.active = False  # only between revisions' statements, not the script's own BEGIN / COMMIT

    def after_commit(self, impl: Any) -> None:
        if not self.active:
            return
        impl.static_output(
            f"-- gamedb: outside a transaction (autocommit_block); schema {self.schema.name}'s lock is "
            "taken again by the next BEGIN\n"
        )
        for statement in [*offline_timeouts(local=False), *offline_role_and_search_path(self.schema, local=False)]:
            impl.execute(statement)

    def before_begin(self, impl: Any) -> None:
        if self.active:
            for statement in ("RESET ROLE", "RESET search_path", "RESET lock_timeout", "RESET statement_timeout"):
                impl.execute(statement)

    def after_begin(self, impl: Any) -> None:
        if self.active:
            for statement in offline_transaction_settings(self.schema):
                impl.execute(statement)
