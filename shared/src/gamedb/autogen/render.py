"""How autogenerate writes column types into a revision so that it runs as generated.

Every type is written as the database type it is, fully qualified (`sa.`, `postgresql.`, both
imported by the revision template): a `TypeDecorator` as what `load_dialect_impl` gives for
PostgreSQL (inside an ARRAY too), never as the application's class, whose constructor, module and
name are not the revision's to rely on (see gamedb.discovery.types). A type SQLAlchemy does not know
(a `UserDefinedType`) is written as its DDL text through `gamedb.migrate.types.DatabaseType`.

Native enums are written as `postgresql.ENUM(..., create_type=False)`: the revision creates and drops
the types itself (`gamedb.autogen.enums`), once, in the right order, even when several tables share
one.

A model's string server default is written as the string it is (Alembic would strip a quote from
each end).
"""

from __future__ import annotations

from typing import Any, Literal

from alembic.autogenerate import render
from alembic.autogenerate.api import AutogenContext
from sqlalchemy import CheckConstraint, DefaultClause, Enum, Table
from sqlalchemy.sql.elements import conv
from sqlalchemy.types import TypeEngine

from gamedb.autogen.canonical import check_condition_sql
from gamedb.discovery.types import POSTGRESQL, database_type

POSTGRESQL_IMPORT = "from sqlalchemy.dialects import postgresql"
DATABASE_TYPE_IMPORT = "from gamedb.migrate.types import DatabaseType"


def render_item(type_: str, obj: Any, autogen_context: AutogenContext) -> str | Literal[False] | None:
    """Alembic's `render_item` hook."""
    if type_ == "server_default" and isinstance(obj, DefaultClause) and isinstance(obj.arg, str):
        # a model's string default, written as the string it is: Alembic strips one quote from each
        # end, so server_default="''" (two quote characters) became the empty string in the revision
        return repr(str.__str__(obj.arg))  # the text of a str enum member (Prefect's), not its repr
    if type_ == "check" and isinstance(obj, CheckConstraint):
        return None if _is_a_twin(obj) else False
    if type_ != "type" or not isinstance(obj, TypeEngine):
        return False
    dialect = autogen_context.dialect or POSTGRESQL
    resolved = database_type(obj, dialect)
    if isinstance(resolved, Enum) and resolved.native_enum:
        autogen_context.imports.add(POSTGRESQL_IMPORT)
        values = ", ".join(repr(v) for v in resolved.enums)
        return f"postgresql.ENUM({values}, name={resolved.name!r}, schema={resolved.schema!r}, create_type=False)"
    if not type(resolved).__module__.startswith("sqlalchemy."):
        autogen_context.imports.add(DATABASE_TYPE_IMPORT)
        return f"DatabaseType({resolved.compile(dialect=dialect)!r})"
    if resolved is obj:
        return False  # Alembic's own rendering of SQLAlchemy's types (nested types come back here)
    return render._repr_type(resolved, autogen_context)


def _is_a_twin(check: CheckConstraint) -> bool:
    """Whether `check` repeats another CHECK of its table, and is not the one to write.

    Alembic renders a new table from a copy of the model's; an event listener that adds a CHECK when a
    column joins a table runs again on the copy, which then holds the model's CHECK and the listener's
    new one: written both, the revision fails with 42710. The model's (named by the convention) is kept.
    """
    table = check.table if isinstance(check.table, Table) else None
    if table is None:
        return False
    condition = check_condition_sql(check, POSTGRESQL)
    twins = [
        c
        for c in table.constraints
        if isinstance(c, CheckConstraint) and not c._type_bound and check_condition_sql(c, POSTGRESQL) == condition
    ]
    if len(twins) < 2:
        return False
    keep = next((c for c in twins if isinstance(c.name, conv)), None) or next((c for c in twins if c.name), twins[0])
    return check is not keep
