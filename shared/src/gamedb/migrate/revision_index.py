"""A schema's revision graph read from the text of its files, without executing them.

Alembic imports every revision file to build its map; at a hundred schemas that is seconds spent
only to learn that nothing is pending. The index reads the `revision` / `down_revision` lines of
each file instead (milliseconds), and anything it cannot read sends the caller back to Alembic.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass, field
from graphlib import CycleError, TopologicalSorter
from pathlib import Path

_ASSIGNMENT = re.compile(
    r"^(revision|down_revision)\s*(?::[^=]+)?=\s*(.+?)\s*$",
    re.MULTILINE,
)


class UnreadableRevisions(Exception):
    """A revision file is not in the plain form the index reads; use Alembic's ScriptDirectory."""


@dataclass(frozen=True)
class RevisionIndex:
    """Revision id -> the ids it revises (and the file it is in), for one versions directory."""

    parents: dict[str, tuple[str, ...]]
    files: dict[str, Path] = field(default_factory=dict)

    @property
    def heads(self) -> list[str]:
        revised = {p for ps in self.parents.values() for p in ps}
        return sorted(r for r in self.parents if r not in revised)

    def ancestry(self, revisions: list[str] | tuple[str, ...]) -> set[str]:
        """The given revisions and everything beneath them."""
        seen: set[str] = set()
        stack = list(revisions)
        while stack:
            rev = stack.pop()
            if rev in seen:
                continue
            if rev not in self.parents:
                raise UnreadableRevisions(f"revision {rev!r} is not in this versions directory")
            seen.add(rev)
            stack.extend(self.parents[rev])
        return seen

    def pending(self, current: list[str]) -> list[str]:
        """Revisions between `current` and the heads, oldest first (by id among equals)."""
        todo = self.ancestry(self.heads) - self.ancestry(current)
        sorter = TopologicalSorter({r: [p for p in self.parents[r] if p in todo] for r in todo})
        try:
            sorter.prepare()
        except CycleError:
            raise UnreadableRevisions("the revision graph has a cycle") from None
        order: list[str] = []
        while sorter.is_active():
            ready = sorted(sorter.get_ready())
            order += ready
            sorter.done(*ready)
        return order


def read_revision_index(versions_dir: Path) -> RevisionIndex:
    """Parse every `*.py` in `versions_dir` (not recursive, like Alembic's default)."""
    parents: dict[str, tuple[str, ...]] = {}
    files: dict[str, Path] = {}
    for path in versions_dir.glob("*.py"):
        found = dict(_ASSIGNMENT.findall(path.read_text(encoding="utf-8")))
        if "revision" not in found or "down_revision" not in found:
            raise UnreadableRevisions(f"{path}: no plain revision / down_revision assignment")
        try:
            revision = ast.literal_eval(found["revision"])
            down = ast.literal_eval(found["down_revision"])
        except (ValueError, SyntaxError):
            raise UnreadableRevisions(f"{path}: revision identifiers are not literals") from None
        if not isinstance(revision, str):
            raise UnreadableRevisions(f"{path}: revision is not a string")
        parents[revision] = () if down is None else (down,) if isinstance(down, str) else tuple(down)
        files[revision] = path
    return RevisionIndex(parents, files)
