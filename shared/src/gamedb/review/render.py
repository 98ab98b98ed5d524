"""How a plan reads: plain text for a terminal, markdown for a pull request's job summary, JSON for scripts."""

from __future__ import annotations

import json

from gamedb.review.plan import FleetPlan, PendingRevision, SchemaPlan

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
            lines += ["", f"#### revision `{revision.revision}` ({_inline(revision.file)})"]
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
