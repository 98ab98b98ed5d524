"""Alembic `Config` objects narrowed to one schema.

Alembic reads `version_locations` before env.py runs, so narrowing must happen here: a scoped
command loads only its schema's versions directory, which makes `head` that schema's head and
puts a new revision file in that service's directory.
"""

from __future__ import annotations

import os
import re
import warnings
from argparse import Namespace
from collections.abc import Iterable
from typing import Any

from alembic.config import Config
from alembic.script import ScriptDirectory
from alembic.script.revision import RevisionError
from alembic.util import CommandError

from gamedb.discovery import SchemaInfo
from gamedb.errors import CommandFailed, InvalidOption
from gamedb.migrate.revision_files import check_versions_dir
from gamedb.migrate.run_options import KEY, RunOptions
from gamedb.project import Project


def make_config(
    project: Project,
    schemas: dict[str, SchemaInfo],
    schema: SchemaInfo | None,
    *,
    cmd_opts: Namespace | None = None,
    url: Any = None,
    **config_kwargs: Any,
) -> Config:
    """A Config on the project's alembic.ini that loads `schema`'s revisions only (all if None), after
    checking their files (gamedb.migrate.revision_files)."""
    for info in [schema] if schema is not None else schemas.values():
        check_versions_dir(info, schemas)
    config = Config(str(project.ini_path), cmd_opts=cmd_opts, **config_kwargs)
    dirs: Iterable[SchemaInfo] = [schema] if schema is not None else schemas.values()
    config.set_main_option("path_separator", "os")
    config.set_main_option("version_locations", os.pathsep.join(str(s.versions_dir).replace("%", "%%") for s in dirs))
    config.attributes[KEY] = RunOptions(schemas=schemas, schema=schema, url=url)
    return config


def script_directory(config: Config) -> ScriptDirectory:
    """The revision files the config points at."""
    return ScriptDirectory.from_config(config)


# Targets only Alembic itself can resolve, against the database's current version: relative steps
# (-1, auth@+2, ae10+1) and offline ranges (start:end).
_NEEDS_DATABASE = re.compile(r"(^|@|\w)[+-]\d+$|:")
# Nothing lies above a head (Alembic fails with an AssertionError on `upgrade head+1`)
_BEYOND_HEAD = re.compile(r"(^|@)heads?\+\d+$")
# The shape of a revision id: what fits alembic_version.version_num and makes a plain file name
REVISION_ID = re.compile(r"[0-9A-Za-z_]{1,32}")


def check_revision_target(script: ScriptDirectory, schema: SchemaInfo, target: str | None) -> None:
    """Refuse a revision the schema's files do not have, before any connection is opened."""
    check_revision_graph(script, schema)
    if target and _BEYOND_HEAD.search(target):
        raise CommandFailed(f"schema {schema.name!r}: {target!r} points past the head; nothing lies beyond it")
    if not target or _NEEDS_DATABASE.search(target):
        return
    try:
        script.get_revisions(target)
    except (CommandError, RevisionError) as exc:
        raise CommandFailed(f"schema {schema.name!r}: {exc}") from None


def check_revision_graph(script: ScriptDirectory, schema: SchemaInfo) -> None:
    """Refuse a versions directory where a revision revises one no file has (a deleted revision file):
    Alembic would warn, then fail with a bare KeyError."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Alembic's "Revision X referenced from ... is not present"
        try:
            script.get_heads()
        except KeyError as exc:
            raise CommandFailed(
                f"schema {schema.name!r}: revision {exc.args[0]} has no file in {schema.versions_dir}, yet another "
                "revision revises it; restore it"
            ) from None


def check_revision_options(schema: SchemaInfo | None, options: dict[str, Any]) -> None:
    """Refuse `revision`/`merge` options that would write a file outside the schema's versions
    directory or give its revisions a second branch label (which breaks `heads` for everyone)."""
    rev_id = options.get("rev_id")
    if rev_id is not None and not REVISION_ID.fullmatch(rev_id):
        raise InvalidOption(f"--rev-id {rev_id!r}: a revision id is 1 to 32 letters, digits or underscores")
    if schema is None:
        return
    label = options.get("branch_label")
    if label is not None and label != schema.name:
        raise InvalidOption(
            f"--branch-label {label!r}: revisions of schema {schema.name!r} carry branch label {schema.name!r} only"
        )
    version_path = options.get("version_path")
    if version_path is not None and os.path.realpath(version_path) != os.path.realpath(schema.versions_dir):
        raise InvalidOption(f"--version-path: the revisions of schema {schema.name!r} live in {schema.versions_dir}")
