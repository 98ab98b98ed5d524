"""How autogenerate writes column types into a revision so that it runs as generated.

Native enums are written as `postgresql.ENUM(..., create_type=False)`: the revision creates and drops
the types itself (`gamedb.autogen.enums`), once, in the right order, even when several tables share
one. A service's own column types are written with the import of their module.
"""

from __future__ import annotations

from typing import Any, Literal

from alembic.autogenerate.api import AutogenContext
from sqlalchemy import Enum
from sqlalchemy.types import TypeEngine


def render_item(type_: str, obj: Any, autogen_context: AutogenContext) -> str | Literal[False]:
    """Alembic's `render_item` hook."""
    if type_ != "type" or not isinstance(obj, TypeEngine):
        return False
    if isinstance(obj, Enum) and obj.native_enum:
        autogen_context.imports.add("from sqlalchemy.dialects import postgresql")
        values = ", ".join(repr(v) for v in obj.enums)
        return f"postgresql.ENUM({values}, name={obj.name!r}, schema={obj.schema!r}, create_type=False)"
    module = type(obj).__module__
    if not module.startswith("sqlalchemy") and module != "builtins":
        autogen_context.imports.add(f"import {module}")  # Alembic writes it as module.Type(...)
    return False
