"""`--sql` output applied with `psql -1` gives what the online run gives."""

from __future__ import annotations

import pytest

from conftest import apply_with_psql
from gamedb.discovery import discover_schemas

SCHEMAS = sorted(discover_schemas())

COLUMNS = """
SELECT table_name, column_name, data_type, is_nullable, coalesce(column_default, '')
FROM information_schema.columns WHERE table_schema = %s ORDER BY 1, 2
"""
INDEXES = "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = %s ORDER BY 1"


def shape(database, schema):
    return database.query(COLUMNS, (schema,)), database.query(INDEXES, (schema,)), database.version_rows(schema)


@pytest.mark.parametrize("schema", SCHEMAS)
def test_offline_sql_applied_with_psql_matches_the_online_upgrade(schema, gamedb, database, psql):
    offline = gamedb("-x", f"schema={schema}", "upgrade", "head", "--sql")
    assert offline.code == 0, offline.output
    assert offline.stdout.startswith("BEGIN;")
    assert offline.stdout.rstrip().endswith("COMMIT;")

    applied = apply_with_psql(psql, database, offline.stdout, single_transaction=True)
    assert applied.returncode == 0, applied.stderr
    offline_shape = shape(database, schema)

    # the same database, emptied of this schema, then the online run
    database.query(f'DROP SCHEMA "{schema}" CASCADE')
    database.query(f'DROP TABLE alembic."alembic_version_{schema}"')
    online = gamedb("-x", f"schema={schema}", "upgrade", "head")
    assert online.code == 0, online.output

    assert shape(database, schema) == offline_shape
    assert offline_shape[2] and len(offline_shape[2]) == 1


def test_offline_sql_needs_no_server(gamedb):
    from conftest import run_cli

    result = run_cli(
        ["-x", "schema=auth", "upgrade", "head", "--sql"], url="postgresql+psycopg://nobody:pw@127.0.0.1:1/game"
    )

    assert result.code == 0, result.output
    assert "CREATE TABLE auth.users" in result.stdout
