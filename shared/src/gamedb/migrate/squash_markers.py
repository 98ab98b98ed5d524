"""The markers a squashed revision file leaves for status, checksums and run commands, read from its
text without importing it (the file is written by gamedb.squash.revision_file).

Invariant: a revision file with a `squashed_revisions` line replaced exactly those revisions (oldest
first, its own id last); its `squashed_checksums` line holds the checksum each of their files had, so
a database whose checksum rows were written by the old files is recognised, not alarmed.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from pathlib import Path

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
