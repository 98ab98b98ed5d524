"""Public projects' ORMs, brought in as test services (tests/material/<project>: license header kept, app
imports stripped, tables faithful), go through the path a service team takes with models nobody here
wrote: autogenerate, upgrade as generated, check clean, an evolution seen as drift and applied,
check-all and status --check clean, gamedb's harness (stairway included), downgrade base clean.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from test_real_models import edit, ok, revision_file

from conftest import REPO, run_cli
from gamedb.scaffold.files import ServiceLayout, register_in_place
from gamedb.testing import SCHEMA_CATALOG

MATERIAL = Path(__file__).parent / "material"

OUTSIDE = """
SELECT 'type ' || t.oid::regtype::text FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
WHERE n.nspname IN ('public', 'alembic', 'extensions') AND t.typtype IN ('e', 'd', 'c') AND t.typrelid = 0
UNION ALL SELECT 'relation ' || c.oid::regclass::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname IN ('public', 'extensions')
ORDER BY 1
"""


@dataclass(frozen=True)
class Project:
    """One project's models and the change its team makes next."""

    name: str
    tables: int
    evolve: tuple[tuple[str, str], ...]  # (old, new) edits of models.py
    drift: list[str]  # what check says about them, sorted


PROJECTS = {
    "redash": Project(
        "redash",
        12,
        (
            (
                '    details = Column(JSONB, nullable=True, server_default="{}", default={})\n',
                '    details = Column(JSONB, nullable=True, server_default="{}", default={})\n'
                "    profile_image_url = Column(db.Text, nullable=True)\n",
            ),
            (
                '    state = Column(db.String(255), default="unknown")\n',
                '    state = Column(db.String(255), default="unknown", index=True)\n',
            ),
        ),
        [
            "redash: column redash.users.profile_image_url is in the models, not in the database",
            "redash: index ix_redash_alerts_state on redash.alerts is in the models, not in the database",
        ],
    ),
    "dispatch": Project(
        "dispatch",
        4,
        (
            (
                "    genai_suggestions = Column(Boolean, default=False)\n",
                "    genai_suggestions = Column(Boolean, default=False)\n"
                '    exclusive_on_case = Column(Boolean, default=False, server_default="f")\n',
            ),
            (
                '    display_name = Column(String, nullable=False, server_default="")\n',
                "    display_name = Column(String)\n",
            ),
        ),
        [
            "dispatch: column dispatch.project.display_name: default ''::character varying in the database, "
            "none in the models",
            "dispatch: column dispatch.project.display_name: nullable False in the database, True in the models",
            "dispatch: column dispatch.tag_type.exclusive_on_case is in the models, not in the database",
        ],
    ),
    "ctfd": Project(
        "ctfd",
        15,
        (
            (
                "class Brackets(db.Model):",
                'class Comments(db.Model):\n    __tablename__ = "comments"\n'
                "    id = db.Column(db.Integer, primary_key=True)\n"
                '    type = db.Column(db.String(80), default="standard")\n'
                "    content = db.Column(db.Text)\n"
                "    date = db.Column(db.DateTime, default=datetime.datetime.utcnow)\n"
                '    author_id = db.Column(db.Integer, db.ForeignKey("ctfd.users.id", ondelete="CASCADE"))\n\n\n'
                "class Brackets(db.Model):",
            ),
        ),
        ["ctfd: table ctfd.comments is in the models, not in the database"],
    ),
    "prefect": Project(
        "prefect",
        14,
        (
            (
                "    concurrency_limit: Mapped[int | None]\n\n    status: Mapped[WorkPoolStatus]",
                "    concurrency_limit: Mapped[int | None]\n"
                '    storage_ttl: Mapped[dict[str, Any] | None] = mapped_column(JSON, server_default="{}")\n\n'
                "    status: Mapped[WorkPoolStatus]",
            ),
            (
                '    PAUSED = "PAUSED"\n\n\nclass WorkPoolStatus',
                '    PAUSED = "PAUSED"\n    DRAINING = "DRAINING"\n\n\nclass WorkPoolStatus',
            ),
        ),
        [
            "prefect: column prefect.work_pool.storage_ttl is in the models, not in the database",
            "prefect: enum type prefect.work_queue_status: values DRAINING is in the models, not in the database",
        ],
    ),
}


@pytest.fixture(params=sorted(PROJECTS))
def project(request) -> Project:
    return PROJECTS[request.param]


@pytest.fixture
def service(tmp_path: Path, project: Project) -> ServiceLayout:
    """A copy of the project's material, discoverable, with an empty versions directory."""
    layout = ServiceLayout(project.name, tmp_path / "services" / project.name)
    shutil.copytree(MATERIAL / project.name, layout.root)
    layout.versions_dir.mkdir()
    register_in_place(layout)
    return layout


def test_a_public_projects_models_round_trip_as_generated(project, service, database, tmp_path):
    name = project.name

    def cli(*args: str):
        return run_cli(list(args), url=database.url, python_path=[service.src_dir])

    def check():
        return cli("-x", f"schema={name}", "check")

    outside_before = database.query(OUTSIDE)
    ok(cli("revision", "-x", f"schema={name}", "-m", f"init {name}"))
    ok(cli("-x", f"schema={name}", "upgrade", "head"))
    ok(cli("revision", "-x", f"schema={name}", "--autogenerate", "-m", "tables"))
    ok(cli("-x", f"schema={name}", "upgrade", "head"))
    assert len(database.tables(name)) == project.tables
    assert ok(check()).stdout == f"{name}: models match the database\n"

    edit(service.models_file, *project.evolve)
    drift = check()
    assert drift.code == 1, drift.output
    assert sorted(line for line in drift.stderr.splitlines() if line.startswith(f"{name}: ")) == project.drift
    assert cli("status", "--check").code == 1
    ok(cli("revision", "-x", f"schema={name}", "--autogenerate", "-m", "evolve"))
    assert revision_file(service, "evolve").exists()
    ok(cli("-x", f"schema={name}", "upgrade", "head"))
    assert ok(check()).stdout == f"{name}: models match the database\n"

    ok(cli("upgrade-all"))  # the installed services too: check-all and status look at every schema
    ok(cli("check-all"))
    ok(cli("status", "--check"))

    harness = run_harness(database.admin, service, tmp_path)
    assert harness.returncode == 0, harness.stdout[-3000:]
    assert "6 passed" in harness.stdout

    ok(cli("-x", f"schema={name}", "downgrade", "base"))
    assert name not in database.schemas()
    assert database.query(SCHEMA_CATALOG, {"schema": name}) == []
    assert database.query(OUTSIDE) == outside_before


def run_harness(admin: str, layout: ServiceLayout, tmp_path: Path) -> subprocess.CompletedProcess:
    """gamedb's per-schema checks (gamedb.testing) for the service, in a pytest of their own."""
    test_file = tmp_path / f"test_{layout.name}_harness.py"
    test_file.write_text(f"from gamedb.testing import schema_checks\n\nTestIt = schema_checks({layout.name!r})\n")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.update(PYTHONPATH=str(layout.src_dir), GAMEDB_TEST_URL=admin)
    return subprocess.run(
        [sys.executable, "-m", "pytest", str(test_file), "-q", "-p", "no:cacheprovider", "--rootdir", str(tmp_path)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
