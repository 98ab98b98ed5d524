"""Which schemas exist: each service's `gamedb.schemas` entry point, read and validated into one
SchemaInfo per schema (its declaration, enums placed in its schema, which schemas a git change touches).

The re-exports load on first use: a service's `schema.py` imports `gamedb.SchemaDeclaration`, and
that must not pull in SQLAlchemy.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from gamedb.discovery.entry_points import SchemaInfo, discover_schemas, get_schema, load_all_models

__all__ = ["SchemaInfo", "discover_schemas", "get_schema", "load_all_models"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from gamedb.discovery import entry_points

        return getattr(entry_points, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
