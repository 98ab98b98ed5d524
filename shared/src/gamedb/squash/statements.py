"""SQL text split into statements, and made safe for `op.execute` (which wraps a string in `text()`)."""

from __future__ import annotations

import re

_DOLLAR_TAG = re.compile(r"\$([A-Za-z_][A-Za-z0-9_]*)?\$")
# SQLAlchemy's text() reads `:name` as a bind parameter; `\:name` is a literal colon
_BIND_LIKE = re.compile(r"(?<![:\w\\]):(\w+)(?!:)")


def split_statements(script: str) -> list[str]:
    """The statements of `script` (without their `;`), aware of quotes, dollar quotes and comments;
    comment-only pieces are dropped."""
    statements: list[str] = []
    start = i = 0
    n = len(script)
    while i < n:
        c = script[i]
        if c == "-" and script.startswith("--", i):
            end = script.find("\n", i)
            i = n if end < 0 else end + 1
        elif c == "/" and script.startswith("/*", i):
            depth, i = 1, i + 2
            while i < n and depth:
                if script.startswith("/*", i):
                    depth, i = depth + 1, i + 2
                elif script.startswith("*/", i):
                    depth, i = depth - 1, i + 2
                else:
                    i += 1
        elif c in "'\"":
            backslashes = c == "'" and i > 0 and script[i - 1] in "eE" and not script[i - 2 : i - 1].isalnum()
            i += 1
            while i < n:
                if backslashes and script[i] == "\\":
                    i += 2
                    continue
                if script[i] == c:
                    if script.startswith(c * 2, i):
                        i += 2
                        continue
                    break
                i += 1
            i += 1
        elif c == "$" and (m := _DOLLAR_TAG.match(script, i)) and not script[i - 1 : i].isalnum():
            end = script.find(m.group(0), m.end())
            i = n if end < 0 else end + len(m.group(0))
        elif c == ";":
            statements.append(script[start:i])
            i += 1
            start = i
        else:
            i += 1
    statements.append(script[start:])
    return [s.strip() for s in statements if _has_code(s)]


def _has_code(piece: str) -> bool:
    stripped = re.sub(r"--[^\n]*", "", piece)
    return bool(stripped.strip())


def escape_for_text(statement: str) -> str:
    """`statement` as `op.execute` must be given it so that no `:word` is taken for a bind parameter."""
    return _BIND_LIKE.sub(r"\\:\1", statement)
