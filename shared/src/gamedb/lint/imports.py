"""A revision that imports its own service's code: refused by `gamedb lint`, whatever the baseline says.

A revision's checksum covers its file only (gamedb.migrate.checksums). Code it imports from its
service (`game_chat.helper_sql`, `from ..models import X`) keeps changing after the revision was
applied, so what the revision runs would change with nothing recorded. Hashing those modules too
would flag every applied revision that imports `models.py` each time a model changes; refusing the
import keeps a revision what it was when it ran: copy what it needs into the revision.
"""

from __future__ import annotations

import ast
from pathlib import Path

from gamedb.lint.findings import Finding

RULE = "gamedb-revision-imports-service-code"


def service_package(versions_dir: Path) -> str:
    """The import name of the package that holds a versions directory (`game_chat` for .../game_chat/versions)."""
    return versions_dir.parent.name


def service_imports(path: Path, package: str) -> list[tuple[int, str]]:
    """(line, module) of every import in the file that reaches `package` or is relative."""
    try:
        tree = ast.parse(path.read_bytes(), filename=str(path))
    except (SyntaxError, ValueError):
        return []  # the run commands name the file and line of a syntax error
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names if a.name.split(".")[0] == package]
        elif isinstance(node, ast.ImportFrom):
            module = node.module or ""
            if node.level > 0:
                found.append((node.lineno, "." * node.level + module))
            elif module.split(".")[0] == package:
                found.append((node.lineno, module))
    return sorted(found)


def import_findings(revisions: list[tuple[str, str, Path, str, Path]]) -> list[Finding]:
    """One finding per service-code import: (schema, revision, path, shown path, versions dir) each."""
    findings = []
    for schema, revision, path, shown, versions_dir in revisions:
        for line, module in service_imports(path, service_package(versions_dir)):
            findings.append(
                Finding(
                    schema=schema,
                    revision=revision,
                    file=f"{shown}:{line}",
                    rule=RULE,
                    message=f"the revision imports {module}, code of its own service",
                    help=(
                        "Its checksum covers the revision file only, and that code changes after the revision "
                        "was applied: copy what it needs into the revision. Not silenced by a baseline."
                    ),
                    sql_line=0,
                    statement=f"line {line}: import {module}",
                )
            )
    return findings
