"""`gamedb upgrade-all --sql`: the SQL of a whole upgrade from an empty database, for a DBA to read or run."""

from __future__ import annotations

from typing import TextIO

from alembic import command

from gamedb.discovery import SchemaInfo
from gamedb.fleet.order import upgrade_order
from gamedb.migrate.config import make_config
from gamedb.migrate.run_options import set_run_options
from gamedb.migrate.session import check_session_settings
from gamedb.project import Project


def write_upgrade_plan(project: Project, schemas: dict[str, SchemaInfo], output: TextIO) -> None:
    """The SQL of upgrade-all from an empty database: every schema in order, each with its prelude."""
    check_session_settings()  # before the first line of the plan is written
    ordered = upgrade_order(schemas)
    output.write(
        "-- gamedb upgrade-all: every schema from base to head, in depends_on order:\n"
        f"--   {', '.join(s.name for s in ordered)}\n"
        "-- Each schema is one transaction (BEGIN ... COMMIT), as in upgrade-all; apply with\n"
        "--   psql -v ON_ERROR_STOP=1 -f this_file.sql\n"
        "-- (psql -1 also works for small plans, but one transaction for the whole fleet can exceed\n"
        "-- the server's lock table: max_locks_per_transaction.)\n\n"
    )
    for info in ordered:
        config = make_config(project, schemas, info, output_buffer=output)
        set_run_options(config, logging_configured=True)
        command.upgrade(config, "head", sql=True)
