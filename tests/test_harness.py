"""The per-schema harness catches each kind of broken service (and passes a healthy one)."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import psycopg
import pytest

from conftest import REPO

CHECKS = {
    "test_exactly_one_head",
    "test_upgrade_downgrade_base_upgrade",
    "test_models_match_the_database",
    "test_revisions_touch_only_their_own_schema",
    "test_rw_role_can_read_every_table",
    "test_stairway",
}
INIT = [("{s}1", [], [])]
TABLE = ("{s}2", ["CREATE TABLE {s}.t (id int PRIMARY KEY)"], ["DROP TABLE {s}.t"])

CASES = {
    "healthy": ([*INIT, TABLE], set()),
    "two_heads": ([*INIT, TABLE, ("{s}3", [], [])], {"test_exactly_one_head"}),
    # both checks that go down find it
    "bad_downgrade": (
        [*INIT, ("{s}2", ["CREATE TABLE {s}.t (id int PRIMARY KEY)"], ["SELECT 1/0"])],
        {"test_upgrade_downgrade_base_upgrade", "test_revisions_touch_only_their_own_schema", "test_stairway"},
    ),
    # the downgrade drops the table but forgets its enum type: only going down one step shows it
    # (downgrade base drops the whole schema with CASCADE)
    "leaves_type": (
        [
            *INIT,
            (
                "{s}2",
                ["CREATE TYPE {s}.mood AS ENUM ('calm')", "CREATE TABLE {s}.t (id int PRIMARY KEY, m {s}.mood)"],
                ["DROP TABLE {s}.t"],
            ),
        ],
        {"test_stairway"},
    ),
    # under the role model the owner may not create in public at all: the rw check's upgrade fails too
    "leaky": (
        [*INIT, ("{s}2", ["CREATE TABLE IF NOT EXISTS public.leak (id int)"], [])],
        {"test_revisions_touch_only_their_own_schema", "test_rw_role_can_read_every_table"},
    ),
    "locked_out": (
        [
            *INIT,
            (
                "{s}2",
                [
                    "CREATE TABLE {s}.t (id int PRIMARY KEY)",
                    "DO $$ BEGIN IF EXISTS (SELECT FROM pg_roles WHERE rolname = '{s}_rw') THEN "
                    "REVOKE SELECT ON {s}.t FROM {s}_rw; END IF; END $$",
                ],
                ["DROP TABLE {s}.t"],
            ),
        ],
        {"test_rw_role_can_read_every_table"},
    ),
    "drifting": ([*INIT, TABLE], {"test_models_match_the_database"}),
    # a later revision changes a view's definition, a policy and a trigger; its downgrade forgets them:
    # their definitions are part of the catalog the stairway compares
    "keeps_view_change": (
        [
            *INIT,
            (
                "{s}2",
                ["CREATE TABLE {s}.t (id int PRIMARY KEY, n int)", "CREATE VIEW {s}.v AS SELECT id FROM {s}.t"],
                ["DROP VIEW {s}.v", "DROP TABLE {s}.t"],
            ),
            ("{s}3", ["CREATE OR REPLACE VIEW {s}.v AS SELECT id, n FROM {s}.t"], []),
        ],
        {"test_stairway", "test_models_match_the_database"},
    ),
    "keeps_policy": (
        [*INIT, TABLE, ("{s}3", ["CREATE POLICY p ON {s}.t USING (id > 0)"], [])],
        {"test_stairway", "test_models_match_the_database"},
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_the_harness_fails_exactly_the_check_a_broken_service_breaks(case, fleet, scratch_service, admin_uri, tmp_path):
    revisions, expected = CASES[case]
    name = f"h_{case}"
    steps = [
        (r.format(s=name), [q.format(s=name) for q in up], [q.format(s=name) for q in down])
        for r, up, down in revisions
    ]
    if case == "two_heads":  # the third revision forks from the first instead of following the second
        steps[2] = (steps[2][0], [], [])
    extra = fleet({name: steps})
    versions = extra[0] / f"game_{name}" / "versions"
    if case == "two_heads":
        third = next(versions.glob(f"{name}3_*.py"))
        third.write_text(
            third.read_text().replace(
                f"down_revision: str | None = '{name}2'", f"down_revision: str | None = '{name}1'"
            )
        )
    if case == "leaves_type":
        models = extra[0] / f"game_{name}" / "models.py"
        models.write_text(
            models.read_text()
            + (
                "\n\nfrom sqlalchemy import Enum, Integer\nfrom sqlalchemy.orm import Mapped, mapped_column\n\n\n"
                "class T(Base):\n    __tablename__ = 't'\n"
                "    id: Mapped[int] = mapped_column(Integer, primary_key=True)\n"
                "    m: Mapped[str | None] = mapped_column(Enum('calm', name='mood'))\n"
            )
        )
    if case in {"healthy", "two_heads", "bad_downgrade", "locked_out"}:
        models = extra[0] / f"game_{name}" / "models.py"
        models.write_text(
            models.read_text()
            + (
                "\n\nfrom sqlalchemy import Integer\nfrom sqlalchemy.orm import Mapped, mapped_column\n\n\n"
                "class T(Base):\n    __tablename__ = 't'\n"
                "    id: Mapped[int] = mapped_column(Integer, primary_key=True)\n"
            )
        )
    test_file = tmp_path / f"test_{name}.py"
    test_file.write_text(f"from gamedb.testing import schema_checks\n\nTestIt = schema_checks({name!r})\n")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.update(PYTHONPATH=os.pathsep.join(map(str, extra)), GAMEDB_TEST_URL=admin_uri)

    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            str(test_file),
            "-q",
            "-rA",
            "-p",
            "no:cacheprovider",
            "--rootdir",
            str(tmp_path),
        ],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )

    failed = {test for outcome, test in re.findall(r"^(FAILED|ERROR) \S+::TestIt::(\w+)", run.stdout, re.MULTILINE)}
    passed = {test for test in re.findall(r"^PASSED \S+::TestIt::(\w+)", run.stdout, re.MULTILINE)}
    assert passed | failed == CHECKS, run.stdout[-3000:]
    assert expected <= failed, run.stdout[-3000:]
    if case != "two_heads":  # with two heads, `upgrade head` itself is ambiguous for the other checks too
        assert failed == expected, run.stdout[-3000:]


def collect(*args: str, cwd=REPO) -> subprocess.CompletedProcess:
    """`pytest --collect-only` in a fresh process: the installed plugins, the repo's tests/conftest.py."""
    return subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_the_plugin_collects_every_check_from_one_line_next_to_the_repos_conftest(tmp_path):
    (tmp_path / "test_chat_schema.py").write_text('gamedb_schema = "auth"\n')
    (tmp_path / "test_by_hand.py").write_text(
        'from gamedb.testing import schema_checks\n\nTestAuthSchema = schema_checks("auth")\n'
    )

    run = collect("tests/test_noxfile.py", str(tmp_path))  # a test module beside tests/conftest.py

    assert run.returncode == 0, run.stdout[-3000:] + run.stderr
    assert "tests/test_noxfile.py::test_nox_alone_runs_lint_and_tests_only" in run.stdout
    declared = set(re.findall(r"test_chat_schema\.py::TestAuthSchema::(\w+)", run.stdout))
    by_hand = set(re.findall(r"test_by_hand\.py::TestAuthSchema::(\w+)", run.stdout))
    assert declared == by_hand == CHECKS


