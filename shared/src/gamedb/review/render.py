"""How a plan reads: plain text for a terminal, markdown for a pull request's job summary, JSON for scripts."""

from __future__ import annotations

import json

from gamedb.review.plan import FleetPlan, PendingRevision, SchemaPlan
from gamedb.review.report import FleetReport

NOTHING_TO_DO = "nothing to do"


def summary_line(plan: FleetPlan) -> str:
    if plan.nothing_to_do:
        return f"{NOTHING_TO_DO}: {len(plan.at_head)} schema(s) at head"
    revisions = sum(len(s.revisions) for s in plan.schemas)
    return (
        f"plan: {revisions} revision(s) in {len(plan.schemas)} schema(s) to upgrade, "
        f"{len(plan.at_head)} schema(s) at head"
    )


def _lock_lines(revision: PendingRevision) -> list[str]:
    return [f"{lock.describe()}: {lock.statement}" for lock in revision.locks]


def _finding_line(revision: PendingRevision) -> list[str]:
    return [f"{f.rule}: {f.message}{' ' + f.help if f.help else ''} SQL: {f.statement}" for f in revision.findings]


def _python_note(revision: PendingRevision) -> str:
    return "runs Python through op.get_bind(): what it does with the connection is not in this SQL"


def _header(schema: SchemaPlan) -> str:
    return f"{schema.schema} (server {schema.server}): {schema.current_text} -> {schema.head_text}"


def render_text(plan: FleetPlan) -> str:
    lines = [summary_line(plan)]
    for schema in plan.schemas:
        lines += ["", _header(schema)]
        if schema.unrecorded:
            lines.append(f"  records checksums of {len(schema.unrecorded)} applied revision(s) first")
        if schema.render_error:
            lines.append(f"  can't be rendered offline: {schema.render_error}")
        for revision in schema.revisions:
            lines.append(f"  revision {revision.revision} ({revision.file})")
            if revision.runs_python:
                lines.append(f"    {_python_note(revision)}")
            if schema.render_error:
                continue
            lines.append("    SQL:")
            lines += [f"      {line}".rstrip() for line in revision.sql.splitlines()] or ["      (no statements)"]
            lines.append(f"    strongest lock: {revision.strongest_lock or 'none on an existing table'}")
            lines += [f"      {line}" for line in _lock_lines(revision)]
            findings = _finding_line(revision)
            lines.append(f"    lint: {len(findings)} finding(s)" if findings else "    lint: no findings")
            lines += [f"      {line}" for line in findings]
    if plan.suppressed:
        lines += ["", f"{plan.suppressed} lint finding(s) covered by the lint baseline not shown"]
    return "\n".join(lines)


def render_markdown(plan: FleetPlan, title: str = "gamedb plan") -> str:
    """A schema per heading, SQL in fenced blocks, locks and findings as lists."""
    lines = [f"## {title}", "", summary_line(plan)]
    if plan.at_head:
        lines += ["", f"At head: {', '.join(f'`{name}`' for name in plan.at_head)}"]
    for schema in plan.schemas:
        lines += [
            "",
            f"### {schema.schema} (server `{schema.server}`): `{schema.current_text}` -> `{schema.head_text}`",
        ]
        if schema.unrecorded:
            lines += ["", f"Records checksums of {len(schema.unrecorded)} applied revision(s) first."]
        if schema.render_error:
            lines += ["", f"**Can't be rendered offline**: {_inline(schema.render_error)}"]
        for revision in schema.revisions:
            lines += ["", f"#### revision `{revision.revision}` (`{_code(revision.file)}`)"]
            if revision.runs_python:
                lines += ["", f"**{_python_note(revision)}**"]
            if schema.render_error:
                continue
            fence = "````" if "```" in revision.sql else "```"
            lines += ["", f"{fence}sql", revision.sql or "-- no statements", fence, ""]
            lines.append(f"Strongest lock: **{revision.strongest_lock or 'none on an existing table'}**")
            lines.append("")
            lines += [f"- {_inline(lock.describe())}: `{_code(lock.statement)}`" for lock in revision.locks]
            lines += ["", "Lint findings:" if revision.findings else "Lint: no findings"]
            if revision.findings:
                lines.append("")
                for f in revision.findings:
                    text = _inline(f.message) + (" " + _inline(f.help) if f.help else "")
                    lines.append(f"- **{f.rule}**: {text} `{_code(f.statement)}`")
    if plan.suppressed:
        lines += ["", f"{plan.suppressed} lint finding(s) covered by the lint baseline are not shown."]
    return "\n".join(lines) + "\n"


