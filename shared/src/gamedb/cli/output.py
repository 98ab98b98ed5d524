"""What every command prints with: an aligned table, and paths shown relative to the project."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from gamedb.project import Project


def print_table(headers: list[str], rows: list[list[str]]) -> None:
    """A plain aligned table on stdout."""
    widths = [max(len(str(c)) for c in col) for col in zip(headers, *rows, strict=False)]
    for line in [headers, *rows]:
        print("  ".join(str(c).ljust(w) for c, w in zip(line, widths, strict=False)).rstrip())


def relative(path: str, project: Project) -> str:
    """`path` relative to the project root when it lies inside it, else as given."""
    try:
        return os.path.relpath(path, project.root) if path.startswith(str(project.root)) else path
    except ValueError:
        return path
