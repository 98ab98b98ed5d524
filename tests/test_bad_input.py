"""Bad input: one line naming the problem, a non-zero exit, no traceback, no password, no change."""

from __future__ import annotations

import pytest

from conftest import run_cli


def assert_one_line_error(result, *fragments):
    assert result.code != 0
    assert "Traceback" not in result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("gamedb: error: ")
    for fragment in fragments:
        assert fragment in lines[0]


@pytest.fixture
def untouched(database):
    """Asserts after the test that the database still holds exactly what it held before."""
    before = database.schemas(), database.query("SELECT count(*) FROM pg_class")
    yield database
    assert (database.schemas(), database.query("SELECT count(*) FROM pg_class")) == before


def test_missing_schema_argument_names_the_known_schemas(gamedb, untouched):
    result = gamedb("upgrade", "head")

    assert_one_line_error(result, "-x schema=NAME", "known schemas: auth, inventory")
    assert result.code == 2


def test_unknown_schema_names_the_known_schemas(gamedb, untouched):
    result = gamedb("-x", "schema=billing", "upgrade", "head")

    assert_one_line_error(result, "unknown schema 'billing'", "known schemas: auth, inventory")


def test_schema_value_carrying_sql_runs_nothing(gamedb, untouched):
    result = gamedb("-x", "schema=auth; drop schema public cascade", "upgrade", "head")

    assert_one_line_error(result, "unknown schema 'auth; drop schema public cascade'")
    assert "public" in untouched.schemas()


def test_unknown_revision_is_named(gamedb, untouched):
    result = gamedb("-x", "schema=auth", "upgrade", "deadbeef42")

    assert_one_line_error(result, "deadbeef42")
    assert result.code == 1


def test_revision_of_another_schema_is_unknown_in_a_scoped_command(gamedb, untouched):
    result = gamedb("-x", "schema=auth", "upgrade", "inventory@head")

    assert_one_line_error(result, "inventory")


def test_unreachable_server_is_one_line_with_the_password_masked(untouched):
    url = "postgresql+psycopg://gameadmin:s3cret-Pa55@127.0.0.1:1/game"

    result = run_cli(["-x", "schema=auth", "upgrade", "head"], url=url)

    assert_one_line_error(result, "cannot connect to postgresql+psycopg://gameadmin:***@127.0.0.1:1/game")
    assert "s3cret-Pa55" not in result.output


def test_wrong_password_is_one_line_with_the_password_masked(database, untouched):
    from sqlalchemy import make_url

    url = make_url(database.url).set(username="no_such_role", password="s3cret-Pa55").render_as_string(False)
    result = run_cli(["status"], url=url)

    assert_one_line_error(result, "cannot connect to", "***")
    assert "s3cret-Pa55" not in result.output


def test_gamedb_url_that_is_not_postgresql_is_refused(untouched):
    result = run_cli(["status"], url="mysql://root:pw@localhost/game")

    assert_one_line_error(result, "GAMEDB_URL must point to PostgreSQL")
    assert "pw@" not in result.output


def test_schema_given_twice_is_refused(gamedb, untouched):
    result = gamedb("-x", "schema=auth", "upgrade", "head", "-x", "schema=inventory")

    assert_one_line_error(result, "-x schema given 2 times")


def test_outside_the_monorepo_there_is_a_clear_error(tmp_path, database):
    result = run_cli(["-x", "schema=auth", "upgrade", "head"], url=database.url, cwd=tmp_path)

    assert_one_line_error(result, "no alembic.ini")


def test_debug_shows_the_traceback(gamedb):
    result = gamedb("--debug", "-x", "schema=billing", "upgrade", "head")

    assert result.code != 0
    assert "Traceback" in result.stderr
    assert "UnknownSchema" in result.stderr
