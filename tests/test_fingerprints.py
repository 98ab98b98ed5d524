"""check-all and status skip a schema whose catalog and models fingerprints equal those of its last
clean comparison, and only then: what the record lets them skip, and what it never hides."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import make_url

from conftest import run_cli
from gamedb.discovery import discover_schemas
from gamedb.fleet.fingerprints import RECORD_TABLE, catalog_fingerprints, recorded_clean
from gamedb.fleet.status import compare_all, compare_changed
from gamedb.server.connections import connect, migration_engine
from gamedb.testing import ThrowawayDatabase

RECORD = f"alembic.{RECORD_TABLE}"
MESSAGES_TABLE = "CREATE TABLE chat.messages (id integer NOT NULL, CONSTRAINT pk_messages PRIMARY KEY (id))"
# models that import only with GAMEDB_TEST_MODELS_OK set: a run without it that succeeds never imported them
GUARDED_MODELS = """
import os

from sqlalchemy import Column, Integer, Table

if not os.environ.get("GAMEDB_TEST_MODELS_OK"):
    raise RuntimeError("the chat models were imported")

Table("messages", metadata, Column("id", Integer, primary_key=True))
"""


def chat_service(fleet):
    extra = fleet({"chat": [("chat1", [], []), ("chat2", [MESSAGES_TABLE], ["DROP TABLE chat.messages"])]})
    models = extra[0] / "game_chat" / "models.py"
    models.write_text(models.read_text() + GUARDED_MODELS)
    return extra, models


def recorded(database: ThrowawayDatabase) -> list[str]:
    return [name for (name,) in database.query(f"SELECT schema_name FROM {RECORD} ORDER BY 1")]


def test_a_clean_check_all_is_recorded_and_the_next_one_skips_without_importing_the_models(gamedb, database, fleet):
    extra, models = chat_service(fleet)
    with pytest.MonkeyPatch.context() as env:
        env.setenv("GAMEDB_TEST_MODELS_OK", "1")
        assert gamedb("upgrade-all", extra=extra).code == 0
        assert gamedb("check-all", extra=extra).code == 0
    assert recorded(database) == ["auth", "chat", "inventory"]

    skipped = gamedb("check-all", extra=extra)  # the models would raise if imported
    status = gamedb("status", "--check", extra=extra)

    assert skipped.code == 0, skipped.output
    assert skipped.stdout == "3 schemas: models match the database\n"
    assert status.code == 0, status.output
    imports = run_cli(["check-all"], url=database.url, python_path=extra, PYTHONPROFILEIMPORTTIME="1")
    assert imports.code == 0, imports.output
    assert "gamedb.fleet.fingerprints" in imports.stderr
    assert "gamedb.autogen" not in imports.stderr  # nor gamedb's comparators
    # a model file edited (a comment is enough): compared again, so imported (and here it fails to)
    models.write_text(models.read_text() + "# edited\n")
    compared = gamedb("check-all", extra=extra)
    assert compared.code != 0
    assert "the chat models were imported" in compared.stderr


def test_a_change_by_sql_after_a_clean_record_is_found_by_check_all_and_status(gamedb, database, fleet):
    extra, _ = chat_service(fleet)
    with pytest.MonkeyPatch.context() as env:
        env.setenv("GAMEDB_TEST_MODELS_OK", "1")
        assert gamedb("upgrade-all", extra=extra).code == 0
        assert gamedb("check-all", extra=extra).code == 0
        database.query("ALTER TABLE chat.messages ADD COLUMN body text")

        check_all = gamedb("check-all", extra=extra)
        status = gamedb("status", extra=extra)

    assert check_all.code == 1
    assert "chat: column chat.messages.body is in the database, not in the models" in check_all.stderr
    assert "drift chat: column chat.messages.body is in the database, not in the models" in status.stdout


def test_a_record_that_does_not_match_both_fingerprints_exactly_is_compared(gamedb, database, fleet):
    extra, _ = chat_service(fleet)
    with pytest.MonkeyPatch.context() as env:
        env.setenv("GAMEDB_TEST_MODELS_OK", "1")
        assert gamedb("upgrade-all", extra=extra).code == 0
        assert gamedb("check-all", extra=extra).code == 0
    (models_fingerprint,) = database.query(f"SELECT models_fingerprint FROM {RECORD} WHERE schema_name = 'chat'")[0]
    # a row claiming chat is clean with auth's catalog fingerprint, or a catalog fingerprint of a
    # moment before the change: the catalog is hashed again now, so neither is believed
    for forged in (
        f"UPDATE {RECORD} SET catalog_fingerprint = (SELECT catalog_fingerprint FROM {RECORD}"
        " WHERE schema_name = 'auth') WHERE schema_name = 'chat'",
        f"UPDATE {RECORD} SET catalog_fingerprint = 'x', models_fingerprint = '{models_fingerprint}'"
        " WHERE schema_name = 'chat'",
    ):
        database.query(forged)
        compared = gamedb("check-all", extra=extra)
        assert compared.code != 0
        assert "the chat models were imported" in compared.stderr


def test_full_comparison_env_compares_every_schema_and_records_nothing(gamedb, database, fleet, monkeypatch):
    extra, _ = chat_service(fleet)
    monkeypatch.setenv("GAMEDB_TEST_MODELS_OK", "1")
    assert gamedb("upgrade-all", extra=extra).code == 0
    monkeypatch.setenv("GAMEDB_FULL_COMPARISON", "1")

    assert gamedb("check-all", extra=extra).code == 0
    assert database.query(f"SELECT to_regclass('{RECORD}')") == [(None,)]
    assert gamedb("check-all", extra=extra).code == 0
    monkeypatch.delenv("GAMEDB_TEST_MODELS_OK")
    compared = gamedb("check-all", extra=extra)
    assert "the chat models were imported" in compared.stderr


def test_a_deployer_that_may_not_write_the_record_compares_everything_and_does_not_fail(gamedb, database):
    assert gamedb("upgrade-all").code == 0
    assert gamedb("roles", "apply").code == 0
    assert gamedb("roles", "login", "deployer", "--migrator").code == 0
    deployer = make_url(database.login_uri("deployer")).set(drivername="postgresql+psycopg").render_as_string(False)

    first = run_cli(["check-all"], url=deployer)

    assert first.code == 0, first.output
    assert database.query(f"SELECT to_regclass('{RECORD}')") == [(None,)]  # no CREATE in schema alembic
    assert gamedb("check-all").code == 0  # the admin records (REVOKE ALL FROM PUBLIC: closed to deployers)
    assert recorded(database) == ["auth", "inventory"]
    database.query("ALTER TABLE auth.users ADD COLUMN nickname text")
    second = run_cli(["check-all"], url=deployer)
    assert second.code == 1
    assert "auth: column auth.users.nickname is in the database, not in the models" in second.stderr
    database.query("ALTER TABLE auth.users DROP COLUMN nickname")
    assert gamedb("roles", "check").stdout.strip().endswith("roles match the model")  # the record is no deviation


def test_rows_written_and_statistics_gathered_leave_the_catalog_fingerprint_alone(gamedb, database):
    assert gamedb("upgrade-all").code == 0
    engine = migration_engine(make_url(database.url))
    try:
        with connect(engine) as conn:
            before = catalog_fingerprints(conn, ["auth", "inventory"])
        database.query(
            "INSERT INTO auth.users (login, email, password_hash) SELECT 'u' || g, g || '@x', 'h'"
            " FROM generate_series(1, 200) g"
        )
        database.query("ANALYZE auth.users")
        database.query("VACUUM auth.users")
        with connect(engine) as conn:
            after = catalog_fingerprints(conn, ["auth", "inventory"])
    finally:
        engine.dispose()
    assert set(before) == {"auth", "inventory"}
    assert after == before


# (change, undo) on the auth service's tables: each a catalog change a team could make by hand, each
# independent of the others (any subset applies, and undoes in reverse order)
CHANGES = [
    (
        "ALTER TABLE auth.users ADD COLUMN extra int",
        "ALTER TABLE auth.users DROP COLUMN extra",
    ),
    (
        "ALTER TABLE auth.users ALTER COLUMN login TYPE varchar(65)",
        "ALTER TABLE auth.users ALTER COLUMN login TYPE varchar(64)",
    ),
    (
        "ALTER TABLE auth.users ALTER COLUMN created_at DROP DEFAULT",
        "ALTER TABLE auth.users ALTER COLUMN created_at SET DEFAULT now()",
    ),
    (
        "ALTER TABLE auth.users ALTER COLUMN disabled SET DEFAULT true",
        "ALTER TABLE auth.users ALTER COLUMN disabled SET DEFAULT false",
    ),
    (
        "ALTER TABLE auth.users ALTER COLUMN email DROP NOT NULL",
        "ALTER TABLE auth.users ALTER COLUMN email SET NOT NULL",
    ),
    (
        "CREATE INDEX ix_extra ON auth.users (password_hash)",
        "DROP INDEX auth.ix_extra",
    ),
    (
        "DROP INDEX auth.uq_users_lower_email",
        "CREATE UNIQUE INDEX uq_users_lower_email ON auth.users (lower(email))",
    ),
    (
        "COMMENT ON TABLE auth.users IS 'players'",
        "COMMENT ON TABLE auth.users IS NULL",
    ),
    (
        "COMMENT ON COLUMN auth.users.login IS 'name'",
        "COMMENT ON COLUMN auth.users.login IS NULL",
    ),
    (
        "ALTER TABLE auth.refresh_tokens ADD CONSTRAINT ck_x CHECK (id > 0)",
        "ALTER TABLE auth.refresh_tokens DROP CONSTRAINT ck_x",
    ),
    (
        "ALTER TABLE auth.refresh_tokens DROP CONSTRAINT fk_refresh_tokens_user_id_users",
        "ALTER TABLE auth.refresh_tokens ADD CONSTRAINT fk_refresh_tokens_user_id_users FOREIGN KEY (user_id)"
        " REFERENCES auth.users (id) ON DELETE CASCADE",
    ),
    (
        "CREATE TYPE auth.mood AS ENUM ('calm')",
        "DROP TYPE auth.mood",
    ),
    (
        "CREATE VIEW auth.active AS SELECT id FROM auth.users",
        "DROP VIEW auth.active",
    ),
    (
        "CREATE FUNCTION auth.one() RETURNS int LANGUAGE sql AS 'SELECT 1'",
        "DROP FUNCTION auth.one()",
    ),
    (
        "CREATE TABLE auth.extra (id int)",
        "DROP TABLE auth.extra",
    ),
    (
        "ALTER TABLE auth.users ENABLE ROW LEVEL SECURITY",
        "ALTER TABLE auth.users DISABLE ROW LEVEL SECURITY",
    ),
    (
        "ALTER TABLE auth.refresh_tokens RENAME COLUMN revoked_at TO revoked",
        "ALTER TABLE auth.refresh_tokens RENAME COLUMN revoked TO revoked_at",
    ),
]


@pytest.fixture
def auth_at_head(gamedb, database) -> Iterator[ThrowawayDatabase]:
    assert gamedb("upgrade-all").code == 0
    yield database


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(changes=st.lists(st.sampled_from(CHANGES), min_size=1, max_size=3, unique=True))
def test_any_catalog_change_after_a_clean_record_is_found_as_a_full_comparison_finds_it(auth_at_head, changes):
    database = auth_at_head
    url = make_url(database.url)
    auth = [discover_schemas()["auth"]]
    assert compare_changed(url, auth) == {"auth": []}  # records the clean state
    engine = migration_engine(url)
    try:
        with connect(engine) as conn:
            assert "auth" in recorded_clean(conn, ["auth"])
    finally:
        engine.dispose()
    for change, _ in changes:
        database.query(change)
    try:
        warm = compare_changed(url, auth)
        cold = compare_all(url, auth)
        assert cold["auth"], f"{changes} is no drift: pick changes the comparison sees"
        assert warm == cold
    finally:
        for _, undo in reversed(changes):
            database.query(undo)
    assert compare_all(url, auth) == {"auth": []}
