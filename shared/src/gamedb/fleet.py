"""Whole-database operations: the order schemas are upgraded in, status, upgrade-all."""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field
from typing import Any, TextIO

from alembic import command
from alembic.util import CommandError
from sqlalchemy import URL, text
from sqlalchemy.exc import DBAPIError

from gamedb.alembic_config import make_config, script_directory
from gamedb.database import connect, db_error_line, migration_engine
from gamedb.discovery import SchemaInfo
from gamedb.errors import DiscoveryError
from gamedb.names import VERSION_TABLE_SCHEMA, quote_ident
from gamedb.project import Project
from gamedb.runtime import ATTR_LOGGING_DONE

log = logging.getLogger("gamedb.fleet")


def upgrade_order(schemas: dict[str, SchemaInfo]) -> list[SchemaInfo]:
    """Schemas so that each comes after everything in its depends_on; by name among equals."""
    remaining = {name: set(info.depends_on) for name, info in schemas.items()}
    ordered: list[SchemaInfo] = []
    while remaining:
        ready = sorted(name for name, deps in remaining.items() if not deps)
        if not ready:
            cycle = ", ".join(sorted(remaining))
            raise DiscoveryError(f"depends_on forms a cycle among schemas: {cycle}")
        for name in ready:
            ordered.append(schemas[name])
            del remaining[name]
        for deps in remaining.values():
            deps.difference_update(ready)
    return ordered


def current_versions(url: URL, schemas: list[SchemaInfo]) -> dict[str, list[str]]:
    """Each schema's rows in its version table ([] when the table does not exist yet)."""
    engine = migration_engine(url)
    try:
        with connect(engine) as conn:
            present = set(
                conn.execute(
                    text(
                        "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
                        " WHERE n.nspname = :schema AND c.relkind IN ('r', 'p')"
                    ),
                    {"schema": VERSION_TABLE_SCHEMA},
                ).scalars()
            )
            result: dict[str, list[str]] = {}
            for info in schemas:
                if info.version_table not in present:
                    result[info.name] = []
                    continue
                table = f"{quote_ident(VERSION_TABLE_SCHEMA)}.{quote_ident(info.version_table)}"
                rows = conn.execute(text(f"SELECT version_num FROM {table} ORDER BY 1"))
                result[info.name] = list(rows.scalars())
            return result
    finally:
        engine.dispose()


@dataclass
class SchemaStatus:
    """One schema's line in `gamedb status`."""

    schema: str
    version_table: str
    current: list[str]
    heads: list[str]

    @property
    def state(self) -> str:
        if sorted(self.current) == sorted(self.heads):
            return "at head"
        if not self.current:
            return "empty"
        return "pending"

    def as_json(self) -> dict[str, Any]:
        return {**asdict(self), "version_table": f"{VERSION_TABLE_SCHEMA}.{self.version_table}", "state": self.state}


def heads_of(project: Project, schemas: dict[str, SchemaInfo], info: SchemaInfo) -> list[str]:
    """The head revision(s) of one schema's versions directory."""
    return sorted(script_directory(make_config(project, schemas, info)).get_heads())


def schema_status(project: Project, schemas: dict[str, SchemaInfo], url: URL) -> list[SchemaStatus]:
    """Current revision and head of every schema, in upgrade order."""
    ordered = upgrade_order(schemas)
    current = current_versions(url, ordered)
    return [
        SchemaStatus(info.name, info.version_table, current[info.name], heads_of(project, schemas, info))
        for info in ordered
    ]


@dataclass
class UpgradeReport:
    """What `upgrade-all` did: upgraded (schema, from, to), the failure if any, what it never tried."""

    upgraded: list[tuple[str, str, str]] = field(default_factory=list)
    failed: tuple[str, str, str] | None = None  # schema, version it stayed at, error line
    not_attempted: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.failed is None


def upgrade_all(
    project: Project,
    schemas: dict[str, SchemaInfo],
    url: URL | None,
    *,
    sql: bool = False,
    output: TextIO | None = None,
) -> UpgradeReport:
    """Bring every schema to its head in dependency order; stop at the first failure."""
    ordered = upgrade_order(schemas)
    report = UpgradeReport()
    before = {} if sql else current_versions(url, ordered)
    for index, info in enumerate(ordered):
        config = make_config(project, schemas, info, url=url, output_buffer=output)
        config.attributes[ATTR_LOGGING_DONE] = True
        try:
            command.upgrade(config, "head", sql=sql)
        except (CommandError, DBAPIError) as exc:
            after = [] if sql else current_versions(url, [info])[info.name]
            reason = db_error_line(exc) if isinstance(exc, DBAPIError) else str(exc)
            report.failed = (info.name, _fmt(after), reason)
            report.not_attempted = [s.name for s in ordered[index + 1 :]]
            return report
        if not sql:
            after = current_versions(url, [info])[info.name]
            if after != before[info.name]:
                report.upgraded.append((info.name, _fmt(before[info.name]), _fmt(after)))
    return report


def _fmt(versions: list[str]) -> str:
    return ",".join(versions) if versions else "base"
