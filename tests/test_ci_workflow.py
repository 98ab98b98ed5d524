"""The CI workflow: a matrix job per schema, fed by discovery."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import yaml

from conftest import REPO
from gamedb.discovery import discover_schemas

WORKFLOW = REPO / ".github" / "workflows" / "ci.yml"


def load_workflow() -> dict:
    return yaml.safe_load(WORKFLOW.read_text())


def test_the_workflow_has_the_list_job_a_job_per_schema_and_the_full_run():
    jobs = load_workflow()["jobs"]

    assert set(jobs) == {"schemas", "schema", "review", "all"}
    assert jobs["schema"]["needs"] == "schemas"
    assert jobs["schema"]["strategy"]["matrix"]["schema"] == "${{ fromJSON(needs.schemas.outputs.schemas) }}"
    per_schema = " ".join(step.get("run", "") for step in jobs["schema"]["steps"])
    assert "check(schema='${{ matrix.schema }}')" in per_schema
    full = " ".join(step.get("run", "") for step in jobs["all"]["steps"])
    assert "nox -s lint tests" in full and "upgrade-all" in full and "status --check" in full


def run_matrix_step(
    tmp_path: Path, python_path: list[Path] = (), cwd: Path = REPO, base: str | None = None
) -> list[str]:
    """The `list` step's run script as the runner would run it; `base` stands for the step's BASE
    (the pull request's base or the push's previous commit; absent on dispatch and schedule)."""
    (step,) = [s for s in load_workflow()["jobs"]["schemas"]["steps"] if s.get("id") == "list"]
    output = tmp_path / "github_output"
    output.unlink(missing_ok=True)  # the runner appends to it
    env = {k: v for k, v in os.environ.items() if k not in {"PYTHONPATH", "BASE"}}
    env.update(GITHUB_OUTPUT=str(output), PATH=f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}")
    if python_path:
        env["PYTHONPATH"] = os.pathsep.join(map(str, python_path))
    if base is not None:
        env["BASE"] = base
    subprocess.run(["bash", "-eo", "pipefail", "-c", step["run"]], cwd=cwd, env=env, check=True)
    key, _, value = output.read_text().strip().partition("=")
    assert key == "schemas"
    return json.loads(value)


def test_the_matrix_steps_output_equals_discovery(tmp_path):
    assert run_matrix_step(tmp_path) == sorted(discover_schemas())


def test_a_new_service_joins_the_matrix_without_a_workflow_edit(tmp_path, scratch_service):
    chat = scratch_service("chat")

    assert run_matrix_step(tmp_path, [chat.src_dir]) == ["auth", "chat", "inventory"]


def test_push_and_pull_request_get_the_changed_schemas_dispatch_and_schedule_every_one():
    on = load_workflow()[True]  # YAML 1.1 reads the key `on` as True
    (step,) = [s for s in load_workflow()["jobs"]["schemas"]["steps"] if s.get("id") == "list"]

    assert {"push", "pull_request", "workflow_dispatch", "schedule"} <= set(on)
    assert step["env"]["BASE"] == "${{ github.event.pull_request.base.sha || github.event.before }}"
    assert "--changed-since" in step["run"]


REVIEW_CHAT = [
    ("chat1", [], []),
    ("chat2", ["CREATE TABLE chat.t (id bigint PRIMARY KEY, x text)"], ["DROP TABLE chat.t"]),
    ("chat3", ["CREATE INDEX ix_t_x ON chat.t (x)"], ["DROP INDEX chat.ix_t_x"]),
]


def test_pull_requests_get_a_review_job_that_writes_to_the_job_summary():
    job = load_workflow()["jobs"]["review"]
    (summary,) = [s for s in job["steps"] if s.get("id") == "summary"]

    assert job["if"].startswith("github.event_name == 'pull_request'")
    assert job["needs"] == "schemas"
    assert summary["env"]["SCHEMAS"] == "${{ needs.schemas.outputs.schemas }}"
    assert '>> "$GITHUB_STEP_SUMMARY"' in summary["run"]
    base = " ".join(s.get("run", "") for s in job["steps"])
    assert 'git worktree add --detach "$RUNNER_TEMP/base" "$BASE"' in base and "upgrade-all" in base


def test_the_summary_step_writes_the_plan_lint_findings_and_drift_of_the_changed_schemas(tmp_path, database, fleet):
    extra = fleet({"chat": REVIEW_CHAT})
    from conftest import run_cli

    assert run_cli(["-x", "schema=chat", "upgrade", "chat2"], url=database.url, python_path=extra).code == 0
    (step,) = [s for s in load_workflow()["jobs"]["review"]["steps"] if s.get("id") == "summary"]
    summary = tmp_path / "summary.md"
    env = {k: v for k, v in os.environ.items() if k not in {"PYTHONPATH", "GAMEDB_URL"}}
    env.update(
        GITHUB_STEP_SUMMARY=str(summary),
        SCHEMAS='["chat"]',
        GAMEDB_URL=database.url,
        PYTHONPATH=os.pathsep.join(map(str, extra)),
        PATH=f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}",
    )

    done = subprocess.run(
        ["bash", "-eo", "pipefail", "-c", step["run"]], cwd=REPO, env=env, capture_output=True, text=True
    )

    assert done.returncode == 0, done.stderr
    text = summary.read_text()
    assert "### chat (server `default`): `chat2` -> `chat3`" in text  # a schema per heading, from the live revision
    assert "```sql\nCREATE INDEX ix_t_x ON chat.t (x);\n```" in text
    assert "- **require-concurrent-index-creation**" in text  # findings as lists
    assert "### Drift (models vs database)\n\n#### chat\n\n- table chat.t is in the database, not in the models" in text
    assert "auth" not in text and "inventory" not in text  # only the changed schemas
    assert database.version_rows("chat") == ["chat3"]
