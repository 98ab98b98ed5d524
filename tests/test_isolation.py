"""Autogenerate and `check` see one schema only, whatever else the database holds."""

from __future__ import annotations

import pytest
from comparison_modes import comparison  # noqa: F401 - the cold/warm fixture

from gamedb.discovery import discover_schemas

SCHEMAS = sorted(discover_schemas())


@pytest.fixture
def crowded(gamedb, database):
    """Every schema at head, plus objects no service declares in public and in an extra schema."""
    for schema in SCHEMAS:
        assert gamedb("-x", f"schema={schema}", "upgrade", "head").code == 0
    database.query("CREATE TABLE public.stray (id int PRIMARY KEY)")
    database.query("CREATE SCHEMA scratch; CREATE TABLE scratch.leftovers (id int)")
    database.query("CREATE TYPE public.mood AS ENUM ('happy', 'sad')")
    return database


@pytest.mark.parametrize("schema", SCHEMAS)
def test_check_passes_for_every_schema_after_upgrade(schema, gamedb, crowded):
    result = gamedb("-x", f"schema={schema}", "check")

    assert result.code == 0, result.output
    assert result.stdout == f"{schema}: models match the database\n"


@pytest.mark.usefixtures("comparison")
def test_check_fails_when_a_table_of_the_schema_was_dropped_by_hand(gamedb, crowded):
    assert gamedb("check-all").code == 0  # warm: every schema's clean comparison recorded
    crowded.query("DROP TABLE auth.refresh_tokens")

    result = gamedb("-x", "schema=auth", "check")

    assert result.code == 1
    assert result.stderr.splitlines() == [
        "auth: table auth.refresh_tokens is in the models, not in the database",
        "gamedb: error: schema 'auth': 1 difference(s) between models and database: "
        'gamedb revision -x schema=auth --autogenerate -m "..." writes them',
    ]


@pytest.mark.usefixtures("comparison")
def test_inventory_check_ignores_a_dropped_auth_table(gamedb, crowded):
    assert gamedb("check-all").code == 0
    crowded.query("DROP TABLE auth.refresh_tokens")

    assert gamedb("-x", "schema=inventory", "check").code == 0
    assert gamedb("check-all").code == 1
