"""`# gamedb: lint-ignore RULE -- REASON` comments in a revision file: each silences one squawk rule
for that revision only. A comment that starts with `gamedb:` and is not such a marker (no reason,
no rule, an unknown word) is an error, so a typo never silences nothing quietly."""

from __future__ import annotations

import io
import re
import tokenize
from dataclasses import dataclass

from gamedb.errors import InvalidLintMarker
from gamedb.lint.scripts import RevisionFile

_GAMEDB_COMMENT = re.compile(r"#\s*gamedb\s*:\s*")
_LINT_IGNORE = re.compile(r"lint-ignore(?:\s+(?P<rule>\S+))?(?:\s+--(?P<reason>.*))?\s*$")
_RULE_NAME = re.compile(r"[a-z][a-z0-9-]*")
MARKER_FORM = '"# gamedb: lint-ignore RULE -- REASON"'


@dataclass(frozen=True)
class Marker:
    """One lint-ignore comment: where it is, what it silences and why."""

    revision: RevisionFile
    line: int
    rule: str
    reason: str

    def where(self, shown_path: str) -> str:
        return f"{shown_path}:{self.line}: schema {self.revision.schema}, revision {self.revision.revision}"


def read_markers(revision: RevisionFile, shown_path: str) -> list[Marker]:
    """The file's lint-ignore markers; InvalidLintMarker (file, line, schema, revision) on a bad one."""
    where = f"schema {revision.schema}, revision {revision.revision}"
    text = revision.path.read_text(encoding="utf-8")
    try:
        comments = [
            (token.start[0], token.string)
            for token in tokenize.generate_tokens(io.StringIO(text).readline)
            if token.type == tokenize.COMMENT
        ]
    except (tokenize.TokenError, SyntaxError) as exc:
        raise InvalidLintMarker(f"{shown_path}: {where}: cannot read its comments ({exc})") from None
    markers = []
    for line, comment in comments:
        prefix = _GAMEDB_COMMENT.match(comment)
        if not prefix:
            continue
        body = comment[prefix.end() :].strip()
        parsed = _LINT_IGNORE.fullmatch(body)
        if parsed is None:
            problem = f"malformed gamedb marker {body!r}"
            raise InvalidLintMarker(f"{shown_path}:{line}: {where}: {problem} (write {MARKER_FORM})")
        rule, reason = parsed["rule"], (parsed["reason"] or "").strip()
        if not rule or rule == "--" or not _RULE_NAME.fullmatch(rule):
            raise InvalidLintMarker(f"{shown_path}:{line}: {where}: lint-ignore names no rule (write {MARKER_FORM})")
        if not reason:
            raise InvalidLintMarker(
                f"{shown_path}:{line}: {where}: lint-ignore {rule} has no reason (write {MARKER_FORM})"
            )
        markers.append(Marker(revision, line, rule, reason))
    return markers
