"""Server defaults compared the way PostgreSQL stores them, not the way they were written.

Alembic's PostgreSQL comparison evaluates both expressions (`SELECT a = b`), which calls volatile
functions: `gen_random_uuid()` never equals itself. Here both sides are normalized (outer
parentheses, trailing casts, case and spacing outside quotes, quoted numbers) and compared as text;
only constants that still differ are compared by the server. Registered as a comparator that runs
before Alembic's own (whose user-hook path fails on identity columns in Alembic 1.20), in runs that
gamedb configured only.
"""

from __future__ import annotations

import re
from types import NoneType
from typing import Any

from alembic.autogenerate import comparators
from alembic.autogenerate.api import AutogenContext
from alembic.operations import ops
from alembic.util import DispatchPriority, PriorityDispatchResult
from sqlalchemy import Column, Connection, DefaultClause, text
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import SQLAlchemyError

from gamedb.autogen.enums import SCHEMA_OPTION
from gamedb.names import quote_literal

_TYPE = (
    r"""(?:"[^"]+"|[a-z_][\w$]*)(?:\.(?:"[^"]+"|[a-z_][\w$]*))?"""
    r"""(?:\s+(?:varying|precision|with(?:out)?\s+time\s+zone))*(?:\(\d+(?:\s*,\s*\d+)?\))?(?:\[\])*"""
)
_CAST = re.compile(rf"::{_TYPE}$", re.IGNORECASE)
_LITERAL_CAST = re.compile(rf"('(?:[^']|'')*')::{_TYPE}", re.IGNORECASE)
_QUOTED_NUMBER = re.compile(r"'(-?\d+(?:\.\d+)?)'")
# `interval '1 day'` is stored as `'1 day'::interval`: the typed-literal prefix goes like a cast
_TYPED_LITERAL = re.compile(
    r"\b(?:interval|date|time|timestamp|timestamptz|numeric|jsonb?|uuid|text)\s+('(?:[^']|'')*')", re.IGNORECASE
)
_CALL = re.compile(r"[\w\"]\s*\(")
_SERIAL = re.compile(r"nextval\(", re.IGNORECASE)


def normalize_default(expression: str) -> str:
    """One spelling for the ways PostgreSQL and SQLAlchemy write the same default."""
    expr = _TYPED_LITERAL.sub(r"\1", expression.strip())
    expr = _LITERAL_CAST.sub(r"\1", expr)
    while True:
        before = expr
        expr = _strip_parentheses(expr)
        expr = _CAST.sub("", expr).strip()
        if expr == before:
            break
    number = _QUOTED_NUMBER.fullmatch(expr)
    if number:
        expr = number.group(1)
    return _outside_quotes_lower(expr)


def _strip_parentheses(expr: str) -> str:
    if not (expr.startswith("(") and expr.endswith(")")):
        return expr
    depth = 0
    for i, char in enumerate(expr):
        depth += char == "("
        depth -= char == ")"
        if depth == 0 and i < len(expr) - 1:
            return expr  # "(a) + (b)": the first parenthesis closes early
    return expr[1:-1].strip()


def _outside_quotes_lower(expr: str) -> str:
    parts = re.split(r"('(?:[^']|'')*')", expr)
    return "".join(p if p.startswith("'") else " ".join(p.lower().split()) for p in parts)


def defaults_differ(connection: Connection | None, inspected: str | None, declared: str | None) -> bool:
    """True when a column's default in the database (`inspected`) is not the one its model declares."""
    if declared is None or inspected is None:
        if declared is None and inspected is not None and _SERIAL.match(inspected):
            return False  # a serial column's sequence
        return declared != inspected
    ours, theirs = normalize_default(declared), normalize_default(inspected)
    if ours == theirs:
        return False
    if _CALL.search(ours) or _CALL.search(theirs) or connection is None:
        return True  # expressions with function calls: compared as text only, never evaluated
    return not _equal_on_server(connection, inspected, declared)


def _declared_sql(column: Column[Any], dialect: Dialect) -> str | None:
    default = column.server_default
    if not isinstance(default, DefaultClause):
        return None
    if isinstance(default.arg, str):  # a plain string is a literal value, quoted in the DDL
        return quote_literal(default.arg)
    return str(default.arg.compile(dialect=dialect, compile_kwargs={"literal_binds": True}))


def _compare_server_default(
    autogen_context: AutogenContext,
    alter_column_op: ops.AlterColumnOp,
    schema: str | None,
    tname: str,
    cname: str,
    conn_col: Column[Any],
    metadata_col: Column[Any],
) -> PriorityDispatchResult:
    """Runs before Alembic's own comparators; leaves identity and computed columns to them."""
    if autogen_context.migration_context.opts.get(SCHEMA_OPTION) is None:
        return PriorityDispatchResult.CONTINUE
    declared, found = metadata_col.server_default, conn_col.server_default
    if not isinstance(declared, (DefaultClause, NoneType)) or not isinstance(found, (DefaultClause, NoneType)):
        return PriorityDispatchResult.CONTINUE
    if declared is None and found is None:
        return PriorityDispatchResult.CONTINUE
    alter_column_op.existing_server_default = found
    inspected = found.arg.text if found is not None else None  # type: ignore[union-attr]
    assert autogen_context.dialect is not None
    if defaults_differ(autogen_context.connection, inspected, _declared_sql(metadata_col, autogen_context.dialect)):
        alter_column_op.modify_server_default = declared
    return PriorityDispatchResult.STOP


comparators.dispatch_for("column", priority=DispatchPriority.FIRST, subgroup="server_default")(_compare_server_default)


def _equal_on_server(connection: Connection, inspected: str, rendered: str) -> bool:
    try:
        with connection.begin_nested():
            return bool(connection.execute(text(f"SELECT ({inspected}) IS NOT DISTINCT FROM ({rendered})")).scalar())
    except SQLAlchemyError:  # not comparable as values (or not valid SQL on its own): they differ
        return False
