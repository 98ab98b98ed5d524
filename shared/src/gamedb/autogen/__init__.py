"""Models versus database for one schema: what autogenerate compares (comparators, index expressions), how
it writes a revision (rendering), and drift as short readable lines (`drift`).

`autogenerate_options(schema)` is the one set of options given to Alembic by every run that compares
models with the database: `revision --autogenerate`, `check`, `check-all` and `status`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import gamedb.autogen.defaults  # registers the server default comparator
import gamedb.autogen.impl  # replaces Alembic's PostgreSQL implementation
import gamedb.autogen.objects  # noqa: F401 - registers the declared objects' comparator
from gamedb.autogen.canonical import OWNER_OPTION
from gamedb.autogen.checks import write_column_checks
from gamedb.autogen.enums import SCHEMA_OPTION
from gamedb.autogen.ordering import defer_cyclic_foreign_keys
from gamedb.autogen.partitions import PARTITIONS_OPTION
from gamedb.autogen.render import render_item
from gamedb.discovery import SchemaInfo
from gamedb.names import VERSION_TABLE_SCHEMA


def include_only(
    schema: SchemaInfo, partitions: set[str] | None = None
) -> Callable[[str | None, str, dict[str, Any]], bool]:
    """Autogenerate filter: reflect the target schema only (not public, not alembic, no other service),
    and none of its partitions (`partitions` is filled by gamedb.autogen.partitions before tables are compared)."""

    def include_name(name: str | None, type_: str, parent_names: dict[str, Any]) -> bool:
        if type_ == "schema":
            return name == schema.name
        if type_ == "table" and partitions:
            return name not in partitions
        return True

    return include_name


def process_revision_directives(context: Any, revision: Any, directives: list[Any]) -> None:
    """Alembic's hook: gamedb's corrections to what autogenerate writes, in order."""
    defer_cyclic_foreign_keys(context, revision, directives)
    write_column_checks(context, revision, directives)


def autogenerate_options(schema: SchemaInfo) -> dict[str, Any]:
    """Options for Alembic's MigrationContext that compare `schema` (and only it) with its models."""
    partitions: set[str] = set()
    return {
        "target_metadata": schema.metadata,
        "version_table": schema.version_table,
        "version_table_schema": VERSION_TABLE_SCHEMA,
        "include_schemas": True,
        "include_name": include_only(schema, partitions),
        PARTITIONS_OPTION: partitions,
        "compare_type": True,
        # True lets Alembic compare identity columns; gamedb.autogen.defaults compares the rest first
        "compare_server_default": True,
        "render_item": render_item,
        "process_revision_directives": process_revision_directives,
        SCHEMA_OPTION: schema.name,
        OWNER_OPTION: schema.owner_role,
    }
