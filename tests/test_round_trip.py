"""Each schema goes up, all the way down, and up again, without touching the other schemas."""

from __future__ import annotations

import pytest
from comparison_modes import comparison  # noqa: F401 - the cold/warm fixture

from gamedb.discovery import discover_schemas

SCHEMAS = sorted(discover_schemas())


@pytest.mark.usefixtures("comparison")
@pytest.mark.parametrize("schema", SCHEMAS)
def test_upgrade_downgrade_base_upgrade_leaves_other_schemas_alone(schema, gamedb, database):
    for name in SCHEMAS:
        assert gamedb("-x", f"schema={name}", "upgrade", "head").code == 0
    assert gamedb("check-all").code == 0  # warm: recorded clean before the round trip
    others = [s for s in SCHEMAS if s != schema]
    before = {s: (database.version_rows(s), database.tables(s)) for s in others}
    head = database.version_rows(schema)
    tables = database.tables(schema)

    down = gamedb("-x", f"schema={schema}", "downgrade", "base")

    assert down.code == 0, down.output
    assert schema not in database.schemas()
    assert database.version_rows(schema) == []
    assert {s: (database.version_rows(s), database.tables(s)) for s in others} == before

    up = gamedb("-x", f"schema={schema}", "upgrade", "head")

    assert up.code == 0, up.output
    assert database.version_rows(schema) == head
    assert database.tables(schema) == tables
    assert {s: (database.version_rows(s), database.tables(s)) for s in others} == before
    assert gamedb("-x", f"schema={schema}", "check").code == 0
