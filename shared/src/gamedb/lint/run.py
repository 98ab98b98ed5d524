"""One `gamedb lint` run: revisions chosen (all, or after `--since`), markers read and checked,
squawk over one SQL file per revision, markers and the baseline applied, or the baseline written."""

from __future__ import annotations

import tempfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypedDict

from gamedb.discovery import SchemaInfo
from gamedb.errors import InvalidLintMarker, InvalidOption
from gamedb.lint.baseline import BASELINE_NAME, Key, read_baseline, write_baseline
from gamedb.lint.findings import Finding, flagged_statement
from gamedb.lint.imports import import_findings
from gamedb.lint.markers import Marker, read_markers
from gamedb.lint.new_views import on_a_view_made_here
from gamedb.lint.refresh import RULES as GAMEDB_RULES
from gamedb.lint.refresh import refresh_findings, unique_indexed_views
from gamedb.lint.scripts import RevisionFile, resolve_since, revision_sql, revisions_after, schema_revisions
from gamedb.lint.squawk import run_squawk, unknown_rule
from gamedb.project import Project


@dataclass(frozen=True)
class LintOptions:
    """What the command line asked for."""

    selected: list[SchemaInfo]  # every schema, or the one of -x schema=NAME
    since: list[str] = field(default_factory=list)  # revision ids (or unique prefixes), at most one per schema
    exclude: str | None = None  # squawk's --exclude, replacing .squawk.toml's excluded_rules
    write_baseline_to: Path | None = None  # --baseline [FILE]
    baseline_file: Path | None = None  # --baseline-file FILE: read this instead of the default
    use_baseline: bool = True  # --no-baseline: report every finding


@dataclass(frozen=True)
class LintReport:
    """What a run found, and what it did not report and why."""

    findings: list[Finding]  # the reported ones: new since the baseline, not silenced by a marker
    schemas: int
    revisions: int
    silenced: int  # by lint-ignore markers
    suppressed: int  # by the baseline
    stale: int  # baseline entries no linted revision has any more
    baseline: str | None  # the baseline read or written, as shown to the user
    written: bool = False


class RunCounts(TypedDict):
    """What every LintReport of one run says alike, whichever way the baseline is used."""

    schemas: int
    revisions: int
    silenced: int


def lint_project(project: Project, schemas: dict[str, SchemaInfo], options: LintOptions) -> LintReport:
    """Lint the chosen revisions; raise a GamedbError (one line) on a bad marker, REV or baseline."""
    if options.write_baseline_to is not None and options.since:
        raise InvalidOption("--baseline records every revision's findings: drop --since")
    revisions = {info.name: schema_revisions(project, schemas, info) for info in options.selected}
    if options.since:
        starts = resolve_since(options.since, revisions)
        revisions = {name: revisions_after(revisions[name], rev) for name, rev in starts.items()}
    linted = [r for rs in revisions.values() for r in rs]
    refused = import_findings(
        [(r.schema, r.revision, r.path, shown_path(project, r.path), schemas[r.schema].versions_dir) for r in linted]
    )
    markers = checked_markers(project, linted)
    findings = squawk_findings(project, schemas, linted, options.exclude)
    silencing = {(m.revision.schema, m.revision.revision, m.rule) for m in markers}
    kept = [f for f in findings if f.key not in silencing]
    silenced = len(findings) - len(kept)
    common: RunCounts = {"schemas": len(revisions), "revisions": len(linted), "silenced": silenced}

    if options.write_baseline_to is not None:
        path = options.write_baseline_to
        shown = shown_path(project, path)
        counts: Counter[Key] = Counter(f.key for f in kept)
        if path.exists() and len(options.selected) < len(schemas):  # -x schema=NAME: keep the other schemas' entries
            chosen = {info.name for info in options.selected}
            old = read_baseline(path, shown)
            counts.update({key: n for key, n in old.items() if key[0] not in chosen})
        write_baseline(path, shown, counts)
        return LintReport(refused + kept, suppressed=0, stale=0, baseline=shown, written=True, **common)

    path = options.baseline_file or project.root / BASELINE_NAME
    if not options.use_baseline or (options.baseline_file is None and not path.exists()):
        return LintReport(refused + kept, suppressed=0, stale=0, baseline=None, **common)
    shown = shown_path(project, path)
    accepted = read_baseline(path, shown)
    new, suppressed = beyond_baseline(kept, accepted)
    linted_keys = {(r.schema, r.revision) for r in linted}
    found_keys = {f.key for f in kept}
    stale = sum(1 for key in accepted if key[:2] in linted_keys and key not in found_keys)
    return LintReport(refused + new, suppressed=suppressed, stale=stale, baseline=shown, **common)


