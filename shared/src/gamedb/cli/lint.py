"""`gamedb lint`: squawk over each schema's migration SQL."""

from __future__ import annotations

import argparse
from argparse import Namespace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gamedb.cli.arguments import schema_from_x

if TYPE_CHECKING:
    from gamedb.discovery import SchemaInfo
    from gamedb.project import Project


def add_commands(sub: Any) -> None:
    """lint on gamedb's subparsers."""
    lint = sub.add_parser("lint", help="squawk over each schema's migration SQL (-x schema=NAME for one).")
    add_lint_arguments(lint)
    lint.set_defaults(gamedb_cmd=cmd_lint)


def add_lint_arguments(lint: argparse.ArgumentParser) -> None:
    """lint's options: what to lint, which rules, the baseline."""
    lint.add_argument(
        "--exclude", help="squawk rules to skip, comma-separated (instead of .squawk.toml's excluded_rules)"
    )
    lint.add_argument(
        "--since",
        action="append",
        default=[],
        metavar="REV",
        help="lint only the revisions after REV in REV's schema (repeat for more schemas; the others are left out)",
    )
    written = lint.add_mutually_exclusive_group()
    written.add_argument(
        "--baseline",
        nargs="?",
        const="",
        metavar="FILE",
        help="write the current findings as accepted (default: .gamedb-lint-baseline.json at the repo root)",
    )
    written.add_argument("--baseline-file", metavar="FILE", help="read this baseline instead of the default one")
    written.add_argument("--no-baseline", action="store_true", help="report every finding, baselined or not")
    lint.add_argument("--json", action="store_true", help="one JSON object: findings and counts")


def cmd_lint(options: Namespace, project: Project, schemas: dict[str, SchemaInfo]) -> int:
    """Lint every schema's revisions (or -x schema=NAME's); exit 1 on a finding the baseline does not accept."""
    from gamedb.discovery import get_schema
    from gamedb.lint import BASELINE_NAME, LintOptions, lint_project, report_json, report_text

    name = schema_from_x(options.x)
    write_to = None if options.baseline is None else Path(options.baseline or project.root / BASELINE_NAME)
    report = lint_project(
        project,
        schemas,
        LintOptions(
            selected=[get_schema(name, schemas)] if name else list(schemas.values()),
            since=options.since,
            exclude=options.exclude,
            write_baseline_to=write_to,
            baseline_file=Path(options.baseline_file) if options.baseline_file else None,
            use_baseline=not options.no_baseline,
        ),
    )
    print(report_json(report) if options.json else "\n".join(report_text(report)))
    return 1 if report.findings and not report.written else 0
