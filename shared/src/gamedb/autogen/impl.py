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

OFFLINE_BREAKS_OPTION = "gamedb_offline_breaks"  # see gamedb.migrate.autocommit


class SchemaScopedPostgresqlImpl(PostgresqlImpl):
    """Replaces Alembic's PostgresqlImpl (Alembic picks the implementation by `__dialect__`)."""

    __dialect__ = "postgresql"

    def _cleanup_index_expr(self, index: Any, expr: str) -> str:
        schema = self.context_opts.get(SCHEMA_OPTION)
        if schema:
            expr = re.sub(rf'(?<![\w."]){re.escape(schema)}\.|"{re.escape(schema)}"\.', "", expr)
        return super()._cleanup_index_expr(index, expr)

    # Offline, Alembic writes COMMIT / BEGIN around a revision's autocommit_block(); gamedb adds what
    # the statements in between and the next transaction need (gamedb.migrate.autocommit.OfflineBreaks).
    def emit_commit(self) -> None:
        super().emit_commit()
        breaks = self.context_opts.get(OFFLINE_BREAKS_OPTION)
        if breaks is not None:
            breaks.after_commit(self)

    def emit_begin(self) -> None:
        breaks = self.context_opts.get(OFFLINE_BREAKS_OPTION)
        if breaks is not None:
            breaks.before_begin(self)
        super().emit_begin()
        if breaks is not None:
            breaks.after_begin(self)