def beyond_baseline(findings: list[Finding], accepted: Counter[Key]) -> tuple[list[Finding], int]:
    """The findings the baseline does not cover (past its count for their key), and how many it covered."""
    left = Counter(accepted)
    new = []
    for finding in findings:
        if left[finding.key] > 0:
            left[finding.key] -= 1
        else:
            new.append(finding)
    return new, len(findings) - len(new)


def checked_markers(project: Project, revisions: list[RevisionFile]) -> list[Marker]:
    """Every lint-ignore marker of these revisions, each naming a rule squawk knows."""
    markers = [m for r in revisions for m in read_markers(r, shown_path(project, r.path))]
    unknown = unknown_rule({m.rule for m in markers} - GAMEDB_RULES)
    if unknown is not None:
        marker = next(m for m in markers if m.rule == unknown)
        where = marker.where(shown_path(project, marker.revision.path))
        raise InvalidLintMarker(f"{where}: lint-ignore {unknown}: squawk has no rule of that name")
    return markers


def squawk_findings(
    project: Project, schemas: dict[str, SchemaInfo], revisions: list[RevisionFile], exclude: str | None
) -> list[Finding]:
    """squawk over one file per revision, findings in revision order, then SQL order."""
    rendered = [
        (revision, revision_sql(project, schemas, schemas[revision.schema], revision)) for revision in revisions
    ]
    return script_findings(project, schemas, rendered, exclude)


def script_findings(
    project: Project, schemas: dict[str, SchemaInfo], rendered: list[tuple[RevisionFile, str]], exclude: str | None
) -> list[Finding]:
    """squawk over SQL already rendered, one script per revision (`gamedb plan` renders its own)."""
    config = project.squawk_config if project.squawk_config.is_file() else None
    with tempfile.TemporaryDirectory(prefix="gamedb-lint-") as tmp:
        scripts: dict[str, tuple[RevisionFile, str]] = {}
        for revision, sql in rendered:
            name = f"{revision.schema}.{revision.revision}.sql"
            (Path(tmp) / name).write_text(sql)
            scripts[name] = (revision, sql)
        found = run_squawk(Path(tmp), list(scripts), config, exclude)
    found = [f for f in found if not on_a_view_made_here(f, scripts[f.file][1])]
    for info in {schemas[r.schema].name: schemas[r.schema] for r, _ in rendered}.values():
        own = {name: sql for name, (r, sql) in scripts.items() if r.schema == info.name}
        unique_indexed = unique_indexed_views(info, own.values())
        for name, sql in own.items():
            found += refresh_findings(name, sql, unique_indexed)
    order = {name: i for i, name in enumerate(scripts)}
    found.sort(key=lambda f: (order.get(f.file, len(order)), f.line, f.column, f.rule))
    findings = []
    for squawked in found:
        revision, sql = scripts[squawked.file]
        findings.append(
            Finding(
                schema=revision.schema,
                revision=revision.revision,
                file=shown_path(project, revision.path),
                rule=squawked.rule,
                message=squawked.message,
                help=squawked.help,
                sql_line=squawked.line + 1,
                statement=flagged_statement(sql, squawked),
            )
        )
    return findings


def shown_path(project: Project, path: Path) -> str:
    """A path as the user reads it: relative to the project root when inside it."""
    resolved = path.resolve()
    return str(resolved.relative_to(project.root)) if resolved.is_relative_to(project.root) else str(path)
