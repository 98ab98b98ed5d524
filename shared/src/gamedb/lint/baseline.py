"""The lint baseline: findings a team accepted when it adopted lint, so later runs report new ones only.

Keyed by schema, revision id and rule with a count, never by line numbers or paths, so an edit
elsewhere (or a renamed file) leaves it valid. One entry per line, sorted: a diff reads as the
findings that came or went. In a revision with more findings of a rule than the baseline counts,
the later ones (in the revision's SQL order) are new."""

from __future__ import annotations

import json
import os
from collections import Counter
from pathlib import Path

from gamedb.errors import InvalidLintBaseline

BASELINE_NAME = ".gamedb-lint-baseline.json"
FORMAT_KEY = "gamedb_lint_baseline"
FORMAT_VERSION = 1

Key = tuple[str, str, str]  # schema, revision, rule


def read_baseline(path: Path, shown: str) -> Counter[Key]:
    """The accepted findings in the file; InvalidLintBaseline (one line naming the file) if unusable."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise InvalidLintBaseline(f"lint baseline {shown}: cannot read it ({exc.strerror or exc})") from None
    except UnicodeDecodeError:
        raise InvalidLintBaseline(f"lint baseline {shown}: not UTF-8 text") from None
    except ValueError as exc:
        raise InvalidLintBaseline(f"lint baseline {shown}: not valid JSON ({exc})") from None
    findings = data.get("findings") if isinstance(data, dict) else None
    if not isinstance(findings, list) or data.get(FORMAT_KEY) != FORMAT_VERSION:
        raise InvalidLintBaseline(
            f'lint baseline {shown}: not a gamedb lint baseline (no "{FORMAT_KEY}": {FORMAT_VERSION}'
            ' and "findings" list); gamedb lint --baseline rewrites it'
        )
    counts: Counter[Key] = Counter()
    for number, entry in enumerate(findings, start=1):
        values = [entry.get(k) for k in ("schema", "revision", "rule")] if isinstance(entry, dict) else []
        fields = [f for f in values if isinstance(f, str) and f]
        count = entry.get("count") if isinstance(entry, dict) else None
        if len(fields) != 3:
            raise InvalidLintBaseline(f"lint baseline {shown}: finding {number} lacks schema, revision or rule")
        if not isinstance(count, int) or isinstance(count, bool) or count < 1:
            raise InvalidLintBaseline(f"lint baseline {shown}: finding {number} has no positive count")
        counts[(fields[0], fields[1], fields[2])] += count
    return counts


def render_baseline(counts: Counter[Key]) -> str:
    """The file's text: one finding per line, sorted by schema, revision, rule."""
    lines = [
        json.dumps({"schema": schema, "revision": revision, "rule": rule, "count": counts[(schema, revision, rule)]})
        for schema, revision, rule in sorted(counts)
    ]
    body = ",\n    ".join(lines)
    findings = f"[\n    {body}\n  ]" if lines else "[]"
    return f'{{\n  "{FORMAT_KEY}": {FORMAT_VERSION},\n  "findings": {findings}\n}}\n'


def write_baseline(path: Path, shown: str, counts: Counter[Key]) -> None:
    """Replace the file in one step (a reader never sees half of it)."""
    partial = path.with_name(path.name + ".partial")
    try:
        partial.write_text(render_baseline(counts), encoding="utf-8")
        os.replace(partial, path)
    except OSError as exc:
        partial.unlink(missing_ok=True)
        raise InvalidLintBaseline(f"lint baseline {shown}: cannot write it ({exc.strerror or exc})") from None
