"""`gamedb status`: every schema's version rows, heads, pending revisions and drift, plus what the
database holds that no service declares.

A schema already at its head costs one row read and one pass over its revision files' text.
"""

from __future__ import annotations

import json
import multiprocessing
import os
from collections.abc import Mapping
from concurrent.futures import ProcessPoolExecutor
from contextlib import nullcontext
from dataclasses import dataclass, field
from typing import Any, cast

import psycopg
from psycopg import sql
from sqlalchemy import URL, Connection

from gamedb.discovery import SchemaInfo
from gamedb.fleet.fingerprints import (
    Fingerprint,
    catalog_fingerprints,
    models_fingerprint,
    record_clean,
    recorded_clean,
)
from gamedb.fleet.order import revision_index, upgrade_order
from gamedb.migrate import history
from gamedb.migrate.checksums import Recorded, check_fleet
from gamedb.migrate.revision_index import RevisionIndex, UnreadableRevisions
from gamedb.names import EXTENSIONS_SCHEMA, VERSION_TABLE_SCHEMA
from gamedb.project import Project
from gamedb.server.connections import connect, migration_engine
from gamedb.server.placement import DEFAULT_SERVER, Route, by_server
from gamedb.server.urls import mask_url

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
    chain jsonb;
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
    found := '{{}}';
    FOR version_table IN  -- the checksum tables (gamedb.migrate.checksums)
        SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = {schema} AND c.relkind IN ('r', 'p') AND c.relname = ANY({checksum_tables})
    LOOP
        IF EXISTS (SELECT FROM pg_attribute WHERE attrelid = format('%I.%I', {schema}, version_table)::regclass
                   AND attname = 'row_hash' AND NOT attisdropped) THEN
            EXECUTE format({latest}, {schema}, version_table, format('%I.%I', {schema}, version_table)) INTO rows;
            EXECUTE format({chain}, {schema}, version_table, format('%I.%I', {schema}, version_table)) INTO chain;
        ELSE  -- the form of an earlier gamedb, until a run converts it (gamedb.migrate.history)
            EXECUTE format({old_form}, {schema}, version_table) INTO rows;
            chain := 'null';
        END IF;
        found := found || jsonb_build_object(version_table, jsonb_build_object('rows', rows, 'chain', chain));
    END LOOP;
    PERFORM set_config('gamedb.checksum_rows', found::text, true);
