"""Autogenerate for a schema's enum types: created before the tables that use them, dropped after the
last one goes, values added, removed or reordered; each change is also drift for `check`.

Registered in Alembic's comparator and renderer registries, it acts only in runs that gamedb
configured (the option `gamedb_schema`), and only on that schema.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from alembic.autogenerate import comparators, renderers
from alembic.autogenerate.api import AutogenContext
from alembic.operations import ops
from alembic.util import DispatchPriority
from sqlalchemy import Connection, MetaData, text

from gamedb.discovery.enums import declared_enums

SCHEMA_OPTION = "gamedb_schema"

DB_ENUMS = text(
    "SELECT t.typname, array_agg(e.enumlabel ORDER BY e.enumsortorder)"
    " FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace JOIN pg_enum e ON e.enumtypid = t.oid"
    " WHERE n.nspname = :schema GROUP BY t.typname"
)


def database_enums(connection: Connection, schema: str) -> dict[str, tuple[str, ...]]:
    """Name -> values (in order) of every enum type in `schema`."""
    return {name: tuple(values) for name, values in connection.execute(DB_ENUMS, {"schema": schema})}


class EnumOp(ops.MigrateOperation):
    """Base of the enum operations: one type of one schema."""

    def __init__(self, schema: str, name: str) -> None:
        self.schema = schema
        self.name = name

    @property
    def qualified(self) -> str:
        return f"{self.schema}.{self.name}"


class CreateEnumOp(EnumOp):
    def __init__(self, schema: str, name: str, values: tuple[str, ...]) -> None:
        super().__init__(schema, name)
        self.values = values

    def reverse(self) -> DropEnumOp:
        return DropEnumOp(self.schema, self.name, self.values)

    def to_diff_tuple(self) -> tuple[Any, ...]:
        return ("add_enum", self.qualified, self.values)


class DropEnumOp(EnumOp):
    def __init__(self, schema: str, name: str, values: tuple[str, ...]) -> None:
        super().__init__(schema, name)
        self.values = values

    def reverse(self) -> CreateEnumOp:
        return CreateEnumOp(self.schema, self.name, self.values)

    def to_diff_tuple(self) -> tuple[Any, ...]:
        return ("remove_enum", self.qualified, self.values)


class AddEnumValuesOp(EnumOp):
    """New values only, existing ones kept in their order: ALTER TYPE ... ADD VALUE."""

    def __init__(self, schema: str, name: str, new: tuple[str, ...], final: tuple[str, ...]) -> None:
        super().__init__(schema, name)
        self.new = new
        self.final = final

    def reverse(self) -> RecreateEnumOp:
        before = tuple(v for v in self.final if v not in self.new)
        return RecreateEnumOp(self.schema, self.name, self.final, before)

    def to_diff_tuple(self) -> tuple[Any, ...]:
        return ("add_enum_values", self.qualified, self.new)


class RecreateEnumOp(EnumOp):
    """Values removed or reordered: the type is made anew and its columns converted."""

    def __init__(self, schema: str, name: str, current: tuple[str, ...], values: tuple[str, ...]) -> None:
        super().__init__(schema, name)
        self.current = current
        self.values = values

    def reverse(self) -> RecreateEnumOp:
        return RecreateEnumOp(self.schema, self.name, self.values, self.current)

    def to_diff_tuple(self) -> tuple[Any, ...]:
        return ("change_enum_values", self.qualified, self.current, self.values)


def enum_ops(
    schema: str, declared: dict[str, tuple[str, ...]], existing: dict[str, tuple[str, ...]]
) -> tuple[list[EnumOp], list[EnumOp]]:
    """(ops to run before the table changes, ops to run after them) turning `existing` into `declared`."""
    first: list[EnumOp] = []
    last: list[EnumOp] = []
    for name in sorted(declared.keys() - existing.keys()):
        first.append(CreateEnumOp(schema, name, declared[name]))
    for name in sorted(declared.keys() & existing.keys()):
        want, have = declared[name], existing[name]
        if want == have:
            continue
        kept = tuple(v for v in want if v in have)
        if kept == have:  # only additions, the old values in their old order
            first.append(AddEnumValuesOp(schema, name, tuple(v for v in want if v not in have), want))
        else:
            last.append(RecreateEnumOp(schema, name, have, want))
    for name in sorted(existing.keys() - declared.keys()):
        last.append(DropEnumOp(schema, name, existing[name]))
    return first, last


def _compare_enums(autogen_context: AutogenContext, upgrade_ops: ops.UpgradeOps, schemas: Iterable[str | None]) -> Any:
    schema = autogen_context.migration_context.opts.get(SCHEMA_OPTION)
    if schema is None or schema not in set(schemas) or autogen_context.connection is None:
        return None
    metadata = autogen_context.metadata
    declared = declared_enums(metadata) if isinstance(metadata, MetaData) else {}  # gamedb hands one MetaData
    first, last = enum_ops(schema, declared, database_enums(autogen_context.connection, schema))
    upgrade_ops.ops[:0] = first
    upgrade_ops.ops.extend(last)
    return None


# after the table comparators, so "last" really is last (DispatchPriority: Alembic 1.18, the floor)
comparators.dispatch_for("schema", priority=DispatchPriority.LAST)(_compare_enums)

IMPORT = "from gamedb.migrate import enum_ops"


@renderers.dispatch_for(CreateEnumOp)
def _render_create(autogen_context: AutogenContext, op: CreateEnumOp) -> str:
    autogen_context.imports.add(IMPORT)
    return f"enum_ops.create({op.schema!r}, {op.name!r}, {list(op.values)!r})"


@renderers.dispatch_for(DropEnumOp)
def _render_drop(autogen_context: AutogenContext, op: DropEnumOp) -> str:
    autogen_context.imports.add(IMPORT)
    return f"enum_ops.drop({op.schema!r}, {op.name!r})"


@renderers.dispatch_for(AddEnumValuesOp)
def _render_add_values(autogen_context: AutogenContext, op: AddEnumValuesOp) -> str:
    autogen_context.imports.add(IMPORT)
    return (
        "# committed before the rest of this revision: PostgreSQL can't use a value in the transaction adding it\n"
        f"enum_ops.add_values({op.schema!r}, {op.name!r}, {list(op.new)!r}, final={list(op.final)!r})"
    )


@renderers.dispatch_for(RecreateEnumOp)
def _render_recreate(autogen_context: AutogenContext, op: RecreateEnumOp) -> str:
    autogen_context.imports.add(IMPORT)
    gone = [v for v in op.current if v not in op.values]
    note = (
        f"# values {gone} go: rows holding them make this fail (22P02); UPDATE them first\n"
        if gone
        else "# PostgreSQL can't reorder enum values in place: the type is rebuilt\n"
    )
    return note + f"enum_ops.recreate({op.schema!r}, {op.name!r}, {list(op.values)!r})"
