"""Testing a service's schema: the ready-made per-schema checks and throwaway databases (`checks`),
and the pytest plugin that collects the checks from one line in a service's test module
(`pytest_plugin`).

The re-exports load on first use: pytest imports the plugin in every run where gamedb is installed,
and that must not pull in Alembic, SQLAlchemy or psycopg.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from gamedb.testing.checks import SCHEMA_CATALOG, ThrowawayDatabase, admin_uri, schema_checks
    from gamedb.testing.data_migrations import SchemaMigrator

__all__ = ["SCHEMA_CATALOG", "SchemaMigrator", "ThrowawayDatabase", "admin_uri", "schema_checks"]


def __getattr__(name: str) -> Any:
    if name == "SchemaMigrator":
        from gamedb.testing import data_migrations

        return data_migrations.SchemaMigrator
    if name in __all__:
        from gamedb.testing import checks

        return getattr(checks, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