END $gamedb$;
SELECT 'schema', nspname, NULL FROM pg_namespace WHERE nspname NOT LIKE 'pg\_%'
UNION ALL
SELECT 'table', c.relname, NULL FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = {schema} AND c.relkind IN ('r', 'p')
UNION ALL
SELECT 'versions', key, value::text FROM jsonb_each(current_setting('gamedb.version_rows')::jsonb)
UNION ALL
SELECT 'checksums', key, value::text FROM jsonb_each(current_setting('gamedb.checksum_rows')::jsonb)
"""


@dataclass(frozen=True)
class CatalogSnapshot:
    """What the database holds of the fleet, read in one round trip."""

    namespaces: set[str]
    version_tables: set[str]  # every table of schema `alembic`
    versions: dict[str, list[str]]  # schema -> rows of its version table ([] when missing or empty)
    checksums: dict[str, dict[str, Recorded]] = field(default_factory=dict)  # schema -> revision -> its latest row
    chains: dict[str, str | None] = field(default_factory=dict)  # schema -> why its record can't be trusted
    old_forms: set[str] = field(default_factory=set)  # schemas whose table is an earlier gamedb's (to convert)


def read_catalog(connection: Connection, schemas: list[SchemaInfo]) -> CatalogSnapshot:
    """Namespaces, the tables of schema `alembic`, every declared schema's version rows and checksum rows,
    in one request."""
    by_table = {info.version_table: info.name for info in schemas}
    by_checksum_table = {info.checksum_table: info.name for info in schemas}
    with connection.begin() if not connection.in_transaction() else nullcontext():
        # SQLAlchemy types the DBAPI cursor by PEP 249 alone; under its psycopg dialect it is psycopg's own
        cursor = cast("psycopg.Cursor[Any]", connection.connection.cursor())
        try:
            script = sql.SQL(CATALOG_SCRIPT).format(
                schema=sql.Literal(VERSION_TABLE_SCHEMA),
                declared=sql.Literal(sorted(by_table)),
                checksum_tables=sql.Literal(sorted(by_checksum_table)),
                latest=sql.Literal(history.LATEST_JSON),
                chain=sql.Literal(history.CHAIN_JSON),
                old_form=sql.Literal(history.OLD_FORM_JSON),
            )
            cursor.execute(script.as_string(cursor))  # no parameters: one simple-protocol request
            cursor.nextset()  # past the DO block's empty result
            rows = cursor.fetchall()
        finally:
            cursor.close()
    versions: dict[str, list[str]] = {info.name: [] for info in schemas}
    recorded: dict[str, dict[str, Recorded]] = {info.name: {} for info in schemas}
    chains: dict[str, str | None] = {}
    old_forms: set[str] = set()
    for kind, name, found in rows:
        if kind == "versions" and name in by_table:
            versions[by_table[name]] = sorted(json.loads(found))
        elif kind == "checksums" and name in by_checksum_table:
            record = json.loads(found)
            recorded[by_checksum_table[name]] = {r: Recorded(*row) for r, row in record["rows"].items()}
            if record["chain"] is not None:
                chains[by_checksum_table[name]] = history.chain_problem(name, **record["chain"])
            else:
                old_forms.add(by_checksum_table[name])
    return CatalogSnapshot(
        namespaces={name for kind, name, _ in rows if kind == "schema"},
        version_tables={name for kind, name, _ in rows if kind == "table"},
        versions=versions,
        checksums=recorded,
        chains=chains,
        old_forms=old_forms,
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
    server: str = DEFAULT_SERVER  # where the schema lives ([tool.gamedb.placement])
    unrecorded: list[str] = field(default_factory=list)  # applied revisions with no checksum row yet

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
            "server": self.server,
            "version_table": f"{VERSION_TABLE_SCHEMA}.{self.version_table}",
            "current": self.current,
            "heads": self.heads,
            "pending": self.pending,
            "drift": self.drift,
            "problem": self.problem,
            "checksums_not_recorded": self.unrecorded,
            "state": self.state,
        }


@dataclass
class DatabaseStatus:
    """Every declared schema, plus what the database holds that no service declares."""

    schemas: list[SchemaStatus]
    undeclared_schemas: list[str]  # with several servers: "name (on server)" for those off `default`
    orphan_version_tables: list[str]
    servers: dict[str, str] = field(default_factory=dict)  # server name -> its URL, masked

    @property
    def clean(self) -> bool:
        return all(s.clean for s in self.schemas)


def as_routes(schemas: Mapping[str, SchemaInfo], where: URL | Mapping[str, Route]) -> dict[str, Route]:
    """Every schema's server: `where` itself when it is a mapping, else all on one URL (server `default`)."""
    if isinstance(where, Mapping):
        return {name: where[name] for name in schemas}
    return {name: Route(DEFAULT_SERVER, where) for name in schemas}


def database_status(
    project: Project,
    schemas: dict[str, SchemaInfo],
    where: URL | Mapping[str, Route],
    *,
    compare_models: bool = True,
) -> DatabaseStatus:
    """Current revision, head, pending revisions and (for schemas at head) drift of every schema.

    `where`: one URL for every schema, or each schema's Route (placement). Without `compare_models`
    it is one query per server: versions, undeclared schemas and orphan version tables.
    """
    routes = as_routes(schemas, where)
    groups = by_server(routes)
    several = len(groups) > 1
    rows: dict[str, SchemaStatus] = {}
    undeclared: list[str] = []
    orphans: list[str] = []
    for server, names in groups.items():
        part = _server_status(project, schemas, [schemas[n] for n in names], routes[names[0]].url, compare_models)
        for row in part.schemas:
            row.server = server
            rows[row.schema] = row
        suffix = f" (on {server})" if several and server != DEFAULT_SERVER else ""
        undeclared += [f"{name}{suffix}" for name in part.undeclared_schemas]
        orphans += [f"{name}{suffix}" for name in part.orphan_version_tables]
    return DatabaseStatus(
        [rows[info.name] for info in upgrade_order(schemas)],
        undeclared,
        orphans,
        {server: mask_url(routes[names[0]].url) for server, names in groups.items()},
    )


