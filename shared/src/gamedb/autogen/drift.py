"""Models versus database for one schema: what autogenerate would write, as short readable lines."""

from __future__ import annotations

from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import CheckConstraint, Column, Connection, DefaultClause, Table

from gamedb.autogen import autogenerate_options
from gamedb.autogen.canonical import check_condition_sql, declared_default_sql
from gamedb.autogen.defaults import REFUSED
from gamedb.discovery import SchemaInfo
from gamedb.discovery.types import POSTGRESQL
from gamedb.extensions import see_extension_types

IN_MODELS = "is in the models, not in the database"
IN_DATABASE = "is in the database, not in the models"


def schema_drift(connection: Connection, schema: SchemaInfo) -> list[str]:
    """The differences autogenerate finds between `schema`'s models and the database ([] = none)."""
    see_extension_types(connection)
    context = MigrationContext.configure(connection, opts=autogenerate_options(schema))
    found = compare_metadata(context, schema.metadata)  # Alembic 1.18+ reflects the schema's tables in bulk
    diffs = [d for diff in found for d in (diff if isinstance(diff, list) else [diff])]
    # a table missing on one side: its indexes and constraints go with it, one line says it all
    whole = {(d[0].removesuffix("_table"), d[1].fullname) for d in diffs if d[0] in ("add_table", "remove_table")}
    diffs = [d for d in diffs if not _part_of(d, whole)]
    changed = _changed_checks(diffs)
    return [*(describe(d) for d in diffs if id(d) not in changed), *dict.fromkeys(changed.values())]


def _changed_checks(diffs: list[tuple[Any, ...]]) -> dict[int, str]:
    """A CHECK dropped and added under one name is one change: id of both diffs -> the one line."""
    removed = {
        (d[1].table.fullname, d[1].name): d
        for d in diffs
        if d[0] == "remove_constraint" and isinstance(d[1], CheckConstraint) and d[1].name
    }
    lines: dict[int, str] = {}
    for d in diffs:
        if d[0] != "add_constraint" or not isinstance(d[1], CheckConstraint):
            continue
        key = (d[1].table.fullname, d[1].name)
        if key in removed:
            line = (
                f"check constraint {key[1]} on {key[0]}: {_check_sql(removed[key][1])} in the database, "
                f"{_check_sql(d[1])} in the models"
            )
            lines[id(d)] = lines[id(removed[key])] = line
    return lines


def _check_sql(check: CheckConstraint) -> str:
    return f"CHECK ({check_condition_sql(check, POSTGRESQL)})"


def _part_of(diff: tuple[Any, ...], whole: set[tuple[str, str]]) -> bool:
    table = getattr(diff[1], "table", None) if len(diff) > 1 else None
    side = diff[0].split("_", 1)[0]
    return isinstance(table, Table) and (side, table.fullname) in whole


def describe(diff: tuple[Any, ...]) -> str:
    """One line for one autogenerate diff tuple: what, which object, database vs models."""
    kind, *rest = diff
    if kind == "gamedb_object":  # gamedb.autogen.objects writes its own line
        return str(rest[0])
    if kind in ("add_table", "remove_table"):
        return f"table {rest[0].fullname} {IN_MODELS if kind == 'add_table' else IN_DATABASE}"
    if kind in ("add_column", "remove_column"):
        schema, table, column = rest
        return f"column {_qualified(schema, table)}.{column.name} {IN_MODELS if kind == 'add_column' else IN_DATABASE}"
    if kind.startswith("modify_"):
        schema, table, column, _existing, found, wanted = rest
        what = kind.removeprefix("modify_")
        refused = REFUSED.get(wanted) if isinstance(wanted, DefaultClause) else None
        return (
            f"column {_qualified(schema, table)}.{column}: {what} {_show(found)} in the database, "
            f"{_show(wanted)} in the models" + (f" (PostgreSQL refuses it: {refused})" if refused else "")
        )
    if kind in ("add_enum", "remove_enum"):
        name, values = rest
        return f"enum type {name} ({', '.join(values)}) {IN_MODELS if kind == 'add_enum' else IN_DATABASE}"
    if kind == "add_enum_values":
        name, values = rest
        return f"enum type {name}: values {', '.join(values)} {IN_MODELS}"
    if kind == "change_enum_values":
        name, found, wanted = rest
        return f"enum type {name}: values ({', '.join(found)}) in the database, ({', '.join(wanted)}) in the models"
    for prefix, label in (("add_", IN_MODELS), ("remove_", IN_DATABASE)):
        if kind.startswith(prefix):
            subject = rest[0]
            table = getattr(subject, "table", None)
            where = f" on {table.fullname}" if isinstance(table, Table) else ""
            noun = {"fk": "foreign key", "constraint": "constraint", "index": "index"}.get(kind[len(prefix) :], kind)
            if isinstance(subject, CheckConstraint):
                return f"check constraint {subject.name or '(unnamed)'}{where} ({_check_sql(subject)}) {label}"
            return f"{noun} {getattr(subject, 'name', None) or '(unnamed)'}{where} {label}"
    return " ".join(str(part) for part in diff)


def _qualified(schema: str | None, table: str) -> str:
    return f"{schema}.{table}" if schema else table


def _show(value: Any) -> str:
    """A type, a default or a flag as a person would write it."""
    if isinstance(value, DefaultClause):  # a server default, as SQL (binds written as literals)
        default = declared_default_sql(value, POSTGRESQL)
        assert default is not None  # None is for values that are no DefaultClause
        return default
    if value is None:
        return "none"
    if isinstance(value, Column):
        return value.name
    return str(value)
