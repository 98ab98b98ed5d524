"""Alembic's PostgreSQL implementation, taught that a schema's own functions may be named bare.

A revision runs with the service schema on its search_path, so a model's index on
`func.normalize_handle(col)` is valid; reflection (which must keep the default search_path) writes it
back as `<schema>.normalize_handle(...)`. In gamedb's runs the schema's own prefix is dropped from
both sides before Alembic compares index expressions.
"""

from __future__ import annotations

import re
from typing import Any

from alembic.ddl.postgresql import PostgresqlImpl

from gamedb.autogen.enums import SCHEMA_OPTION


class SchemaScopedPostgresqlImpl(PostgresqlImpl):
    """Replaces Alembic's PostgresqlImpl (Alembic picks the implementation by `__dialect__`)."""

    __dialect__ = "postgresql"

    def _cleanup_index_expr(self, index: Any, expr: str) -> str:
        schema = self.context_opts.get(SCHEMA_OPTION)
        if schema:
            expr = re.sub(rf'(?<![\w."]){re.escape(schema)}\.|"{re.escape(schema)}"\.', "", expr)
        return super()._cleanup_index_expr(index, expr)