def _server_status(
    project: Project, schemas: dict[str, SchemaInfo], here: list[SchemaInfo], url: URL, compare_models: bool
) -> DatabaseStatus:
    """database_status of the schemas placed on one server (`here`)."""
    names = {info.name for info in here}
    ordered = [info for info in upgrade_order(schemas) if info.name in names]
    engine = migration_engine(url)
    try:
        with connect(engine) as conn:
            catalog = read_catalog(conn, ordered)
    finally:
        engine.dispose()  # before any worker forks: a child must not inherit a live connection
    current = catalog.versions
    indexes = {info.name: revision_index(project, schemas, info) for info in ordered}
    # refuses an applied revision edited or gone, and an altered record
    unrecorded = check_fleet(ordered, current, catalog.checksums, indexes, catalog.chains)
    problems = {info.name: version_rows_problem(indexes[info.name], current[info.name]) for info in ordered}
    pending = {
        info.name: [] if problems[info.name] else pending_revisions(indexes[info.name], current[info.name])
        for info in ordered
    }
    at_head = [info for info in ordered if not pending[info.name] and not problems[info.name]]
    drift = compare_changed(url, at_head) if compare_models else {}
    rows = [
        SchemaStatus(
            info.name,
            info.version_table,
            current[info.name],
            indexes[info.name].heads,
            pending[info.name],
            drift.get(info.name),
            problems[info.name],
            unrecorded=unrecorded[info.name],
        )
        for info in ordered
    ]
    declared_tables = {info.version_table for info in ordered}
    return DatabaseStatus(
        rows,
        sorted(catalog.namespaces - SYSTEM_SCHEMAS - {info.name for info in ordered}),
        sorted(t for t in catalog.version_tables if t.startswith("alembic_version_") and t not in declared_tables),
    )


# Set (to anything but 0): compare every schema at head, neither reading nor writing the record.
FULL_COMPARISON_ENV = "GAMEDB_FULL_COMPARISON"


def compare_changed(url: URL, infos: list[SchemaInfo]) -> dict[str, list[str]]:
    """Each schema's drift lines, comparing only the schemas whose catalog or models fingerprint
    differs from their last clean comparison's (gamedb.fleet.fingerprints); records the clean ones.

    A skipped schema's models are not even imported.
    """
    if not infos:
        return {}
    if os.environ.get(FULL_COMPARISON_ENV, "") not in ("", "0"):
        return compare_all(url, infos)
    names = [info.name for info in infos]
    engine = migration_engine(url)
    try:
        with connect(engine) as conn:
            before = catalog_fingerprints(conn, names)
            recorded = recorded_clean(conn, names)
            conn.rollback()
    finally:
        engine.dispose()  # before any worker forks
    models = {info.name: models_fingerprint(info) for info in infos}
    seen = {name: Fingerprint(before[name], models[name]) for name in names if name in before}
    skipped = {name for name, fingerprint in seen.items() if recorded.get(name) == fingerprint}
    drift: dict[str, list[str]] = {name: [] for name in skipped}
    drift |= compare_all(url, [info for info in infos if info.name not in skipped])
    clean = [name for name in names if name not in skipped and name in seen and not drift[name]]
    if clean:
        engine = migration_engine(url)
        try:
            with connect(engine) as conn:
                after = catalog_fingerprints(conn, clean)  # unchanged while it was compared
                if record_clean(conn, {name: seen[name] for name in clean if after.get(name) == before[name]}):
                    conn.commit()
        finally:
            engine.dispose()
    return drift


# Below this many schemas, starting worker processes costs more than comparing in one.
PARALLEL_FROM = 8


def compare_all(url: URL, infos: list[SchemaInfo], jobs: int | None = None) -> dict[str, list[str]]:
    """Each schema's drift lines; schemas split among forked workers (one per core, at most four).

    The models are imported before the fork, so each worker inherits them and only compares, on a
    connection of its own.
    """
    jobs = jobs or max(1, min(4, os.cpu_count() or 1))
    if jobs < 2 or len(infos) < PARALLEL_FROM or "fork" not in multiprocessing.get_all_start_methods():
        return _compare(url, infos)
    for info in infos:
        _ = info.metadata
    chunks = [infos[i::jobs] for i in range(jobs)]
    context = multiprocessing.get_context("fork")
    with ProcessPoolExecutor(jobs, mp_context=context, initializer=_init_comparer, initargs=(url, infos)) as pool:
        results = pool.map(_compare_names, [[info.name for info in chunk] for chunk in chunks])
        return {name: lines for part in results for name, lines in part.items()}


def _compare(url: URL, infos: list[SchemaInfo]) -> dict[str, list[str]]:
    if not infos:
        return {}
    from gamedb.autogen.drift import schema_drift  # gamedb's comparators: imported only when something is compared

    engine = migration_engine(url)
    try:
        with connect(engine) as conn:
            return {info.name: schema_drift(conn, info) for info in infos}
    finally:
        engine.dispose()


_COMPARER: tuple[URL, dict[str, SchemaInfo]] | None = None  # in a worker process only: set by its initializer


def _init_comparer(url: URL, infos: list[SchemaInfo]) -> None:
    global _COMPARER
    _COMPARER = (url, {info.name: info for info in infos})


def _compare_names(names: list[str]) -> dict[str, list[str]]:
    assert _COMPARER is not None
    url, by_name = _COMPARER
    return _compare(url, [by_name[name] for name in names])


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
