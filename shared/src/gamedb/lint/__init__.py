"""`gamedb lint`: squawk over the SQL each revision would run (the documented way to lint Alembic
migrations is their offline `--sql` output), adoptable gradually: `# gamedb: lint-ignore RULE --
REASON` markers per revision, a baseline of accepted findings, `--since REV` for new revisions only.

Modules: `scripts` (each revision's SQL), `squawk` (running it), `markers`, `baseline`, `findings`
(what a finding names), `run` (one run), `report` (how it is printed)."""

from __future__ import annotations

from gamedb.lint.baseline import BASELINE_NAME
from gamedb.lint.report import report_json, report_text
from gamedb.lint.run import LintOptions, LintReport, lint_project

__all__ = ["BASELINE_NAME", "LintOptions", "LintReport", "lint_project", "report_json", "report_text"]
