"""Discovery refuses broken services with an error naming the distribution at fault."""

from __future__ import annotations

import json

from gamedb.discovery import discover_schemas


def test_schemas_json_lists_every_service_with_its_version_table(gamedb):
    result = gamedb("schemas", "--json")

    assert result.code == 0, result.output
    rows = {row["name"]: row for row in json.loads(result.stdout)}
    assert set(rows) == {"auth", "inventory"}
    assert rows["auth"]["distribution"] == "game-auth"
    assert rows["auth"]["version_table"] == "alembic.alembic_version_auth"
    assert rows["auth"]["versions_dir"].endswith("services/auth/src/game_auth/versions")
    assert rows["inventory"]["depends_on"] == []
    assert rows["auth"]["server"] == rows["inventory"]["server"] == "default"  # no [tool.gamedb.placement]


def test_a_scratch_service_is_discovered_without_any_shared_edit(gamedb, scratch_service):
    chat = scratch_service("chat")

    result = gamedb("schemas", "--json", extra=[chat.src_dir])

    assert [row["name"] for row in json.loads(result.stdout)] == ["auth", "chat", "inventory"]


def test_two_distributions_claiming_one_schema_are_both_named(gamedb, scratch_service):
    impostor = scratch_service("authx", entry_point="auth = game_authx.schema:SCHEMA")

    result = gamedb("schemas", extra=[impostor.src_dir])

    assert result.code == 2
    assert "schema 'auth' is claimed by two distributions" in result.stderr
    assert "game-auth" in result.stderr and "game-authx" in result.stderr


def test_an_invalid_schema_name_names_the_distribution(gamedb, scratch_service):
    bad = scratch_service("shout", entry_point="Shout = game_shout.schema:SCHEMA")

    result = gamedb("schemas", extra=[bad.src_dir])

    assert result.code == 2
    assert "distribution game-shout" in result.stderr
    assert "invalid schema name 'Shout'" in result.stderr


def test_a_reserved_schema_name_is_refused(gamedb, scratch_service):
    bad = scratch_service("sel", entry_point="select = game_sel.schema:SCHEMA")

    result = gamedb("schemas", extra=[bad.src_dir])

    assert result.code == 2
    assert "invalid schema name 'select'" in result.stderr


def test_metadata_bound_to_another_schema_is_refused(gamedb, scratch_service):
    chat = scratch_service("chat")
    chat.models_file.write_text(chat.models_file.read_text().replace('schema="chat"', 'schema="auth"'))

    result = gamedb("schemas", extra=[chat.src_dir])

    assert result.code == 2
    assert "distribution game-chat" in result.stderr
    assert "MetaData is bound to schema 'auth', expected 'chat'" in result.stderr
    scoped = gamedb("-x", "schema=chat", "upgrade", "head", extra=[chat.src_dir])
    assert scoped.code == 2
    assert "MetaData is bound to schema 'auth', expected 'chat'" in scoped.stderr


def test_a_missing_versions_directory_is_refused(gamedb, scratch_service):
    chat = scratch_service("chat")
    chat.versions_dir.rmdir()

    result = gamedb("schemas", extra=[chat.src_dir])

    assert result.code == 2
    assert "game-chat" in result.stderr and "versions directory" in result.stderr


def test_depends_on_an_unknown_schema_is_refused(gamedb, scratch_service):
    chat = scratch_service("chat")
    schema_py = chat.package_dir / "schema.py"
    schema_py.write_text(schema_py.read_text().replace("versions=", 'depends_on=("billing",),\n    versions='))

    result = gamedb("schemas", extra=[chat.src_dir])

    assert result.code == 2
    assert "depends on 'billing', which is not a known schema" in result.stderr


def test_every_installed_schema_has_a_version_table_of_its_own():
    schemas = discover_schemas()

    tables = [s.version_table for s in schemas.values()]
    assert tables == [f"alembic_version_{name}" for name in schemas]
    assert len(set(tables)) == len(tables)
