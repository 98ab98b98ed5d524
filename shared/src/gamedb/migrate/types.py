"""Column types generated revisions use besides SQLAlchemy's own."""

from __future__ import annotations

from typing import Any

from sqlalchemy.types import UserDefinedType


class DatabaseType(UserDefinedType[Any]):
    """A column type written as its DDL text (`geometry(Point,4326)`): how a revision names a type that
    SQLAlchemy does not know, without importing the application code that declared it."""

    cache_ok = True

    def __init__(self, ddl: str) -> None:
        self.ddl = ddl

    def get_col_spec(self, **kw: Any) -> str:
        return self.ddl
