"""The tests' fork server (tests/cli_forkserver.py) is only worth having if a forked `gamedb` can't be
told apart from a new interpreter: same exit code, same stdout, same stderr, for help, usage errors
and one-line errors, with stdin given or not."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest
from cli_forkserver import ForkServer

from conftest import FORK_SERVER, REPO, cli_env

CASES = [
    (["--version"], None),
    (["--help"], None),
    (["status", "--no-such-flag"], None),
    (["-x", "schema=Bad-Name", "upgrade", "head"], None),
    (["-x", "schema=auth", "current"], "ignored\n"),
    (["status"], None),
]


@pytest.fixture(scope="module")
def server():
    """The run's fork server, or, when the run is without one (GAMEDB_TEST_FORK=0), one for this module."""
    if FORK_SERVER is not None:
        yield FORK_SERVER
        return
    own = ForkServer()
    yield own
    own.stop()


def real_process(args: list[str], url: str, stdin: str | None, module: str = "gamedb") -> tuple[int, str, str]:
    done = subprocess.run(
        [sys.executable, "-m", module, *args],
        cwd=REPO,
        env=cli_env(url),
        capture_output=True,
        text=True,
        input=stdin,
        timeout=120,
    )
    return done.returncode, done.stdout, done.stderr


@pytest.mark.parametrize(("args", "stdin"), CASES, ids=lambda value: " ".join(value) if isinstance(value, list) else "")
def test_a_forked_gamedb_answers_as_a_new_interpreter_does(server, args, stdin):
    url = "postgresql+psycopg://nobody:pw@127.0.0.1:1/game"
    forked = server.run("gamedb", args, cwd=REPO, env=cli_env(url), stdin=stdin, timeout=120)
    assert forked == real_process(args, url, stdin)


def test_a_forked_alembic_answers_as_a_new_interpreter_does(server):
    url = "postgresql+psycopg://nobody:pw@127.0.0.1:1/game"
    forked = server.run("alembic", ["--help"], cwd=REPO, env=cli_env(url), stdin=None, timeout=120)
    assert forked == real_process(["--help"], url, None, module="alembic")
    assert forked[0] == 0 and "usage: alembic" in forked[1]


OWNER = """
import sys, time
sys.path.insert(0, sys.argv[1])
from pathlib import Path
from cli_forkserver import ForkServer

server = ForkServer()
server.run("gamedb", ["--version"], cwd=Path(sys.argv[2]), env={}, stdin=None, timeout=60)
print(server._process.pid, flush=True)
time.sleep(600)
"""


def test_a_fork_server_whose_test_process_is_killed_exits_too():
    owner = subprocess.Popen(
        [sys.executable, "-c", OWNER, str(REPO / "tests"), str(REPO)],
        cwd=REPO,
        env=cli_env(""),
        stdout=subprocess.PIPE,
        text=True,
    )
    assert owner.stdout is not None
    server_pid = int(owner.stdout.readline())
    assert process_alive(server_pid)

    owner.kill()  # no atexit handler runs: the server is not stopped by its client
    owner.wait()

    deadline = time.monotonic() + 30
    while process_alive(server_pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not process_alive(server_pid)


def process_alive(pid: int) -> bool:
    """Whether `pid` runs (a zombie has ended: its parent is gone, so init reaps it soon)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False
