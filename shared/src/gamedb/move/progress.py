"""The initial copy's progress: rows copied per table and in total.

Rows of a table still copying come from the target's `pg_stat_progress_copy` (the subscription's
table-sync worker runs COPY there); a table that finished counts its rows. On a terminal one live
line is redrawn on each poll; elsewhere nothing is drawn (the per-table "copied" lines and the total
at the end are plain lines).
"""

from __future__ import annotations

import sys
import time
from typing import TextIO

import psycopg


def rows_copying(target: psycopg.Connection, schema: str) -> dict[str, int]:
    """table -> rows its COPY has written so far, for the schema's tables being copied now."""
    rows = target.execute(
        "SELECT c.relname, p.tuples_processed FROM pg_stat_progress_copy p JOIN pg_class c ON c.oid = p.relid "
        "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = %s AND p.datname = current_database()",
        (schema,),
    ).fetchall()
    return {table: int(count) for table, count in rows}


def copy_line(schema: str, copying: dict[str, int], done: dict[str, int], tables: int, seconds: float) -> str:
    """`copying inventory: items 12,000 rows...; 1/2 table(s) done; 15,000 rows in total, 3.2s`."""
    parts = [f"{table} {rows:,} rows..." for table, rows in sorted(copying.items()) if table not in done]
    total = sum(done.values()) + sum(rows for table, rows in copying.items() if table not in done)
    running = ", ".join(parts) or "waiting for the table-sync workers"
    return f"copying {schema}: {running}; {len(done)}/{tables} table(s) done; {total:,} rows in total, {seconds:.1f}s"


class CopyProgress:
    """Draws the copy's live line on a terminal; says nothing elsewhere."""

    def __init__(self, schema: str, tables: int, stream: TextIO | None = None) -> None:
        self.schema, self.tables = schema, tables
        self.stream = stream if stream is not None else sys.stdout
        self.live = self.stream.isatty()
        self.started = time.monotonic()
        self.drawn = False

    def update(self, copying: dict[str, int], done: dict[str, int]) -> None:
        if not self.live:
            return
        self.stream.write("\r\x1b[K" + copy_line(self.schema, copying, done, self.tables, self.elapsed))
        self.stream.flush()
        self.drawn = True

    def clear(self) -> None:
        """Before any other line is printed."""
        if self.drawn:
            self.stream.write("\r\x1b[K")
            self.stream.flush()
            self.drawn = False

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self.started
