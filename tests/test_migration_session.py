"""The migration session: nothing silently lost, one run per schema at a time, objects in place."""

from __future__ import annotations

import psycopg
import pytest
from alembic.migration import MigrationContext
from alembic.operations import Operations
from sqlalchemy import create_engine, text
from sqlalchemy.pool import NullPool

from gamedb.discovery import discover_schemas
from gamedb.migration_session import LOCK_CLASS_ID, prepare_migration_session

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
        prepare_migration_session(conn, AUTH)
        assert not conn.in_transaction()
        context = MigrationContext.configure(conn)
        with context.begin_transaction():
            Operations(context).execute("CREATE TABLE public.kept (id int)")
    assert "kept" in database.tables("public")


def test_session_prelude_holds_the_schemas_advisory_lock_and_sets_timeouts(engine, database):
    with engine.connect() as conn:
        prepare_migration_session(conn, AUTH)
        pid = conn.execute(text("SELECT pg_backend_pid()")).scalar()
        settings = conn.execute(
            text("SELECT current_setting('lock_timeout'), current_setting('application_name')")
        ).one()
        conn.commit()
        locks = database.query(
            "SELECT classid::bigint, objid::bigint FROM pg_locks WHERE locktype = 'advisory' AND pid = %s", (pid,)
        )
        assert settings == ("2s", "gamedb:auth")
        assert len(locks) == 1 and locks[0][0] == LOCK_CLASS_ID
        with psycopg.connect(database.libpq, autocommit=True) as other:
            taken = other.execute("SELECT pg_try_advisory_lock(%s, hashtext('auth'))", (LOCK_CLASS_ID,)).fetchone()[0]
            free = other.execute("SELECT pg_try_advisory_lock(%s, hashtext('inventory'))", (LOCK_CLASS_ID,)).fetchone()[
                0
            ]
        assert (taken, free) == (False, True)


def test_upgrade_releases_the_lock_and_keeps_every_revision(gamedb, database):
    result = gamedb("-x", "schema=auth", "upgrade", "head")

    assert result.code == 0, result.output
    assert database.query("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'") == [(0,)]
    assert len(database.version_rows("auth")) == 1
    assert database.tables("auth") == {"users", "refresh_tokens"}
