"""The command line starts fast: help and a gamedb command's argument errors load no Alembic, SQLAlchemy
or psycopg (measured in `nox -s bench`; here, which modules a process really imported)."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest

from conftest import REPO
from gamedb.cli import ALEMBIC_COMMANDS, GAMEDB_COMMANDS

pytestmark = pytest.mark.unit

PROBE = """
import json, sys
from gamedb.cli import run
try:
    code = run(sys.argv[1:])
except SystemExit as exit:
    code = exit.code
heavy = ("alembic", "sqlalchemy", "psycopg")
print(json.dumps({"code": code, "loaded": sorted(m for m in heavy if m in sys.modules)}))
"""


def loaded_by(*args: str) -> dict:
    done = subprocess.run([sys.executable, "-c", PROBE, *args], cwd=REPO, capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize(
    ("args", "code"),
    [(["--help"], 0), ([], 2), (["status", "--bogus"], 2), (["roles"], 2), (["upgrade-all", "--jobs", "x"], 2)],
)
def test_help_and_argument_errors_load_no_alembic_sqlalchemy_or_psycopg(args, code):
    assert loaded_by(*args) == {"code": code, "loaded": []}


def test_an_alembic_command_still_gets_alembics_own_parser():
    probe = loaded_by("upgrade")  # missing revision: Alembic's parser says so
    assert probe["code"] == 2 and "alembic" in probe["loaded"]


def test_the_alembic_commands_named_in_help_are_alembics_own():
    from alembic.config import CommandLine

    parser = CommandLine(prog="gamedb").parser
    (subparsers,) = [a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction"]
    assert tuple(sorted(subparsers.choices)) == ALEMBIC_COMMANDS
    assert not set(GAMEDB_COMMANDS) & set(ALEMBIC_COMMANDS)


def help_text(*args: str) -> str:
    proc = subprocess.run(
        [sys.executable, "-c", "import sys; from gamedb.cli import main; main(sys.argv[1:])", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def test_version_names_gamedb_and_its_version():
    from importlib.metadata import version

    assert help_text("--version").startswith(f"gamedb {version('gamedb')} (alembic {version('alembic')})")


ROLES_ACTIONS = [["roles", action] for action in ("apply", "sql", "check", "login")]


@pytest.mark.parametrize("command", [[c] for c in (*ALEMBIC_COMMANDS, *GAMEDB_COMMANDS)] + ROLES_ACTIONS)
def test_every_commands_help_says_what_it_does_and_whether_it_needs_x(command):
    text = help_text(*command, "--help")
    description = text.split("\n\n")[1]  # argparse: usage, blank line, description
    assert not description.lstrip().startswith(("positional arguments", "options")), text
    if command[0] != "roles" or len(command) == 1:
        assert "-x" in description, text
    if command[0] in {"upgrade", "downgrade", "stamp", "current", "check", "repair-checksums"}:
        assert "Needs -x schema=NAME" in " ".join(description.split()), text


def readme_demo() -> list[str]:
    """The README's `nox -s demo` transcript, line by line."""
    text = (REPO / "README.md").read_text()
    block = text.split("$ nox -s demo\n", 1)[1].split("```", 1)[0]
    return block.rstrip("\n").splitlines()


def bare_progress(line: str) -> str:
    """`progress [1/2] auth: at head (0.5s)` -> `auth: at head`: a line without counter and time."""
    return re.sub(r"^progress \[\d+/\d+\] | \(\d+(\.\d+)?s\)$", "", line)


def test_the_readmes_demo_transcript_is_a_first_runs_output(tmp_path):
    """The demo's three commands on a fresh embedded server, as `nox -s demo` runs them."""
    import os
    import shutil

    project = tmp_path / "repo"
    project.mkdir()
    for name in ("alembic.ini", "pyproject.toml"):
        shutil.copy(REPO / name, project / name)
    shutil.copytree(REPO / "migrations", project / "migrations")
    env = {k: v for k, v in os.environ.items() if not k.startswith("GAMEDB_URL")}
    transcript = ["nox > Running session demo"]
    progress: list[str] = []
    try:
        for command in (["upgrade-all"], ["status"], ["server", "url"]):
            transcript.append(f"nox > /path/to/repo/.nox/workspace/bin/gamedb {' '.join(command)}")
            done = subprocess.run(
                [sys.executable, "-m", "gamedb", *command], cwd=project, env=env, capture_output=True, text=True
            )
            assert done.returncode == 0, done.stdout + done.stderr
            transcript += done.stdout.replace(str(project), "/path/to/repo").splitlines()
            progress += [bare_progress(line) for line in done.stderr.splitlines()]
    finally:
        subprocess.run([sys.executable, "-m", "gamedb", "server", "stop"], cwd=project, env=env, capture_output=True)
    readme = [line for line in readme_demo() if not line.startswith("nox > ...")]
    # progress lines (stderr) come in whichever order the schemas start and finish: compared as a set,
    # without their counters and timings
    assert sorted(bare_progress(line) for line in readme if line.startswith("progress ")) == sorted(progress)
    readme = [line for line in readme if not line.startswith("progress ")]
    assert readme[:-1] == transcript
    assert readme[-1].startswith("nox > Session demo was successful in ")
