"""Data-migration tests (gamedb.testing.data_migrations and the `schema_migrator` fixture), on a real server."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import psycopg
import pytest

from conftest import REPO
from gamedb.testing.data_migrations import DataMigrationError, SchemaMigrator

# a users table, then a column filled in by a data step of the same revision
HISTORY = [
    ("{s}1", [], []),
    ("{s}2", ["CREATE TABLE {s}.users (id int PRIMARY KEY, handle text NOT NULL)"], ["DROP TABLE {s}.users"]),
    (
        "{s}3",
        ["ALTER TABLE {s}.users ADD COLUMN display text", "UPDATE {s}.users SET display = upper(handle)"],
        ["ALTER TABLE {s}.users DROP COLUMN display"],
    ),
]


def make_service(fleet, name: str) -> list:
    steps = [
        (r.format(s=name), [q.format(s=name) for q in up], [q.format(s=name) for q in down]) for r, up, down in HISTORY
    ]
    return fleet({name: steps})


@pytest.fixture
def migrator(fleet, admin_uri, monkeypatch):
    """A SchemaMigrator of scratch service `dm` (three revisions, a data step in the third), in this process."""
    for path in make_service(fleet, "dm"):
        monkeypatch.syspath_prepend(str(path))
    with SchemaMigrator.create("dm", admin_uri) as made:
        yield made


def test_rows_inserted_below_a_data_step_come_out_as_the_step_made_them(migrator):
    migrator.migrate_up_before("dm3")
    assert migrator.current == ["dm2"]
    migrator.insert_into("users", [{"id": 1, "handle": "ann"}, {"id": 2, "handle": "bob"}])

    migrator.migrate_up_to("dm3")

    assert migrator.current == ["dm3"]
    assert migrator.rows("users", order_by="id") == [
        {"id": 1, "handle": "ann", "display": "ANN"},
        {"id": 2, "handle": "bob", "display": "BOB"},
    ]
    migrator.migrate_down_to("dm2")
    assert migrator.rows("users", columns=["handle"], order_by="id") == [{"handle": "ann"}, {"handle": "bob"}]
    migrator.migrate_down_to("base")
    assert migrator.current == [] and "dm" not in migrator.database.schemas()


def test_rows_are_written_as_the_schema_owner_and_tables_belong_to_it(migrator):
    migrator.migrate_up_to("head")

    assert migrator.execute("SELECT current_user AS who") == [{"who": "dm_owner"}]
    assert migrator.database.query("SELECT tableowner FROM pg_tables WHERE schemaname = 'dm'") == [("dm_owner",)]
    # the owner may not write outside its schema under the role model: a test can't cheat past it
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        migrator.execute("CREATE TABLE public.elsewhere (id int)")


def test_a_batch_with_a_bad_row_inserts_nothing(migrator):
    migrator.migrate_up_to("dm2")

    with pytest.raises(psycopg.errors.UniqueViolation):
        migrator.insert_into("users", [{"id": 1, "handle": "ann"}, {"id": 1, "handle": "again"}])

    assert migrator.rows("users") == []


def test_names_are_quoted_not_spliced(migrator):
    migrator.migrate_up_to("dm2")

    with pytest.raises(psycopg.errors.UndefinedTable):
        migrator.insert_into("users; DROP TABLE dm.users", {"id": 1, "handle": "x"})
    with pytest.raises(psycopg.errors.UndefinedColumn):
        migrator.insert_into("users", {"id": 1, 'handle") VALUES (1, 2); --': "x"})

    assert migrator.database.tables("dm") == {"users"}


def test_an_unknown_revision_is_one_clear_error(migrator):
    with pytest.raises(DataMigrationError, match=r"schema 'dm': no revision 'nope'"):
        migrator.migrate_up_to("nope")
    assert migrator.current == []


def test_closing_drops_the_database_and_the_roles_it_made(fleet, admin_uri, monkeypatch):
    for path in make_service(fleet, "dm_close"):
        monkeypatch.syspath_prepend(str(path))
    made = SchemaMigrator.create("dm_close", admin_uri)
    made.migrate_up_to("head")
    name = made.database.name

    made.close()

    with psycopg.connect(admin_uri, autocommit=True) as conn:
        assert conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchall() == []
        assert conn.execute("SELECT rolname FROM pg_roles WHERE rolname LIKE 'dm\\_close\\_%'").fetchall() == []


DATA_TESTS = """
gamedb_schema = "{s}"


def test_display_is_filled_in(schema_migrator):
    schema_migrator.migrate_up_before("{s}3")
    schema_migrator.insert_into("users", {{"id": 7, "handle": "cy"}})
    schema_migrator.migrate_up_to("{s}3")
    assert schema_migrator.rows("users", columns=["display"]) == [{{"display": "CY"}}]


def test_a_wrong_expectation_fails(schema_migrator):
    schema_migrator.migrate_up_before("{s}3")
    schema_migrator.insert_into("users", {{"id": 7, "handle": "cy"}})
    schema_migrator.migrate_up_to("{s}3")
    assert schema_migrator.rows("users", columns=["display"]) == [{{"display": "cy"}}]
"""


def test_the_plugin_fixture_serves_the_modules_schema(fleet, admin_uri, tmp_path):
    extra = make_service(fleet, "dmp")
    (tmp_path / "test_dmp_data.py").write_text(DATA_TESTS.format(s="dmp"))
    (tmp_path / "test_no_schema.py").write_text("def test_needs_a_schema(schema_migrator):\n    pass\n")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.update(PYTHONPATH=os.pathsep.join(map(str, extra)), GAMEDB_TEST_URL=admin_uri)

    args = ["-q", "-rA", "-p", "no:cacheprovider", "-k", "not TestDmp", "--rootdir", str(tmp_path)]
    run = subprocess.run(
        [sys.executable, "-m", "pytest", str(tmp_path), *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )

    outcomes = dict(
        (test, outcome) for outcome, test in re.findall(r"^(PASSED|FAILED|ERROR) \S+::(\w+)", run.stdout, re.M)
    )
    assert outcomes == {
        "test_display_is_filled_in": "PASSED",
        "test_a_wrong_expectation_fails": "FAILED",
        "test_needs_a_schema": "ERROR",
    }, run.stdout[-3000:]
    assert 'the schema_migrator fixture needs gamedb_schema = "NAME" in the module' in run.stdout
