"""gamedb: one PostgreSQL schema per service, each versioned by Alembic on its own."""

from __future__ import annotations

from gamedb.discovery.declaration import NAMING_CONVENTION, SchemaDeclaration

__all__ = ["NAMING_CONVENTION", "SchemaDeclaration"]
