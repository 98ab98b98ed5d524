"""Running squawk: its JSON report over one file per revision, and the check of rule names.

The rule choices are squawk's own config file, `.squawk.toml` at the project root, handed to squawk
with `--config` (squawk runs in a temporary directory, where it would not find the file itself), so
`gamedb lint` and `nox -s lint` judge the same rules. squawk's `--exclude` replaces the file's
`excluded_rules`, it does not add to them."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gamedb.errors import GamedbError, LintFailed

_INVALID_RULE = re.compile(r"invalid rule name (\S+)")


@dataclass(frozen=True)
class SquawkFinding:
    """One entry of squawk's JSON report; lines and columns are 0-based, as squawk writes them."""

    file: str
    rule: str
    message: str
    help: str | None
    line: int
    column: int
    line_end: int
    column_end: int


def squawk_binary() -> str:
    """squawk from this environment (squawk-cli), else from PATH."""
    beside = Path(sys.executable).parent / "squawk"
    found = str(beside) if beside.exists() else shutil.which("squawk")
    if not found:
        raise GamedbError("squawk is not installed: pip install squawk-cli")
    return found


def run_squawk(directory: Path, files: list[str], config: Path | None, exclude: str | None) -> list[SquawkFinding]:
    """squawk's findings over these files (names relative to `directory`)."""
    if not files:
        return []
    args = [squawk_binary(), "--reporter=json"]
    args += ["--config", str(config)] if config is not None else []
    args += [f"--exclude={exclude}"] if exclude else []
    done = subprocess.run([*args, *files], cwd=directory, capture_output=True, text=True)
    if done.returncode not in (0, 1):
        raise LintFailed(f"squawk failed: {first_line(done.stderr or done.stdout)}")
    try:
        report = json.loads(done.stdout)
        return [squawk_finding(entry) for entry in report]
    except (ValueError, KeyError, TypeError) as exc:
        raise LintFailed(f"squawk's JSON report was not understood ({exc}): {first_line(done.stdout)}") from None


def squawk_finding(entry: dict[str, Any]) -> SquawkFinding:
    """One entry of the JSON report (KeyError/TypeError if it is not one)."""
    return SquawkFinding(
        file=entry["file"],
        rule=entry["rule_name"],
        message=entry["message"],
        help=entry.get("help"),
        line=entry["line"],
        column=entry["column"],
        line_end=entry["line_end"],
        column_end=entry["column_end"],
    )


def unknown_rule(rules: set[str]) -> str | None:
    """The first of these names squawk does not know as a rule, or None (squawk's own --exclude check)."""
    if not rules:
        return None
    with tempfile.TemporaryDirectory(prefix="gamedb-lint-") as tmp:
        (Path(tmp) / "empty.sql").write_text("")
        args = [squawk_binary(), "--reporter=json", f"--exclude={','.join(sorted(rules))}", "empty.sql"]
        done = subprocess.run(args, cwd=tmp, capture_output=True, text=True)
    if done.returncode in (0, 1):
        return None
    named = _INVALID_RULE.search(done.stderr)
    if named is None:
        raise LintFailed(f"squawk failed: {first_line(done.stderr or done.stdout)}")
    return named[1]


def first_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[0] if lines else "no output"
