"""The noxfile: which sessions `nox` alone runs."""

from __future__ import annotations

import json
import subprocess
import sys

from conftest import REPO


def selected_sessions(*args: str) -> list[str]:
    listed = subprocess.run(
        [sys.executable, "-m", "nox", "-l", "--json", *args], cwd=REPO, capture_output=True, text=True, check=True
    )
    return sorted(s["session"] for s in json.loads(listed.stdout))


def test_nox_alone_runs_lint_and_tests_only():
    assert selected_sessions() == ["lint", "tests"]


def test_demo_bench_floor_and_per_schema_sessions_run_when_named():
    assert selected_sessions("-s", "demo", "bench", "tests_floor", "check(schema='auth')") == [
        "bench",
        "check(schema='auth')",
        "demo",
        "tests_floor",
    ]
