"""gamedb's pytest plugin (entry point `pytest11`, name `gamedb`): a service's test module that says

    gamedb_schema = "chat"

collects every per-schema check of `gamedb.testing` for schema `chat`, as the class `TestChatSchema`:
no import, no conftest. `-p no:gamedb` switches the plugin off. Nothing heavier than pytest is
imported until a module declares a schema, so the plugin costs nothing in other projects' runs.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from gamedb.testing.data_migrations import SchemaMigrator

# The module-level name a test module assigns its schema to.
DECLARATION = "gamedb_schema"


@pytest.hookimpl(tryfirst=True)
def pytest_pycollect_makeitem(collector: pytest.Collector, name: str, obj: object) -> pytest.Class | None:
    """The checks' class for a module's `gamedb_schema = "NAME"`; an unknown schema is one line."""
    if name != DECLARATION or not isinstance(collector, pytest.Module):
        return None
    if not isinstance(obj, str):
        raise collector.CollectError(f"{DECLARATION} must be a schema name, not {obj!r}")
    from gamedb.discovery import discover_schemas, get_schema
    from gamedb.errors import GamedbError
    from gamedb.testing import schema_checks

    try:
        get_schema(obj, discover_schemas())
    except GamedbError as exc:
        raise collector.CollectError(f"{DECLARATION} = {obj!r}: {exc}") from None
    checks = schema_checks(obj)
    module = collector.obj
    if hasattr(module, checks.__name__):
        raise collector.CollectError(f"{DECLARATION} = {obj!r}: the module already defines {checks.__name__}")
    setattr(module, checks.__name__, checks)  # pytest's Class node finds its object on the module
    return pytest.Class.from_parent(collector, name=checks.__name__)


@pytest.fixture
def schema_migrator(request: pytest.FixtureRequest) -> Iterator[SchemaMigrator]:
    """A throwaway database of the test module's `gamedb_schema` (roles applied, at base): move it
    with `migrate_up_to` / `migrate_up_before` / `migrate_down_to`, write rows with `insert_into`,
    read them with `rows` (see gamedb.testing.data_migrations)."""
    schema = getattr(request.module, DECLARATION, None)
    if not isinstance(schema, str):
        raise pytest.UsageError(
            f'{request.module.__name__}: the schema_migrator fixture needs {DECLARATION} = "NAME" in the module'
        )
    from gamedb.testing.data_migrations import SchemaMigrator

    migrator = SchemaMigrator.create(schema)
    yield migrator
    migrator.close()
