"""squawk leaves alone an index built on a table the same file creates (nobody reads a table that
does not exist yet, so its lock blocks no one), but not one on a materialized view the file
creates: autogenerate writes a `MaterializedView(..., unique_key=...)` as CREATE MATERIALIZED VIEW
followed by CREATE UNIQUE INDEX, and squawk asks for CONCURRENTLY there, which CREATE INDEX can't
use in the revision's transaction. gamedb drops that finding when the revision's SQL creates the
view before the index; an index on a view an earlier revision made is still reported.
"""

from __future__ import annotations

import re

from gamedb.lint.refresh import INDEX, NAME, bare
from gamedb.lint.squawk import SquawkFinding

RULE = "require-concurrent-index-creation"
_VIEW = re.compile(rf"\bCREATE\s+MATERIALIZED\s+VIEW\s+(?:IF\s+NOT\s+EXISTS\s+)?((?:{NAME}\.)?{NAME})", re.IGNORECASE)


def on_a_view_made_here(finding: SquawkFinding, sql: str) -> bool:
    """Whether `finding` asks for CONCURRENTLY on an index of a materialized view `sql` created before it."""
    if finding.rule != RULE:
        return False
    lines = sql.split("\n")
    begin = sum(len(line) + 1 for line in lines[: finding.line])  # the flagged lines, whole
    end = sum(len(line) + 1 for line in lines[: finding.line_end + 1])
    index = INDEX.search(sql, begin, end)
    if index is None:
        return False
    made_before = {bare(view.group(1)) for view in _VIEW.finditer(sql, 0, index.start())}
    return bare(index.group(2)) in made_before
