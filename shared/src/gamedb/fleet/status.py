"""`gamedb status`: every schema's version rows, heads, pending revisions and drift, plus what the
database holds that no service declares.

A schema already at its head costs one row read and one pass over its revision files' text.
"""

from __future__ import annotations

import json
from contextlib import nullcontext
from dataclasses import dataclass
from typing import Any

from psycopg import sql
from sqlalchemy import URL, Connection

from gamedb.autogen.drift import schema_drift
from gamedb.discovery import SchemaInfo
from gamedb.fleet.order import revision_index, upgrade_order
from gamedb.migrate.revision_index import RevisionIndex, UnreadableRevisions
from gamedb.names import EXTENSIONS_SCHEMA, VERSION_TABLE_SCHEMA
from gamedb.project import Project
from gamedb.server.connections import connect, migration_engine

SYSTEM_SCHEMAS = frozenset({"public", "information_schema", VERSION_TABLE_SCHEMA, EXTENSIONS_SCHEMA})


# What status needs besides drift, in one round trip (one simple-protocol request): a DO block reads
# each declared version table that exists (table names can't be parameters of a plain SELECT) into a
# transaction-local setting, then one SELECT returns every schema's name, every table of schema
# `alembic` and those rows.
CATALOG_SCRIPT = r"""
DO $gamedb$
DECLARE
    version_table text;
    found jsonb := '{{}}';
    rows jsonb;
BEGIN
    FOR version_table IN
        SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = {schema} AND c.relkind IN ('r', 'p') AND c.relname = ANY({declared})
    LOOP
        EXECUTE format('SELECT coalesce(jsonb_agg(version_num), ''[]'') FROM %I.%I', {schema}, version_table)
            INTO rows;
        found := found || jsonb_build_object(version_table, rows);
    END LOOP;
    PERFORM set_config('gamedb.version_rows', found::text, true);
END $gamedb$;
SELECT 'schema', nspname, NULL FROM pg_namespace WHERE nspname NOT LIKE 'pg\_%'
UNION ALL
SELECT 'table', c.relname, NULL FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = {schema} AND c.relkind IN ('r', 'p')
UNION ALL
SELECT 'versions', key, value::text FROM jsonb_each(current_setting('gamedb.version_rows')::jsonb)
"""


@dataclass(frozen=True)
class CatalogSnapshot:
    """What the database holds of the fleet, read in one round trip."""

    namespaces: set[str]
    version_tables: set[str]  # every table of schema `alembic`
    versions: dict[str, list[str]]  # schema -> rows of its version table ([] when missing or empty)


def read_catalog(connection: Connection, schemas: list[SchemaInfo]) -> CatalogSnapshot:
    """Namespaces, the tables of schema `alembic` and every declared schema's version rows, in one request."""
    by_table = {info.version_table: info.name for info in schemas}
    with connection.begin() if not connection.in_transaction() else nullcontext():
        cursor = connection.connection.cursor()
        try:
            script = sql.SQL(CATALOG_SCRIPT).format(
                schema=sql.Literal(VERSION_TABLE_SCHEMA), declared=sql.Literal(sorted(by_table))
            )
            cursor.execute(script.as_string(cursor))  # no parameters: one simple-protocol request
            cursor.nextset()  # past the DO block's empty result
            rows = cursor.fetchall()
        finally:
            cursor.close()
    versions: dict[str, list[str]] = {info.name: [] for info in schemas}
    for kind, name, found in rows:
        if kind == "versions" and name in by_table:
            versions[by_table[name]] = sorted(json.loads(found))
    return CatalogSnapshot(
        namespaces={name for kind, name, _ in rows if kind == "schema"},
        version_tables={name for kind, name, _ in rows if kind == "table"},
        versions=versions,
    )


def read_versions(connection: Connection, schemas: list[SchemaInfo]) -> dict[str, list[str]]:
    """Each schema's rows in its version table, in one round trip ([] when the table is missing)."""
    return read_catalog(connection, schemas).versions


@dataclass
class SchemaStatus:
    """One schema's line in `gamedb status`."""

    schema: str
    version_table: str
    current: list[str]
    heads: list[str]
    pending: list[str]
    drift: list[str] | None  # None: not compared (pending revisions first)
    problem: str | None = None  # version rows no run can start from (upgrade-all refuses them too)

    @property
    def state(self) -> str:
        if self.problem:
            return f"broken: {self.problem}"
        if self.pending:
            return f"{len(self.pending)} pending"
        if self.drift:
            return "drift"
        return "at head"

    @property
    def clean(self) -> bool:
        return not self.problem and not self.pending and not self.drift

    def as_json(self) -> dict[str, Any]:
        return {
            "schema": self.schema,
            "version_table": f"{VERSION_TABLE_SCHEMA}.{self.version_table}",
            "current": self.current,
            "heads": self.heads,
            "pending": self.pending,
            "drift": self.drift,
            "problem": self.problem,
            "state": self.state,
        }


@dataclass
class DatabaseStatus:
    """Every declared schema, plus what the database holds that no service declares."""

    schemas: list[SchemaStatus]
    undeclared_schemas: list[str]
    orphan_version_tables: list[str]

    @property
    def clean(self) -> bool:
        return all(s.clean for s in self.schemas)


def database_status(
    project: Project, schemas: dict[str, SchemaInfo], url: URL, *, compare_models: bool = True
) -> DatabaseStatus:
    """Current revision, head, pending revisions and (for schemas at head) drift of every schema.

    Without `compare_models` it is one query: versions, undeclared schemas and orphan version tables.
    """
    ordered = upgrade_order(schemas)
    engine = migration_engine(url)
    try:
        with connect(engine) as conn:
            catalog = read_catalog(conn, ordered)
            current = catalog.versions
            rows: list[SchemaStatus] = []
            for info in ordered:
                index = revision_index(project, schemas, info)
                problem = version_rows_problem(index, current[info.name])
                pending = [] if problem else pending_revisions(index, current[info.name])
                drift = None if pending or problem or not compare_models else schema_drift(conn, info)
                rows.append(
                    SchemaStatus(
                        info.name, info.version_table, current[info.name], index.heads, pending, drift, problem
                    )
                )
    finally:
        engine.dispose()
    declared_tables = {info.version_table for info in ordered}
    return DatabaseStatus(
        rows,
        sorted(catalog.namespaces - SYSTEM_SCHEMAS - set(schemas)),
        sorted(t for t in catalog.version_tables if t.startswith("alembic_version_") and t not in declared_tables),
    )


def version_rows_problem(index: RevisionIndex, current: list[str]) -> str | None:
    """Why a version table's rows can't all be current (one row below another), or None.

    Several rows are normal only for a schema with several heads, each row on its own branch.
    """
    if len(current) < 2:
        return None
    try:
        below = sorted(r for r in current if any(r in index.ancestry([o]) - {o} for o in current if o != r))
    except UnreadableRevisions:
        return None  # an unknown revision is reported as such by pending_revisions
    if not below:
        return None
    return (
        f"{len(current)} version rows ({', '.join(current)}) and {', '.join(below)} is below another; "
        "delete the stale row by hand"
    )


def pending_revisions(index: RevisionIndex, current: list[str]) -> list[str]:
    """What an upgrade from `current` would apply (`RevisionIndex.pending`); one `?` line when `current` is unknown."""
    try:
        return index.pending(current)
    except UnreadableRevisions:
        return [f"? (database at unknown revision {','.join(current)})"]
