"""Which schemas a git change touches: the CI matrix runs a schema's job only for those.

A schema is touched when a file changed in its service's folder (the distribution directory holding
its versions directory), and every schema is touched when a file changed in what all of them share:
the gamedb library, env.py, alembic.ini, the root pyproject.toml, the noxfile or the CI workflow.
"""

from __future__ import annotations

import subprocess
from pathlib import PurePosixPath

from gamedb.discovery import SchemaInfo
from gamedb.errors import CommandFailed
from gamedb.project import Project

# Paths (relative to the project root) every schema's job depends on; a folder ends with "/".
SHARED_INPUTS = ("shared/", "migrations/", "alembic.ini", "pyproject.toml", "noxfile.py", ".github/")


def changed_files(project: Project, ref: str) -> list[str]:
    """Tracked files that differ between the merge base of `ref` and HEAD and the working tree, and
    files not tracked yet (git's ignores apply), relative to the project root (both sides of a rename)."""
    if ref.startswith("-"):
        raise CommandFailed(f"--changed-since {ref}: a git revision, not an option")
    git = ["git", "-C", str(project.root)]
    known = subprocess.run([*git, "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}"], capture_output=True)
    if known.returncode != 0:
        raise CommandFailed(f"--changed-since {ref}: git knows no such commit here (fetch it, or the full history)")
    diff = subprocess.run(
        [*git, "diff", "--name-only", "--no-renames", "--relative", "--merge-base", ref],
        capture_output=True,
        text=True,
    )
    if diff.returncode != 0:
        raise CommandFailed(f"--changed-since {ref}: {diff.stderr.strip().splitlines()[-1]}")
    # files git does not track yet and does not ignore: a service just made by `new-service`, a new revision
    untracked = subprocess.run([*git, "ls-files", "--others", "--exclude-standard"], capture_output=True, text=True)
    if untracked.returncode != 0:
        raise CommandFailed(f"--changed-since {ref}: {untracked.stderr.strip().splitlines()[-1]}")
    return [line for line in (diff.stdout + untracked.stdout).splitlines() if line]


def service_folder(info: SchemaInfo, project: Project) -> PurePosixPath | None:
    """The schema's service folder relative to the project root (the nearest directory above its
    versions directory holding a pyproject.toml), or None when it lives outside the project."""
    for folder in info.versions_dir.parents:
        if (folder / "pyproject.toml").is_file():
            try:
                return PurePosixPath(folder.relative_to(project.root.resolve()).as_posix())
            except ValueError:
                return None
    return None


def touches_shared(path: str) -> bool:
    return any(path.startswith(item) if item.endswith("/") else path == item for item in SHARED_INPUTS)


def changed_schemas(project: Project, schemas: dict[str, SchemaInfo], ref: str) -> list[str]:
    """Names of the schemas a change since `ref` touches, sorted."""
    files = changed_files(project, ref)
    if any(touches_shared(f) for f in files):
        return sorted(schemas)
    touched = []
    for name, info in schemas.items():
        folder = service_folder(info, project)
        if folder is not None and any(PurePosixPath(f).is_relative_to(folder) for f in files):
            touched.append(name)
    return sorted(touched)
