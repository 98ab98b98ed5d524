"""How a lint run is printed: a line per finding and a summary line, or one JSON object."""

from __future__ import annotations

import json

from gamedb.lint.run import LintReport


def plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def report_text(report: LintReport) -> list[str]:
    """A line per reported finding, then `gamedb lint: ...` saying what was linted, found and left out."""
    scope = f"{plural(report.revisions, 'revision')} of {plural(report.schemas, 'schema')} linted"
    if report.written:
        revisions = len({(f.schema, f.revision) for f in report.findings})
        summary = (
            f"wrote {plural(len(report.findings), 'finding')} in {plural(revisions, 'revision')}"
            f" to {report.baseline} ({scope})"
        )
        return [f"gamedb lint: {summary}", *notes(report)]
    lines = [f.line() for f in report.findings]
    if report.findings:
        revisions = len({(f.schema, f.revision) for f in report.findings})
        new = "new " if report.baseline else ""
        found = f"{plural(len(report.findings), new + 'finding')} in {plural(revisions, 'revision')}"
    else:
        found = "no new findings" if report.baseline else "no findings"
    lines.append(f"gamedb lint: {found} ({scope})")
    return lines + notes(report)


def notes(report: LintReport) -> list[str]:
    lines = []
    if report.suppressed:
        lines.append(f"gamedb lint: {plural(report.suppressed, 'baselined finding')} suppressed ({report.baseline})")
    if report.stale:
        entries = "1 baseline entry" if report.stale == 1 else f"{report.stale} baseline entries"
        lines.append(f"gamedb lint: {entries} no longer found (fixed? gamedb lint --baseline rewrites the file)")
    if report.silenced:
        lines.append(f"gamedb lint: {plural(report.silenced, 'finding')} silenced by lint-ignore markers")
    return lines


def report_json(report: LintReport) -> str:
    """The run as one JSON object: findings (schema, revision, file, rule, ...) and the counts."""
    return json.dumps(
        {
            "findings": [f.as_json() for f in report.findings],
            "schemas_linted": report.schemas,
            "revisions_linted": report.revisions,
            "silenced_by_markers": report.silenced,
            "suppressed_by_baseline": report.suppressed,
            "stale_baseline_entries": report.stale,
            "baseline": report.baseline,
            "baseline_written": report.written,
        },
        indent=2,
    )
