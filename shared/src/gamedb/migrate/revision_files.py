"""What a schema's versions directory must hold before anything loads it, checked from the files' text.

Alembic imports every `*.py` of a versions directory and builds its revision map from what they
assign; a file it can't read, an id it can't use or a graph it can't follow ends in a Python error
naming Alembic's or pathlib's insides (KeyError, TypeError, UnicodeDecodeError), or worse, is
accepted: a revision revising itself reads as "at head", a second file with an applied id silently
replaces the first, another schema's branch label breaks plain Alembic for everyone. Every command
that reads a schema's revisions (gamedb.migrate.config.make_config, gamedb.fleet.order.revision_index)
runs `check_versions_dir` first, which names the file and line of the first such mistake.

Only literal assignments are checked (`revision = "abc"`); a computed one is left to Alembic.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from gamedb.discovery import SchemaInfo, discover_schemas
from gamedb.errors import InvalidRevisionFile

_ASSIGNMENT = re.compile(
    r"^(revision|down_revision|branch_labels)\s*(?::[^=\n]+)?=\s*(.+?)\s*$",
    re.MULTILINE,
)
_UNREAD = object()  # a value that is not a plain literal: Alembic's to judge


@dataclass(frozen=True)
class RevisionFile:
    """One revision file's literal `revision`, `down_revision` and `branch_labels`, with their lines."""

    path: Path
    values: dict[str, object] = field(default_factory=dict)
    lines: dict[str, int] = field(default_factory=dict)

    def where(self, key: str) -> str:
        line = self.lines.get(key)
        return f"{self.path}, line {line}" if line else str(self.path)

    @property
    def revision(self) -> str | None:
        value = self.values.get("revision", _UNREAD)
        return value if isinstance(value, str) else None

    @property
    def down_revisions(self) -> tuple[str, ...] | None:
        """The ids it revises; None when unread or not ids."""
        value = self.values.get("down_revision", _UNREAD)
        if value is None:
            return ()
        if isinstance(value, str):
            return (value,)
        if isinstance(value, tuple | list) and all(isinstance(v, str) for v in value):
            return tuple(value)
        return None


def read_revision_files(versions_dir: Path) -> list[RevisionFile]:
    """Every `*.py` of the directory (not recursive, like Alembic's default), by name; refuses an entry
    that is not a readable UTF-8 file."""
    files = []
    for path in sorted(versions_dir.glob("*.py")):
        if path.is_symlink() and not path.exists():
            raise InvalidRevisionFile(
                f"{path}: a symbolic link to nothing, named like a revision file: remove it or restore its target"
            )
        if not path.is_file():
            raise InvalidRevisionFile(f"{path}: not a file, yet named like a revision file (*.py): rename or remove it")
        data = path.read_bytes()
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            line = data[: exc.start].count(b"\n") + 1
            raise InvalidRevisionFile(
                f"{path}, line {line}: not UTF-8 (byte 0x{data[exc.start]:02x}); Python reads revision files as "
                "UTF-8: save it as UTF-8"
            ) from None
        found = RevisionFile(path)
        for match in _ASSIGNMENT.finditer(text):
            key, value = match.group(1), match.group(2)
            try:
                found.values[key] = ast.literal_eval(value)
            except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
                found.values[key] = _UNREAD
            found.lines[key] = text.count("\n", 0, match.start()) + 1
        files.append(found)
    return files


def check_versions_dir(info: SchemaInfo, schemas: dict[str, SchemaInfo]) -> None:
    """Refuse, naming file and line, what no command can run safely: an unreadable entry, a revision
    id that is not a string or is declared twice, a revision revising itself or a revision of
    another schema, and a branch label other than the schema's own on its base revision."""
    if not info.versions_dir.is_dir():
        return
    files = read_revision_files(info.versions_dir)
    declared: dict[str, RevisionFile] = {}
    for file in files:
        value = file.values.get("revision", _UNREAD)
        if value is _UNREAD:
            continue
        if not isinstance(value, str) or not value:
            raise InvalidRevisionFile(
                f"{file.where('revision')}: schema {info.name!r}: revision = {value!r}; a revision needs a string id "
                "(the one its file name starts with)"
            )
        if value in declared:
            first = declared[value]
            raise InvalidRevisionFile(
                f"{file.where('revision')}: schema {info.name!r}: revision {value!r} is also declared by "
                f"{first.where('revision')}; every revision id must be unique: remove the copy or give it a new id"
            )
        declared[value] = file
    others: dict[str, tuple[str, RevisionFile]] | None = None
    for file in files:
        revision, downs = file.revision, file.down_revisions
        if revision is None or downs is None:
            continue
        where = file.where("down_revision")
        if revision in downs:
            raise InvalidRevisionFile(
                f"{where}: schema {info.name!r}: revision {revision!r} revises itself (down_revision = {revision!r}); "
                "name the revision before it, or None for the schema's first"
            )
        for down in downs:
            if down in declared:
                continue
            if others is None:  # every installed schema, whichever few the command was handed
                others = _other_schemas_revisions(info, {**discover_schemas(), **schemas}.values())
            if down in others:
                schema, other = others[down]
                raise InvalidRevisionFile(
                    f"{where}: schema {info.name!r}: down_revision {down!r} is a revision of schema {schema!r} "
                    f"({other.path}); a schema's revisions revise only its own (order schemas with depends_on)"
                )
        _check_branch_labels(info, file, downs)


def _check_branch_labels(info: SchemaInfo, file: RevisionFile, downs: tuple[str, ...]) -> None:
    value = file.values.get("branch_labels", _UNREAD)
    if value is _UNREAD or value is None:
        return
    labels = (value,) if isinstance(value, str) else value
    if not isinstance(labels, tuple | list | set | frozenset):
        return
    allowed = (info.name,) if not downs else ()
    wrong = [label for label in labels if label not in allowed]
    if not wrong:
        return
    where = file.where("branch_labels")
    if downs:
        raise InvalidRevisionFile(
            f"{where}: schema {info.name!r}: revision {file.revision!r} carries branch label(s) "
            f"{', '.join(map(repr, wrong))}; only the schema's first revision carries one, its own name "
            f"({info.name!r}): set branch_labels = None"
        )
    raise InvalidRevisionFile(
        f"{where}: schema {info.name!r}: revision {file.revision!r} carries branch label(s) "
        f"{', '.join(map(repr, wrong))}; a schema's first revision carries its own name only: "
        f"branch_labels = ({info.name!r},)"
    )


def _other_schemas_revisions(info: SchemaInfo, schemas: Iterable[SchemaInfo]) -> dict[str, tuple[str, RevisionFile]]:
    """Revision id -> (schema, file) over every other schema, read only when an id is missing here."""
    found: dict[str, tuple[str, RevisionFile]] = {}
    for other in schemas:
        if other.name == info.name or not other.versions_dir.is_dir():
            continue
        try:
            files = read_revision_files(other.versions_dir)
        except InvalidRevisionFile:
            continue  # that schema's own commands report it
        for file in files:
            if file.revision is not None:
                found.setdefault(file.revision, (other.name, file))
    return found
