"""Where the monorepo is: the directory holding alembic.ini (and `.gamedb/` for the embedded server)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from gamedb.errors import ProjectNotFound

INI_NAME = "alembic.ini"
SQUAWK_CONFIG_NAME = ".squawk.toml"


@dataclass(frozen=True)
class Project:
    """The repo root and the files gamedb reads there."""

    root: Path

    @property
    def ini_path(self) -> Path:
        return self.root / INI_NAME

    @property
    def squawk_config(self) -> Path:
        """squawk's own config file (rule choices for `gamedb lint`); optional."""
        return self.root / SQUAWK_CONFIG_NAME

    @property
    def data_dir(self) -> Path:
        """Where the embedded PostgreSQL keeps its data (git-ignored)."""
        return self.root / ".gamedb"


def find_project(start: Path | None = None, ini: str | None = None) -> Project:
    """The project whose alembic.ini is `ini`, or the nearest one at or above `start` (default cwd)."""
    if ini is not None:
        path = Path(ini).resolve()
        if not path.is_file():
            raise ProjectNotFound(f"config file {ini} does not exist")
        return Project(path.parent)
    here = (start or Path(os.getcwd())).resolve()
    for candidate in (here, *here.parents):
        if (candidate / INI_NAME).is_file():
            return Project(candidate)
    raise ProjectNotFound(f"no {INI_NAME} in {here} or above it: run gamedb from inside the monorepo (or pass -c)")
