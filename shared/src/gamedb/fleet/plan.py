"""`gamedb upgrade-all --sql`: the SQL of a whole upgrade from an empty database, for a DBA to read or run."""

from __future__ import annotations

from collections.abc import Collection
from pathlib import Path
from typing import TextIO

from alembic import command

from gamedb.discovery import SchemaInfo
from gamedb.fleet.order import upgrade_order
from gamedb.migrate.config import make_config
from gamedb.migrate.run_options import set_run_options
from gamedb.migrate.session import check_session_settings
from gamedb.project import Project


def write_upgrade_plan(
    project: Project,
    schemas: dict[str, SchemaInfo],
    output: TextIO,
    only: Collection[str] | None = None,
    server: str | None = None,
) -> None:
    """The SQL of upgrade-all from an empty database: every schema in order, each with its prelude.

    `only`: the schemas of one server (placement), still in depends_on order; `server` names it in
    the header. A schema that depends on one on another server needs that server's plan run first.
    """
    check_session_settings()  # before the first line of the plan is written
    ordered = [info for info in upgrade_order(schemas) if only is None or info.name in only]
    where = f" on server {server}" if server else ""
    output.write(
        f"-- gamedb upgrade-all{where}: every schema from base to head, in depends_on order:\n"
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


def write_upgrade_plans(
    project: Project, schemas: dict[str, SchemaInfo], directory: Path
) -> list[tuple[Path, list[str]]]:
    """`upgrade-all --sql-dir`: one plan a server, DIRECTORY/<server>.sql (by placement, servers by name);
    returns each file with the schemas in it."""
    from gamedb.server.placement import servers_of

    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for server, names in sorted(servers_of(project, schemas, known=schemas).items()):
        path = directory / f"{server}.sql"
        with path.open("w", encoding="utf-8") as output:
            write_upgrade_plan(project, schemas, output, only=names, server=server)
        written.append((path, names))
    return written
