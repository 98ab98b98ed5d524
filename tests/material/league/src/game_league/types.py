"""Column types of the league service's own."""

from __future__ import annotations

from typing import Any

from sqlalchemy import String
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator


class Slug(TypeDecorator[str]):
    """A lower-case URL slug, stored as varchar(64)."""

    impl = String(64)
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> Any:
        return value.lower() if isinstance(value, str) else value
