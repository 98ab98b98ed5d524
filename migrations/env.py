"""Alembic's env.py for every service schema; the logic lives in gamedb.migrate.environment.

Each run works on one schema (`-x schema=NAME`) and records its revisions in that schema's own
version table, alembic.alembic_version_<schema>.
"""

from alembic import context

from gamedb.migrate.environment import run_env, schema_version_tables

# The seed's mapping, computed from the services' gamedb.schemas entry points; never edited by hand.
SCHEMA_VERSION_TABLES: dict[str, str] = schema_version_tables(context.config)

run_env(context)
