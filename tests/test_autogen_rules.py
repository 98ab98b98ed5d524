"""The pure rules behind autogenerate (no server): which enum operations a difference needs, how value
additions are placed. The behaviour on a real server is in test_real_models and test_model_types."""

from __future__ import annotations

import importlib

import pytest
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.types import TypeDecorator, UserDefinedType

from gamedb.autogen.enums import IMPORT, AddEnumValuesOp, CreateEnumOp, DropEnumOp, RecreateEnumOp, enum_ops
from gamedb.discovery.types import database_type
from gamedb.migrate import enum_ops as enum_helpers
from gamedb.migrate.enum_ops import add_values_sql, create_sql, recreate_sql

pytestmark = pytest.mark.unit


def test_new_types_come_first_dropped_types_last_and_additions_are_in_place():
    first, last = enum_ops(
        "s",
        declared={"a": ("x", "y"), "b": ("p", "new", "q"), "c": ("k",)},
        existing={"b": ("p", "q"), "c": ("k", "gone"), "d": ("z",)},
    )

    assert [type(op) for op in first] == [CreateEnumOp, AddEnumValuesOp]
    assert (first[1].new, first[1].final) == (("new",), ("p", "new", "q"))
    assert [type(op) for op in last] == [RecreateEnumOp, DropEnumOp]
    assert (last[0].current, last[0].values) == (("k", "gone"), ("k",))
    assert last[1].name == "d"


def test_a_reordered_enum_is_rebuilt_not_extended():
    first, last = enum_ops("s", declared={"e": ("b", "a", "c")}, existing={"e": ("a", "b")})

    assert first == []
    assert [(type(op), op.values) for op in last] == [(RecreateEnumOp, ("b", "a", "c"))]


def test_added_values_are_placed_after_their_predecessor_or_before_the_first_old_value():
    assert add_values_sql("s", "e", ["new0", "new1", "mid", "end"], ["new0", "new1", "a", "mid", "b", "end"]) == [
        "ALTER TYPE \"s\".\"e\" ADD VALUE IF NOT EXISTS 'new0' BEFORE 'a'",
        "ALTER TYPE \"s\".\"e\" ADD VALUE IF NOT EXISTS 'new1' AFTER 'new0'",
        "ALTER TYPE \"s\".\"e\" ADD VALUE IF NOT EXISTS 'mid' AFTER 'a'",
        "ALTER TYPE \"s\".\"e\" ADD VALUE IF NOT EXISTS 'end' AFTER 'b'",
    ]


def test_enum_values_and_names_are_quoted_in_every_statement():
    assert create_sql("s", 'we"ird', ["o'neil", "x"]) == "CREATE TYPE \"s\".\"we\"\"ird\" AS ENUM ('o''neil', 'x')"
    assert "ADD VALUE IF NOT EXISTS 'it''s' AFTER 'x'" in add_values_sql("s", "e", ["it's"], ["x", "it's"])[0]
    assert "AS ENUM ('o''neil')" in recreate_sql("s", "e", ["o'neil"])


def test_a_value_that_would_end_the_do_block_is_refused():
    with pytest.raises(ValueError, match=r"contains \$gamedb\$"):
        recreate_sql("s", "e", ["a$gamedb$b"])


def test_a_generated_revision_imports_the_enum_helpers_from_gamedb_migrate():
    module, _, name = IMPORT.removeprefix("from ").partition(" import ")
    assert (module, name) == ("gamedb.migrate", "enum_ops")
    assert getattr(importlib.import_module(module), name) is enum_helpers


def test_a_column_type_is_written_as_what_postgresql_stores():
    class GUID(TypeDecorator):
        impl = sa.CHAR(32)
        cache_ok = True

        def load_dialect_impl(self, dialect):
            return dialect.type_descriptor(postgresql.UUID() if dialect.name == "postgresql" else sa.CHAR(32))

    class Outer(TypeDecorator):
        impl = GUID
        cache_ok = True

    class Point(UserDefinedType):
        cache_ok = True

        def get_col_spec(self, **kw):
            return "point"

    assert repr(database_type(Outer())) == "UUID()"  # a driver's private subclass becomes the public class
    assert repr(database_type(sa.String(5).with_variant(sa.CHAR(5), "postgresql"))) == "CHAR(length=5)"
    assert isinstance(database_type(sa.Interval()), sa.Interval)  # SQLAlchemy's own decorators stay
    point = Point()
    assert database_type(point) is point
