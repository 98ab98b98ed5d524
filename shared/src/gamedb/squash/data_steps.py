"""The data steps of revision files: what a squash must carry or be told to leave out.

Read from each file's syntax tree, in `upgrade()` only: `op.execute` of a literal INSERT / UPDATE /
DELETE / MERGE / COPY / TRUNCATE is plain SQL (carried); `op.bulk_insert`, `op.get_bind()` and
`op.execute` of anything that is not a literal string are code whose effect can't be read (the squash
refuses them unless told `--drop-data-steps`).
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from pathlib import Path

_DATA_SQL = re.compile(r"\A(?:\s*--[^\n]*\n|\s+)*(INSERT|UPDATE|DELETE|MERGE|COPY|TRUNCATE)\b", re.IGNORECASE)


@dataclass(frozen=True)
class DataStep:
    """One data step: where it is and whether it is plain SQL."""

    revision: str
    file: Path
    line: int
    what: str  # e.g. "op.execute: UPDATE league.users SET ..." or "op.bulk_insert"
    plain: bool

    def __str__(self) -> str:
        return f"{self.file.name}:{self.line} (revision {self.revision}): {self.what}"


def _literal(node: ast.expr) -> str | None:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    # sa.text("...") / text("...") of a literal
    if isinstance(node, ast.Call) and node.args and getattr(node.func, "attr", getattr(node.func, "id", "")) == "text":
        return _literal(node.args[0])
    return None


def _is_op_call(node: ast.Call, name: str) -> bool:
    func = node.func
    return isinstance(func, ast.Attribute) and func.attr == name and getattr(func.value, "id", None) == "op"


def find_data_steps(revision: str, path: Path) -> list[DataStep]:
    """The data steps in `upgrade()` of one revision file."""
    source = path.read_text(encoding="utf-8")
    if "\nsquashed_revisions" in source:  # an earlier squash: its rows are in the dump like any others
        return []
    tree = ast.parse(source, filename=str(path))
    upgrade = next((n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "upgrade"), None)
    if upgrade is None:
        return []
    steps = []
    for node in ast.walk(upgrade):
        if not isinstance(node, ast.Call):
            continue
        if _is_op_call(node, "bulk_insert"):
            steps.append(DataStep(revision, path, node.lineno, "op.bulk_insert", plain=False))
        elif _is_op_call(node, "get_bind"):
            steps.append(DataStep(revision, path, node.lineno, "op.get_bind() code", plain=False))
        elif _is_op_call(node, "execute") and node.args:
            text = _literal(node.args[0])
            if text is None:
                steps.append(DataStep(revision, path, node.lineno, "op.execute of an expression", plain=False))
            elif _DATA_SQL.match(text):
                shown = " ".join(text.split())
                shown = shown if len(shown) <= 60 else shown[:57] + "..."
                steps.append(DataStep(revision, path, node.lineno, f"op.execute: {shown}", plain=True))
    return sorted(steps, key=lambda s: s.line)
