"""gamedb's own lint rule, for what squawk does not check: `REFRESH MATERIALIZED VIEW` without
CONCURRENTLY on a materialized view that has a unique index.

A plain refresh takes an ACCESS EXCLUSIVE lock: every reader of the view waits until it finishes.
With a unique index, CONCURRENTLY refreshes while readers go on. The view has one when the models
declare it (`MaterializedView(..., unique_key=...)`) or a linted revision creates one on it.
Statements inside function bodies count: they run whenever the function is called.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from gamedb.discovery import SchemaInfo
from gamedb.lint.squawk import SquawkFinding
from gamedb.objects import MaterializedView, declared_objects

RULE = "gamedb-refresh-without-concurrently"
RULES = frozenset({RULE})

NAME = r'(?:"[^"]+"|[A-Za-z_][\w$]*)'
_REFRESH = re.compile(rf"\bREFRESH\s+MATERIALIZED\s+VIEW\s+(?!CONCURRENTLY\b)((?:{NAME}\.)?{NAME})", re.IGNORECASE)
# CREATE [UNIQUE] INDEX ... ON <relation>: group 1 is UNIQUE when it is, group 2 the relation
INDEX = re.compile(
    rf"\bCREATE\s+(UNIQUE\s+)?INDEX\s+(?:CONCURRENTLY\s+)?(?:IF\s+NOT\s+EXISTS\s+)?(?:{NAME}\s+)?ON\s+(?:ONLY\s+)?"
    rf"((?:{NAME}\.)?{NAME})",
    re.IGNORECASE,
)


def bare(name: str) -> str:
    """A relation's name as the catalog has it, without its schema (unquoted, or folded to lower case)."""
    last = name.rsplit(".", 1)[-1]
    return last[1:-1] if last.startswith('"') else last.lower()


def unique_indexed_views(schema: SchemaInfo, scripts: Iterable[str]) -> set[str]:
    """Names of the schema's materialized views with a unique index (declared, or created in `scripts`)."""
    names = {o.name for o in declared_objects(schema.metadata) if isinstance(o, MaterializedView) and o.unique_key}
    for sql in scripts:
        names.update(bare(m.group(2)) for m in INDEX.finditer(sql) if m.group(1))
    return names


def refresh_findings(file: str, sql: str, unique_indexed: set[str]) -> list[SquawkFinding]:
    """A finding, shaped like squawk's, for each plain refresh of a view in `unique_indexed`."""
    found = []
    for match in _REFRESH.finditer(sql):
        view = bare(match.group(1))
        if view not in unique_indexed:
            continue
        line = sql.count("\n", 0, match.start())
        column = match.start() - (sql.rfind("\n", 0, match.start()) + 1)
        found.append(
            SquawkFinding(
                file=file,
                rule=RULE,
                message=f"REFRESH MATERIALIZED VIEW without CONCURRENTLY blocks every reader of {view} until it ends",
                help=f"{view} has a unique index: use REFRESH MATERIALIZED VIEW CONCURRENTLY",
                line=line,
                column=column,
                line_end=line,
                column_end=column + len(match.group(0)),
            )
        )
    return found
