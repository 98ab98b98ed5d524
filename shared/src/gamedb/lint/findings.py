"""A lint finding as gamedb reports it: schema, revision id and the revision's file, never the
temporary SQL file squawk read."""

from __future__ import annotations

from dataclasses import dataclass

from gamedb.lint.squawk import SquawkFinding

_STATEMENT_WIDTH = 80


@dataclass(frozen=True)
class Finding:
    """One squawk finding in one revision's SQL."""

    schema: str
    revision: str
    file: str  # the revision file, relative to the project root when inside it
    rule: str
    message: str
    help: str | None
    sql_line: int  # 1-based, in the revision's offline SQL
    statement: str  # the flagged SQL, on one line, shortened

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.schema, self.revision, self.rule)

    def line(self) -> str:
        """The finding on one line, for a terminal or a CI log."""
        text = self.message if self.message.endswith((".", "!", "?")) else f"{self.message}."
        if self.help:
            text += f" {self.help}"
        return f"{self.file}: schema {self.schema}, revision {self.revision}: {self.rule}: {text} SQL: {self.statement}"

    def as_json(self) -> dict[str, object]:
        return {
            "schema": self.schema,
            "revision": self.revision,
            "file": self.file,
            "rule": self.rule,
            "message": self.message,
            "help": self.help,
            "sql_line": self.sql_line,
            "statement": self.statement,
        }


def flagged_statement(sql: str, found: SquawkFinding) -> str:
    """The SQL lines squawk pointed into (whole lines: a bare `VARCHAR(64)` would not say which
    column), whitespace collapsed, at most a line wide."""
    lines = sql.splitlines()
    if not 0 <= found.line < len(lines):
        return ""
    end = min(max(found.line_end, found.line), len(lines) - 1)
    text = " ".join(" ".join(lines[found.line : end + 1]).split())
    return text if len(text) <= _STATEMENT_WIDTH else text[: _STATEMENT_WIDTH - 3] + "..."
