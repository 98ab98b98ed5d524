"""The connections an upgrade-all worker keeps from one schema to the next.

A schema's run opens two connections (gamedb.migrate.session: the migration connection and the one
holding the schema's lock). Opened anew for every schema, that is two server backends started, each
filling its catalog caches again, per schema: at 20 schemas x 10 revisions, more server time than
the revisions themselves. A worker's engine keeps them instead, and hands a kept one out only as a
fresh session: `DISCARD ALL` (role, search_path, every setting, prepared statements, temporary
tables, advisory locks) on its way out again, so nothing of one schema's run (its owner role above
all) reaches the next. That statement is also the check that the connection still works: a dead
one is replaced by a new one, as if there had been none.
"""

from __future__ import annotations

import psycopg
from sqlalchemy import URL, Engine, create_engine, event
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.pool import ConnectionPoolEntry, PoolProxiedConnection, QueuePool

USED = "gamedb_used"  # in a pooled connection's info: it has served a run, reset it before the next


def worker_engine(url: URL) -> Engine:
    """An engine that keeps a worker's connections (two at a time: a run's migration and lock
    connections) and resets each before it serves again."""
    engine = create_engine(url, poolclass=QueuePool, pool_size=2, max_overflow=2)
    event.listen(engine, "checkout", _fresh_session)
    return engine


def _fresh_session(dbapi_connection: object, record: ConnectionPoolEntry, proxy: PoolProxiedConnection) -> None:
    if not record.info.get(USED):
        record.info[USED] = True  # a new backend: nothing to reset
        return
    assert isinstance(dbapi_connection, psycopg.Connection)
    try:
        dbapi_connection.rollback()  # the pool rolled back already; nothing is sent when idle
        dbapi_connection.autocommit = True  # DISCARD ALL can't run inside a transaction
        try:
            dbapi_connection.execute("DISCARD ALL")
        finally:
            dbapi_connection.autocommit = False
    except psycopg.Error as exc:
        raise DisconnectionError(f"a kept connection no longer works: {exc}") from exc