def test_a_declared_schema_that_is_not_installed_is_a_one_line_collection_error(tmp_path):
    (tmp_path / "test_billing_schema.py").write_text('gamedb_schema = "billing"\n')

    run = collect(str(tmp_path), "--rootdir", str(tmp_path))

    assert run.returncode == 2
    assert "gamedb_schema = 'billing': unknown schema 'billing' (known schemas: auth, inventory)" in run.stdout, (
        run.stdout[-3000:]
    )


def test_the_plugin_can_be_switched_off(tmp_path):
    (tmp_path / "test_chat_schema.py").write_text('gamedb_schema = "auth"\n')

    run = collect("-p", "no:gamedb", str(tmp_path), "--rootdir", str(tmp_path))

    assert "TestAuthSchema" not in run.stdout
    assert run.returncode == 5  # no tests collected


def test_the_embedded_test_server_runs_without_durability_and_a_given_server_is_left_alone(admin_uri):
    """The harness's own embedded server skips fsync (it is deleted after the run); a server given by
    GAMEDB_TEST_URL belongs to someone, and the harness changes none of its settings."""
    with psycopg.connect(admin_uri, autocommit=True) as conn:
        fsync = conn.execute("SHOW fsync").fetchone()[0]
        ours = conn.execute(
            "SELECT count(*) FROM pg_file_settings WHERE name IN ('fsync', 'synchronous_commit', 'full_page_writes')"
            " AND sourcefile LIKE '%postgresql.auto.conf'"
        ).fetchone()[0]
    if os.environ.get("GAMEDB_TEST_URL"):
        assert ours == 0
    else:
        assert (fsync, ours) == ("off", 3)
