"""A service's native enum types as its models declare them, each placed in the service's schema.

SQLAlchemy gives an explicit `Enum(...)` column the MetaData's schema, but not an enum declared by a
bare `Mapped[SomeEnum]` annotation, on an `__abstract__` base or a mixin (2.1), nor any of them
(2.0): such a type would be created in `public`. Discovery stamps the schema onto every one of them.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ARRAY, Column, Enum, MetaData
from sqlalchemy.types import TypeEngine

from gamedb.discovery.types import database_type
from gamedb.errors import DiscoveryError


@dataclass(frozen=True)
class EnumUse:
    """One column's use of a native enum type (directly, or as the element of an ARRAY)."""

    column: Column[Any]
    type: Enum
    in_array: bool

    @property
    def where(self) -> str:
        return f"{self.column.table.fullname}.{self.column.name}"


def enum_uses(metadata: MetaData) -> Iterator[EnumUse]:
    """Every column of `metadata` that stores a native PostgreSQL enum."""
    for table in metadata.tables.values():
        for column in table.columns:
            yield from _enums_in(column, column.type, in_array=False)


def _enums_in(column: Column[Any], type_: TypeEngine[Any], *, in_array: bool) -> Iterator[EnumUse]:
    type_ = database_type(type_)
    if isinstance(type_, ARRAY):
        yield from _enums_in(column, type_.item_type, in_array=True)
    elif isinstance(type_, Enum) and type_.native_enum:
        yield EnumUse(column, type_, in_array)


def stamp_enum_schemas(metadata: MetaData, schema: str) -> None:
    """Put every schema-less native enum of `metadata` into `schema`; refuse one placed elsewhere.

    The type object is changed in place: the table events SQLAlchemy registered for it read its
    schema when they run, so `create_all` and autogenerate both see the stamped schema.
    """
    declared: dict[str, tuple[tuple[str, ...], str]] = {}
    for use in enum_uses(metadata):
        if use.type.name is None:
            raise DiscoveryError(f"column {use.where}: a native enum needs a name (Enum(..., name='...'))")
        if use.type.schema is None:
            use.type.schema = schema
        elif use.type.schema != schema:
            raise DiscoveryError(
                f"column {use.where}: enum type {use.type.schema}.{use.type.name} is outside schema {schema!r}; "
                "a service's types live in its own schema"
            )
        values = tuple(use.type.enums)
        first = declared.setdefault(use.type.name, (values, use.where))
        if first[0] != values:
            raise DiscoveryError(
                f"enum type {schema}.{use.type.name} has values {list(first[0])} on {first[1]} "
                f"but {list(values)} on {use.where}"
            )


def declared_enums(metadata: MetaData) -> dict[str, tuple[str, ...]]:
    """Name -> values (in order) of every native enum the models use (after stamping)."""
    # a nameless one is refused by stamp_enum_schemas, at discovery
    return {use.type.name: tuple(use.type.enums) for use in enum_uses(metadata) if use.type.name is not None}
