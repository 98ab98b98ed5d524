"""A model column's type as PostgreSQL stores it, whatever Python type wraps it.

A `TypeDecorator` is application code: its constructor, its module and its name may change after a
revision was written, and a revision's checksum does not cover them. What the database holds is the
type `load_dialect_impl` gives for PostgreSQL, so that is what autogenerate writes and what discovery
looks into for enum types.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy.types as sqltypes
from sqlalchemy.dialects import postgresql
from sqlalchemy.dialects.postgresql import psycopg
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator, TypeEngine

POSTGRESQL: Dialect = psycopg.dialect()  # type: ignore[no-untyped-call]  # SQLAlchemy leaves its __init__ unannotated

_BASES = (sqltypes.TypeEngine, sqltypes.UserDefinedType, sqltypes.TypeDecorator, sqltypes.ExternalType)
_PUBLIC = frozenset(
    value
    for module in (sqltypes, postgresql)
    for name, value in vars(module).items()
    if not name.startswith("_") and isinstance(value, type) and issubclass(value, TypeEngine) and value not in _BASES
)


def database_type(type_: TypeEngine[Any], dialect: Dialect | None = None) -> TypeEngine[Any]:
    """`type_` as PostgreSQL sees it: decorators unwrapped by `load_dialect_impl`, the PostgreSQL
    variant of a `with_variant` type, a driver's private subclass as its public SQLAlchemy class."""
    dialect = dialect or POSTGRESQL
    for _ in range(20):  # a decorator returning a decorator returning...; never itself forever
        variants = getattr(type_, "_variant_mapping", None)
        if variants and dialect.name in variants:
            type_ = variants[dialect.name]
        elif isinstance(type_, TypeDecorator) and not type(type_).__module__.startswith("sqlalchemy."):
            type_ = type_.load_dialect_impl(dialect)  # SQLAlchemy's own (Interval...) stay as they are
        else:
            break
    return _public(type_)


def _public(type_: TypeEngine[Any]) -> TypeEngine[Any]:
    for cls in type(type_).__mro__:
        if cls in _BASES:
            break
        if cls in _PUBLIC:
            return type_ if cls is type(type_) else type_.adapt(cls)
    return type_  # a type SQLAlchemy doesn't know (UserDefinedType...): kept as it is
