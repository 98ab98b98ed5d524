"""alembic.ini stays in step with the services' entry points, so plain `alembic` sees every service."""

from __future__ import annotations

from pathlib import Path

from alembic.config import Config

from conftest import REPO
from gamedb.discovery import discover_schemas


def test_version_locations_in_alembic_ini_equal_what_discovery_finds():
    config = Config(str(REPO / "alembic.ini"))

    listed = {Path(p).resolve() for p in config.get_version_locations_list()}

    assert listed == {info.versions_dir for info in discover_schemas().values()}


def test_alembic_ini_sets_no_database_url():
    config = Config(str(REPO / "alembic.ini"))

    assert config.get_main_option("sqlalchemy.url") is None


def test_env_py_exposes_the_seeds_schema_version_tables(gamedb):
    source = (REPO / "migrations" / "env.py").read_text()
    assert "SCHEMA_VERSION_TABLES" in source

    from gamedb.migrate.environment import schema_version_tables

    assert schema_version_tables() == {
        "auth": "alembic_version_auth",
        "inventory": "alembic_version_inventory",
    }
