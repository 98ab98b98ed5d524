"""The squashed revision's file: written from the statements of the old chain, and the markers it
leaves for status, checksums and run commands (read from its text, without importing it).

Invariant: a revision file with a `squashed_revisions` line replaced exactly those revisions (oldest
first, its own id last); its `squashed_checksums` line holds the checksum each of their files had, so
a database whose checksum rows were written by the old files is recognised, not alarmed.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from pathlib import Path

from gamedb.names import create_schema_sql, drop_schema_sql
from gamedb.squash.statements import escape_for_text

_MARKER = re.compile(r"^(squashed_revisions|squashed_checksums)\s*(?::[^=]+)?=\s*(.+?)\s*$", re.MULTILINE)


@dataclass(frozen=True)
class SquashMarker:
    """One squashed revision: its id, its file, what it replaced (oldest first) and their old checksums."""

    revision: str
    path: Path
    replaced: tuple[str, ...]
    checksums: dict[str, str]


def read_marker(path: Path, revision: str) -> SquashMarker | None:
    """The squash markers of one revision file, or None for an ordinary revision."""
    text = path.read_text(encoding="utf-8")
    if "squashed_revisions" not in text:
        return None
    found = dict(_MARKER.findall(text))
    try:
        replaced = ast.literal_eval(found["squashed_revisions"])
        checksums = ast.literal_eval(found.get("squashed_checksums", "{}"))
    except (KeyError, ValueError, SyntaxError):
        return None
    return SquashMarker(revision, path, tuple(replaced), dict(checksums))


def squash_markers(versions_dir: Path) -> dict[str, SquashMarker]:
    """Every squashed revision of a versions directory, by the id it kept."""
    from gamedb.migrate.revision_index import UnreadableRevisions, read_revision_index

    try:
        index = read_revision_index(versions_dir)
    except UnreadableRevisions:
        return {}
    markers = {}
    for revision, path in index.files.items():
        marker = read_marker(path, revision)
        if marker is not None:
            markers[revision] = marker
    return markers


def squashed_into(versions_dir: Path) -> dict[str, SquashMarker]:
    """Revision id -> the squash that replaced it (the kept id itself excluded)."""
    return {
        old: marker
        for marker in squash_markers(versions_dir).values()
        for old in marker.replaced
        if old != marker.revision
    }


FILE = '''\
"""{message}

Revision ID: {revision}
Revises: (none: squashes {count} revisions, {first} through {revision})
Written by `gamedb squash`: the upgrade builds schema {schema} exactly as the revisions it replaced did
(compared catalog against catalog{data_note} on a throwaway database before this file was written).
It only runs on a database that starts from base; a database at {revision} or later never runs it.
"""

from __future__ import annotations

from alembic import op

revision: str = {revision!r}
down_revision: str | None = None
branch_labels: tuple[str, ...] | None = ({schema!r},)
depends_on: str | None = None

# what this revision replaced, oldest first, and the checksums their files had (gamedb reads these lines)
squashed_revisions: tuple[str, ...] = {replaced!r}
squashed_checksums: dict[str, str] = {checksums!r}
{dropped}
STATEMENTS: tuple[str, ...] = (
{statements}
)


def upgrade() -> None:
    op.execute({create_schema!r})
    for statement in STATEMENTS:
        op.execute(statement)


def downgrade() -> None:
    op.execute({drop_schema!r})
'''


def _literal(statement: str) -> str:
    lines = statement.split("\n")
    parts = [repr(line + "\n") for line in lines[:-1]] + [repr(lines[-1])]
    return "\n".join(f"    {part}" for part in parts) + ","


def render_squash(
    *,
    schema: str,
    revision: str,
    message: str,
    replaced: list[str],
    checksums: dict[str, str],
    statements: list[str],
    dropped_steps: list[str],
    with_data: bool,
) -> str:
    """The text of the squashed revision file."""
    dropped = ""
    if dropped_steps:
        lines = "\n".join(f"#   {step}" for step in dropped_steps)
        dropped = f"\n# data steps left out on purpose (--drop-data-steps):\n{lines}\n"
    return FILE.format(
        message=message,
        revision=revision,
        count=len(replaced),
        first=replaced[0],
        schema=schema,
        data_note=" and row against row" if with_data else "",
        replaced=tuple(replaced),
        checksums=checksums,
        dropped=dropped,
        statements="\n".join(_literal(escape_for_text(s)) for s in statements),
        create_schema=create_schema_sql(schema),
        drop_schema=drop_schema_sql(schema),
    )
