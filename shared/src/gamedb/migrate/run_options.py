"""The one object gamedb hands to a run of `migrations/env.py`, under one key of Alembic's `Config.attributes`.

Alembic documents `Config.attributes` for passing things from a caller to env.py; gamedb passes this
frozen dataclass there and nothing else, so every option a run reads is declared and typed here.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from alembic.config import Config
    from sqlalchemy import URL, Engine

    from gamedb.discovery import SchemaInfo

KEY = "gamedb"

Step = tuple[tuple[str, ...], tuple[str, ...]]  # (source revision ids, destination revision ids)


@dataclass(frozen=True)
class RunOptions:
    """What a gamedb-launched run of env.py works with.

    schemas: every discovered schema; schema: the one this run works on (None: a command over all).
    url / engine: the server (default: GAMEDB_URL or the embedded one); an engine is reused, not disposed.
    applied: when given, each applied step is appended to it (upgrade-all reports from it).
    logging_configured: the caller set up logging; env.py leaves alembic.ini's logging alone.
    init_revision: the init body (CREATE / DROP SCHEMA) script.py.mako writes into a first revision.
    verbose: show Alembic's INFO notes from autogenerate and the dialect.
    """

    schemas: Mapping[str, SchemaInfo]
    schema: SchemaInfo | None = None
    url: URL | str | None = None
    engine: Engine | None = None
    applied: list[Step] | None = None
    logging_configured: bool = False
    init_revision: dict[str, str] | None = None
    verbose: bool = False


def run_options(config: Config) -> RunOptions | None:
    """The options a gamedb caller handed over, or None for a plain `alembic` command."""
    return config.attributes.get(KEY)


def set_run_options(config: Config, **changes: Any) -> RunOptions:
    """Replace some options of the run `config` describes (make_config created them)."""
    current = run_options(config)
    if current is None:
        raise ValueError("this Config was not made by gamedb.migrate.config.make_config")
    updated = replace(current, **changes)
    config.attributes[KEY] = updated
    return updated
