"""The migration session: nothing silently lost, one run per schema at a time, objects in place."""

from __future__ import annotations

import psycopg
import pytest
from alembic.migration import MigrationContext
from alembic.operations import Operations
from sqlalchemy import create_engine, text
from sqlalchemy.pool import NullPool

from gamedb.discovery import discover_schemas
from gamedb.migrate.session import prepare_migration_session

AUTH = discover_schemas()["auth"]


@pytest.fixture
def engine(database):
    engine = create_engine(database.url, poolclass=NullPool)
    yield engine
    engine.dispose()


def test_alembic_keeps_nothing_when_configure_sees_an_open_transaction(engine, database):
    """The trap itself: a SET before configure() autobegins, and Alembic then commits nothing."""
    with engine.connect() as conn:
        conn.execute(text("SET lock_timeout = '2s'"))  # autobegins
        context = MigrationContext.configure(conn)
        with context.begin_transaction():
            Operations(context).execute("CREATE TABLE public.lost (id int)")
    assert "lost" not in database.tables("public")


def test_session_prelude_commits_so_the_migration_is_kept(engine, database):
    with engine.connect() as conn:
        lock = prepare_migration_session(conn, AUTH)
        assert not conn.in_transaction()
        context = MigrationContext.configure(conn)
        with context.begin_transaction():
            Operations(context).execute("CREATE TABLE public.kept (id int)")
        lock.release()
    assert "kept" in database.tables("public")


VERSION_TABLE_LOCKS = (
    "SELECT l.pid, l.mode FROM pg_locks l JOIN pg_class c ON c.oid = l.relation"
    " WHERE c.relname = %s AND l.granted AND l.mode = 'ShareUpdateExclusiveLock'"
)


def test_session_prelude_holds_the_schemas_lock_on_a_second_connection_and_sets_timeouts(engine, database):
    with engine.connect() as conn:
        lock = prepare_migration_session(conn, AUTH)
        pid = conn.execute(text("SELECT pg_backend_pid()")).scalar()
        settings = conn.execute(
            text("SELECT current_setting('lock_timeout'), current_setting('application_name')")
        ).one()
        conn.commit()
        holders = database.query(VERSION_TABLE_LOCKS, ("alembic_version_auth",))
        lock_pid = lock.connection.execute(text("SELECT pg_backend_pid()")).scalar()
        assert settings == ("2s", "gamedb:auth")
        assert holders == [(lock_pid, "ShareUpdateExclusiveLock")] and lock_pid != pid
        with psycopg.connect(database.libpq) as other:
            other.execute("SET lock_timeout = '100ms'")
            with pytest.raises(psycopg.errors.LockNotAvailable):
                other.execute("LOCK TABLE alembic.alembic_version_auth IN SHARE UPDATE EXCLUSIVE MODE")
            other.rollback()
            other.execute("CREATE TABLE alembic.alembic_version_inventory (version_num varchar(32))")
            other.execute("LOCK TABLE alembic.alembic_version_inventory IN SHARE UPDATE EXCLUSIVE MODE")
            other.rollback()
        lock.release()
    assert database.query(VERSION_TABLE_LOCKS, ("alembic_version_auth",)) == []


def test_upgrade_releases_the_lock_and_keeps_every_revision(gamedb, database):
    result = gamedb("-x", "schema=auth", "upgrade", "head")

    assert result.code == 0, result.output
    assert database.query(VERSION_TABLE_LOCKS, ("alembic_version_auth",)) == []
    assert database.query("SELECT count(*) FROM pg_stat_activity WHERE application_name LIKE 'gamedb:%'") == [(0,)]
    assert len(database.version_rows("auth")) == 1
    assert database.tables("auth") == {"users", "refresh_tokens"}
