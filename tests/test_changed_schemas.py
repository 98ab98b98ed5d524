"""`gamedb schemas --changed-since REF`: the schemas a change touches, for the CI matrix."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
from test_ci_workflow import run_matrix_step

from conftest import REPO, run_cli
from gamedb.scaffold.files import register_in_place, write_service


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True, check=True).stdout.strip()


@pytest.fixture
def scratch_repo(tmp_path):
    """A monorepo in git with services chat and league (the installed auth and inventory live elsewhere)."""
    repo = tmp_path / "repo"
    for name in ("chat", "league"):
        register_in_place(write_service(repo / "services", name))
        (repo / "services" / name / "README.md").write_text(f"# {name}\n")
    shutil.copy(REPO / "alembic.ini", repo / "alembic.ini")
    (repo / "shared").mkdir()
    (repo / "shared" / "gamedb.py").write_text("")
    (repo / "README.md").write_text("")
    git(repo, "init", "-q", "-b", "main")
    git(repo, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "--allow-empty", "-m", "empty")
    git(repo, "add", "-A")
    git(repo, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", "base")
    return repo


def commit(repo: Path, path: str, text: str) -> str:
    (repo / path).write_text(text)
    git(repo, "add", "-A")
    git(repo, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", f"change {path}")
    return git(repo, "rev-parse", "HEAD")


def changed_since(repo: Path, ref: str) -> list[str]:
    paths = [repo / "services" / name / "src" for name in ("chat", "league")]
    result = run_cli(["schemas", "--changed-since", ref, "--json"], url=None, python_path=paths, cwd=repo)
    assert result.code == 0, result.output
    return [row["name"] for row in json.loads(result.stdout)]


def test_a_change_in_one_service_lists_that_schema_and_a_change_in_shared_lists_all(scratch_repo):
    base = git(scratch_repo, "rev-parse", "HEAD")
    one_service = commit(scratch_repo, "services/chat/README.md", "chat, edited\n")
    docs = commit(scratch_repo, "README.md", "the repo's readme\n")

    assert changed_since(scratch_repo, base) == ["chat"]
    assert changed_since(scratch_repo, one_service) == []

    commit(scratch_repo, "shared/gamedb.py", "# the library\n")

    assert changed_since(scratch_repo, docs) == ["auth", "chat", "inventory", "league"]
    assert changed_since(scratch_repo, base) == ["auth", "chat", "inventory", "league"]


def test_uncommitted_changes_count_and_a_pull_requests_base_is_its_merge_base(scratch_repo):
    base = git(scratch_repo, "rev-parse", "HEAD")
    git(scratch_repo, "checkout", "-q", "-b", "feature")
    commit(scratch_repo, "services/league/README.md", "league, edited\n")
    git(scratch_repo, "checkout", "-q", "main")
    main_moved = commit(scratch_repo, "services/chat/README.md", "chat, edited on main\n")
    git(scratch_repo, "checkout", "-q", "feature")

    assert changed_since(scratch_repo, main_moved) == ["league"]  # main's own change is not the branch's
    (scratch_repo / "services" / "chat" / "README.md").write_text("edited, not committed\n")
    assert changed_since(scratch_repo, base) == ["chat", "league"]


def test_a_file_git_does_not_track_yet_counts_and_an_ignored_one_does_not(scratch_repo):
    base = git(scratch_repo, "rev-parse", "HEAD")
    commit(scratch_repo, ".gitignore", "*.log\n")
    (scratch_repo / "services" / "chat" / "debug.log").write_text("ignored\n")
    assert changed_since(scratch_repo, base) == []

    (scratch_repo / "services" / "league" / "src" / "game_league" / "versions" / "league1_new.py").write_text("")

    assert changed_since(scratch_repo, base) == ["league"]


@pytest.mark.parametrize("path", ["alembic.ini", "pyproject.toml", "noxfile.py", ".github/ci.yml", "migrations/env.py"])
def test_a_change_to_what_every_schema_shares_lists_all(scratch_repo, path):
    base = git(scratch_repo, "rev-parse", "HEAD")
    (scratch_repo / path).parent.mkdir(exist_ok=True)
    commit(scratch_repo, path, "# changed\n")

    assert changed_since(scratch_repo, base) == ["auth", "chat", "inventory", "league"]


def test_an_unknown_ref_is_one_line(scratch_repo):
    result = run_cli(["schemas", "--changed-since", "nope", "--json"], url=None, cwd=scratch_repo)

    assert result.code == 1
    assert result.stderr.strip() == (
        "gamedb: error: --changed-since nope: git knows no such commit here (fetch it, or the full history)"
    )


def test_the_workflows_matrix_step_runs_the_changed_schemas_or_all_without_a_base(scratch_repo, tmp_path):
    paths = [scratch_repo / "services" / name / "src" for name in ("chat", "league")]
    base = git(scratch_repo, "rev-parse", "HEAD")
    commit(scratch_repo, "services/league/README.md", "league, edited\n")

    assert run_matrix_step(tmp_path, paths, cwd=scratch_repo, base=base) == ["league"]
    everything = ["auth", "chat", "inventory", "league"]
    assert run_matrix_step(tmp_path, paths, cwd=scratch_repo, base="0" * 40) == everything  # a new branch
    assert run_matrix_step(tmp_path, paths, cwd=scratch_repo, base="") == everything  # dispatch, schedule
