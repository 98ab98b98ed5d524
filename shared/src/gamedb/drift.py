"""Models versus database for one schema: what autogenerate would write, as short readable lines."""

from __future__ import annotations

from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Connection

from gamedb.autogen import autogenerate_options
from gamedb.discovery import SchemaInfo
from gamedb.extensions import see_extension_types


def schema_drift(connection: Connection, schema: SchemaInfo) -> list[str]:
    """The differences autogenerate finds between `schema`'s models and the database ([] = none)."""
    see_extension_types(connection)
    context = MigrationContext.configure(connection, opts=autogenerate_options(schema))
    return [describe(diff) for diff in compare_metadata(context, schema.metadata)]


def describe(diff: Any) -> str:
    """One line for one autogenerate diff tuple (or list of column modifications)."""
    if isinstance(diff, list):
        return "; ".join(describe(d) for d in diff)
    kind, *rest = diff
    subject = next((r for r in rest if hasattr(r, "name")), None)
    table = getattr(subject, "table", None)
    if kind.endswith("_table") and subject is not None:
        name = subject.fullname
    elif kind.startswith("modify_") and len(rest) >= 3:
        name = f"{rest[0] + '.' if rest[0] else ''}{rest[1]}.{rest[2]}"
    elif table is not None and subject is not None:
        name = f"{table.fullname}.{subject.name}"
    else:
        name = str(getattr(subject, "name", rest[0] if rest else ""))
    return f"{kind} {name}"
