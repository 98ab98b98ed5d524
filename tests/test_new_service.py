"""`gamedb new-service NAME`: one command, and the service is discovered, migrated, tested and in CI."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REPO, run_cli

IGNORED = shutil.ignore_patterns(".git", ".nox", ".gamedb", ".ci-venv", "__pycache__", "*.egg-info", ".pytest_cache")


@pytest.fixture
def repo_copy(tmp_path) -> Path:
    """The monorepo as committed, in a temp dir (new-service writes into services/ and alembic.ini)."""
    copy = tmp_path / "repo"
    shutil.copytree(REPO, copy, ignore=IGNORED)
    return copy


def tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("auth", "schema 'auth' already exists (distribution game-auth)"),
        ("public", "invalid schema name 'public': reserved"),
        ("a" * 41, "must match"),
        ("Chat", "must match"),
        ("select", "an SQL reserved word"),
        ("chat; drop schema public", "must match"),
    ],
)
def test_new_service_refuses_before_writing_anything(repo_copy, name, message):
    before = tree(repo_copy)

    result = run_cli(["new-service", name, "--no-install"], url=None, cwd=repo_copy)

    assert result.code == 2
    assert message in result.stderr and "Traceback" not in result.stderr
    assert tree(repo_copy) == before


def test_new_service_refuses_an_existing_folder(repo_copy):
    (repo_copy / "services" / "chat").mkdir()
    before = tree(repo_copy)

    result = run_cli(["new-service", "chat", "--no-install"], url=None, cwd=repo_copy)

    assert result.code == 2
    assert "services/chat already exists" in result.stderr
    assert tree(repo_copy) == before


def test_new_service_end_to_end_in_a_fresh_environment(repo_copy, database, tmp_path):
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "-q"]
    members = [
        "-e",
        f"{repo_copy / 'shared'}",
        "-e",
        str(repo_copy / "services" / "auth"),
        "-e",
        str(repo_copy / "services" / "inventory"),
    ]
    subprocess.run([*pip, *members], check=True, capture_output=True)
    env = {k: v for k, v in os.environ.items() if k not in {"PYTHONPATH", "GAMEDB_URL", "VIRTUAL_ENV"}}
    env.update(GAMEDB_URL=database.url, PATH=f"{venv / 'bin'}{os.pathsep}{env['PATH']}")

    def gamedb(*args):
        return subprocess.run(["gamedb", *args], cwd=repo_copy, env=env, capture_output=True, text=True)

    created = gamedb("new-service", "chat")

    assert created.returncode == 0, created.stderr
    assert "installed game-chat (editable)" in created.stdout
    assert "gamedb -x schema=chat upgrade head" in created.stdout
    assert "%(here)s/services/chat/src/game_chat/versions" in (repo_copy / "alembic.ini").read_text()
    (init,) = (repo_copy / "services/chat/src/game_chat/versions").glob("*_init_chat_schema.py")
    assert "branch_labels: str | Sequence[str] | None = ('chat',)" in init.read_text()
    assert 'gamedb_schema = "chat"' in (repo_copy / "services/chat/tests/test_chat_schema.py").read_text()

    listed = json.loads(gamedb("schemas", "--json").stdout)
    assert [row["name"] for row in listed] == ["auth", "chat", "inventory"]
    assert gamedb("-x", "schema=chat", "upgrade", "head").returncode == 0
    assert database.version_rows("chat") == [init.name.split("_")[3]]
    assert gamedb("upgrade-all").returncode == 0
    others = {s: database.version_rows(s) for s in ("auth", "inventory")}

    down = gamedb("-x", "schema=chat", "downgrade", "base")

    assert down.returncode == 0, down.stderr
    assert "chat" not in database.schemas()
    assert {s: database.version_rows(s) for s in ("auth", "inventory")} == others
    assert database.tables("auth") == {"users", "refresh_tokens"}

    sessions = subprocess.run(
        [sys.executable, "-m", "nox", "-l", "-f", str(repo_copy / "noxfile.py")], capture_output=True, text=True
    )
    assert "check(schema='chat')" in sessions.stdout and "upgrade(schema='chat')" in sessions.stdout
    service_tests = subprocess.run(  # gamedb's testing extra brings pytest and its plugin needs nothing else
        [str(venv / "bin" / "python"), "-m", "pip", "install", "-q", "-e", f"{repo_copy / 'shared'}[testing]"],
        capture_output=True,
    )
    assert service_tests.returncode == 0
    checks = subprocess.run(
        ["python", "-m", "pytest", "-q", "-p", "no:cacheprovider", "services/chat/tests"],
        cwd=repo_copy,
        env={**env, "GAMEDB_TEST_URL": database.libpq},
        capture_output=True,
        text=True,
    )
    assert checks.returncode == 0, checks.stdout[-2000:]
    assert "7 passed" in checks.stdout  # the six checks and the example data-migration test