def render_json(plan: FleetPlan) -> str:
    return json.dumps(plan.as_json(), indent=2)


def _inline(text: str) -> str:
    """Text safe inside a markdown line (no HTML, no accidental emphasis)."""
    return text.replace("<", "&lt;").replace(">", "&gt;").replace("*", "\\*").replace("_", "\\_")


def _code(text: str) -> str:
    return text.replace("`", "'")


def report_markdown(report: FleetReport, title: str = "gamedb report") -> str:
    """The fleet's state, lint findings and drift, a schema per heading: what a pull request's summary shows."""
    lines = [
        f"## {title}",
        "",
        "| schema | server | state | current | head | pending | checksums |",
        "|---|---|---|---|---|---|---|",
    ]
    for s in report.schemas:
        lines.append(
            f"| `{s.schema}` | {s.server} | {s.state} | `{','.join(s.current) or 'base'}` | "
            f"`{','.join(s.heads) or '-'}` | {len(s.pending)} | {s.checksum_state} |"
        )
    lines += ["", "### Lint findings"]
    linted = [s for s in report.schemas if s.lint]
    lines += ["", "No lint findings."] if not linted else []
    for s in linted:
        lines += ["", f"#### {s.schema}", ""]
        for f in s.lint:
            lines.append(
                f"- **{f.rule}** in `{f.revision}` ({_inline(f.file)}): {_inline(f.message)} `{_code(f.statement)}`"
            )
    lines += ["", "### Drift (models vs database)"]
    drifting = [s for s in report.schemas if s.drift]
    lines += ["", "No drift."] if not drifting else []
    for s in drifting:
        lines += ["", f"#### {s.schema}", ""] + [f"- {_inline(line)}" for line in s.drift or []]
    not_compared = [s.schema for s in report.schemas if s.drift is None]
    if not_compared:
        lines += ["", f"Not compared (pending revisions or a problem first): {', '.join(not_compared)}"]
    roles = [s for s in report.schemas if s.roles]
    if roles or report.global_roles:
        lines += ["", "### Roles findings"]
        for s in roles:
            lines += ["", f"#### {s.schema}", ""] + [f"- {_inline(line)}" for line in s.roles]
        lines += [""] + [f"- {_inline(line)}" for line in report.global_roles] if report.global_roles else []
    if report.notes:
        lines += ["", "### Not checked", ""] + [f"- {_inline(note)}" for note in report.notes]
    return "\n".join(lines) + "\n"


def report_text(report: FleetReport) -> str:
    """One line per schema, then the findings, for a terminal."""
    headers = ["schema", "server", "state", "current", "head", "pending", "drift", "checksums", "roles", "lint"]
    rows = [
        [
            s.schema,
            s.server,
            s.state,
            ",".join(s.current) or "base",
            ",".join(s.heads) or "-",
            str(len(s.pending)),
            "-" if s.drift is None else str(len(s.drift)),
            s.checksum_state,
            str(len(s.roles)),
            str(len(s.lint)),
        ]
        for s in report.schemas
    ]
    widths = [max(len(c) for c in col) for col in zip(headers, *rows, strict=False)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(line, widths, strict=False)).rstrip() for line in [headers, *rows]]
    for s in report.schemas:
        lines += [f"drift {s.schema}: {line}" for line in s.drift or []]
        lines += [f"roles {s.schema}: {line}" for line in s.roles]
        lines += [f"lint {s.schema}: {f.revision}: {f.rule}: {f.statement}" for f in s.lint]
    lines += [f"roles: {line}" for line in report.global_roles]
    lines += [f"not checked: {note}" for note in report.notes]
    return "\n".join(lines)


def report_json(report: FleetReport) -> str:
    return json.dumps(report.as_json(), indent=2)
