"""Fingerprints that let check-all and status skip comparing a schema nothing has changed since its
last clean comparison.

A schema's **catalog fingerprint** is one server-side hash over what the comparison reads of it:
relations (kind, persistence, options, partition bounds and keys, row security, owner, an index's
validity), columns (type, nullability, identity, generation, collation, default), sequences,
constraints, indexes, types and enum labels, comments, functions, triggers, policies and rules; plus
the server's version, the comparing login, its search_path and the installed extensions. Every
schema's is computed in one query, each time: never read from a record.

Its **models fingerprint** hashes the files of the package holding its models (but its versions
directory), its declaration, the installed versions of gamedb, Alembic, SQLAlchemy and psycopg, and
gamedb's own source files (an editable gamedb changes without a new version).

Invariant: a row of the record (`alembic.gamedb_clean_comparisons`) is written only after a
comparison found no drift, with the fingerprints read before it, and only when the catalog
fingerprint read after it is the same. A skip needs both fingerprints, recomputed now, to equal the
recorded ones exactly; anything else is compared as if there were no record.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import sys
from dataclasses import dataclass
from functools import cache
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from sqlalchemy import Connection, text
from sqlalchemy.exc import DBAPIError

from gamedb.discovery import SchemaInfo
from gamedb.names import VERSION_TABLE_SCHEMA

RECORD_TABLE = "gamedb_clean_comparisons"
_RECORD = f'"{VERSION_TABLE_SCHEMA}"."{RECORD_TABLE}"'

# Every line is a ROW(...)::text (NULLs and empty strings stay distinct), sorted, hashed per schema.
CATALOG_FINGERPRINTS = text(
    """
WITH s AS (SELECT oid, nspname FROM pg_namespace WHERE nspname = ANY(CAST(:schemas AS text[]))),
rel AS (SELECT c.*, s.nspname FROM pg_class c JOIN s ON c.relnamespace = s.oid),
lines AS (
    SELECT s.nspname, ROW('n', pg_get_userbyid(n.nspowner), obj_description(n.oid, 'pg_namespace'))::text AS line
    FROM s JOIN pg_namespace n ON n.oid = s.oid
    UNION ALL
    SELECT rel.nspname, ROW('r', rel.relname, rel.relkind, rel.relpersistence, rel.relispartition,
        pg_get_expr(rel.relpartbound, rel.oid), rel.reloptions, rel.relrowsecurity, rel.relforcerowsecurity,
        pg_get_userbyid(rel.relowner),
        CASE WHEN rel.relkind = 'p' THEN pg_get_partkeydef(rel.oid) END,
        CASE WHEN rel.relkind IN ('v', 'm') THEN pg_get_viewdef(rel.oid) END,
        CASE WHEN rel.relkind IN ('i', 'I') THEN pg_get_indexdef(rel.oid) END,
        (SELECT ROW(x.indisvalid, x.indisready, x.indisclustered, x.indisreplident)
         FROM pg_index x WHERE x.indexrelid = rel.oid),
        (SELECT string_agg(i.inhparent::regclass::text, ',' ORDER BY i.inhseqno)
         FROM pg_inherits i WHERE i.inhrelid = rel.oid))::text
    FROM rel
    UNION ALL
    SELECT rel.nspname, ROW('a', rel.relname, a.attnum, a.attname, format_type(a.atttypid, a.atttypmod),
        a.attnotnull, a.attidentity, a.attgenerated, a.attcollation, a.attndims, pg_get_expr(d.adbin, d.adrelid))::text
    FROM rel JOIN pg_attribute a ON a.attrelid = rel.oid AND a.attnum > 0 AND NOT a.attisdropped
    LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
    UNION ALL
    SELECT rel.nspname, ROW('q', rel.relname, format_type(q.seqtypid, NULL), q.seqstart, q.seqincrement,
        q.seqmax, q.seqmin, q.seqcache, q.seqcycle)::text
    FROM rel JOIN pg_sequence q ON q.seqrelid = rel.oid
    UNION ALL
    SELECT s.nspname, ROW('c', co.conname, co.conrelid::regclass::text, co.contypid::regtype::text, co.contype,
        pg_get_constraintdef(co.oid), co.condeferrable, co.condeferred, co.convalidated)::text
    FROM s JOIN pg_constraint co ON co.connamespace = s.oid
    UNION ALL
    SELECT s.nspname, ROW('t', t.typname, t.typtype, format_type(t.typbasetype, t.typtypmod), t.typnotnull,
        t.typdefault, pg_get_userbyid(t.typowner),
        (SELECT array_agg(e.enumlabel ORDER BY e.enumsortorder) FROM pg_enum e WHERE e.enumtypid = t.oid))::text
    FROM s JOIN pg_type t ON t.typnamespace = s.oid
    UNION ALL
    SELECT s.nspname, ROW('f', p.oid::regprocedure::text, p.prokind,
        CASE WHEN p.prokind <> 'a' THEN pg_get_functiondef(p.oid) END, pg_get_userbyid(p.proowner),
        EXISTS (SELECT FROM pg_depend x WHERE x.classid = 'pg_proc'::regclass AND x.objid = p.oid
                AND x.deptype = 'e'))::text
    FROM s JOIN pg_proc p ON p.pronamespace = s.oid
    UNION ALL
    SELECT rel.nspname, ROW('g', g.tgname, rel.relname, pg_get_triggerdef(g.oid), g.tgenabled, g.tgisinternal)::text
    FROM rel JOIN pg_trigger g ON g.tgrelid = rel.oid
    UNION ALL
    SELECT rel.nspname, ROW('p', po.polname, rel.relname, po.polpermissive, po.polroles::regrole[]::text,
        po.polcmd, pg_get_expr(po.polqual, po.polrelid), pg_get_expr(po.polwithcheck, po.polrelid))::text
    FROM rel JOIN pg_policy po ON po.polrelid = rel.oid
    UNION ALL
    SELECT rel.nspname, ROW('w', w.rulename, rel.relname, pg_get_ruledef(w.oid), w.ev_enabled)::text
    FROM rel JOIN pg_rewrite w ON w.ev_class = rel.oid AND w.rulename <> '_RETURN'
    UNION ALL  -- every comment on an object of the schema, in one pass (user objects only: oid >= 16384)
    SELECT i.schema, ROW('d', pg_describe_object(d.classoid, d.objoid, d.objsubid), d.description)::text
    FROM pg_description d CROSS JOIN LATERAL pg_identify_object(d.classoid, d.objoid, d.objsubid) i
    WHERE d.objoid >= 16384 AND i.schema = ANY(CAST(:schemas AS text[]))
),
server AS (
    SELECT ROW(current_setting('server_version_num'), current_user, current_setting('search_path'),
        (SELECT string_agg(ROW(extname, extversion, extnamespace::regnamespace::text)::text, ',' ORDER BY extname)
         FROM pg_extension))::text AS line
)
SELECT nspname, md5((SELECT line FROM server) || E'\\n' || string_agg(line, E'\\n' ORDER BY line))
FROM lines GROUP BY nspname
"""
)


@dataclass(frozen=True)
class Fingerprint:
    """What a clean comparison of one schema saw: the catalog's and the models' fingerprints."""

    catalog: str
    models: str


def catalog_fingerprints(connection: Connection, schemas: list[str]) -> dict[str, str]:
    """Each existing schema's catalog fingerprint, computed by the server now (one query for all)."""
    rows = connection.execute(CATALOG_FINGERPRINTS, {"schemas": schemas})
    return {name: digest for name, digest in rows}


def models_fingerprint(info: SchemaInfo) -> str:
    """A hash of the files the schema's models come from and of the code that compares them, read
    from disk: the models are not imported."""
    digest = hashlib.sha256()
    digest.update(repr((info.name, info.declaration, _tools_fingerprint())).encode())
    for path in _package_files(info.models.partition(".")[0], skip=info.versions_dir):
        digest.update(b"\0" + str(path).encode() + b"\0")
        digest.update(path.read_bytes())
    return digest.hexdigest()


@cache
def _tools_fingerprint() -> str:
    """The installed versions of what compares (and Python's), and gamedb's own source files."""
    digest = hashlib.sha256(sys.version.encode())
    for distribution in ("gamedb", "alembic", "sqlalchemy", "psycopg"):
        try:
            digest.update(f"{distribution}=={version(distribution)};".encode())
        except PackageNotFoundError:
            digest.update(f"{distribution} missing;".encode())
    gamedb_dir = Path(__file__).resolve().parents[1]
    for path in _walk([gamedb_dir], skip=None):
        digest.update(b"\0" + str(path.relative_to(gamedb_dir)).encode() + b"\0")
        digest.update(path.read_bytes())
    return digest.hexdigest()


def _package_files(top: str, skip: Path | None) -> list[Path]:
    """Every file of the top-level package (or module) `top`, found without importing it."""
    module = sys.modules.get(top)
    spec = module.__spec__ if module is not None and module.__spec__ is not None else importlib.util.find_spec(top)
    if spec is None:
        return []
    if spec.submodule_search_locations:
        return _walk([Path(p) for p in spec.submodule_search_locations], skip)
    return [Path(spec.origin)] if spec.origin and os.path.isfile(spec.origin) else []


def _walk(roots: list[Path], skip: Path | None) -> list[Path]:
    found: list[Path] = []
    for root in roots:
        for directory, subdirs, files in os.walk(root):
            here = Path(directory)
            subdirs[:] = sorted(
                d for d in subdirs if d != "__pycache__" and not d.startswith(".") and (here / d).resolve() != skip
            )
            found += [here / f for f in sorted(files) if not f.endswith((".pyc", ".pyo"))]
    return found


def recorded_clean(connection: Connection, schemas: list[str]) -> dict[str, Fingerprint]:
    """The fingerprints of each schema's last clean comparison; none when the record is missing or
    this login may not read it."""
    try:
        with connection.begin_nested():
            rows = connection.execute(
                text(
                    f"SELECT schema_name, catalog_fingerprint, models_fingerprint FROM {_RECORD}"
                    " WHERE schema_name = ANY(CAST(:schemas AS text[]))"
                ),
                {"schemas": schemas},
            ).all()
    except DBAPIError:  # no such table (42P01), no SELECT on it (42501)
        return {}
    return {name: Fingerprint(catalog, models) for name, catalog, models in rows}


def record_clean(connection: Connection, clean: dict[str, Fingerprint]) -> bool:
    """Record the fingerprints of clean comparisons, creating the record if missing; False when this
    login can't (a read-only login, a deployer without rights on schema `alembic`): nothing fails."""
    if not clean:
        return True
    try:
        with connection.begin_nested():
            connection.execute(text("SET LOCAL lock_timeout = '1s'"))  # a record is never worth waiting for
            if connection.execute(text("SELECT to_regclass(:t)"), {"t": _RECORD}).scalar() is None:
                connection.execute(
                    text(
                        f"CREATE TABLE {_RECORD} (schema_name text PRIMARY KEY, catalog_fingerprint text NOT NULL,"
                        " models_fingerprint text NOT NULL, recorded_at timestamptz NOT NULL DEFAULT now())"
                    )
                )
                connection.execute(text(f"REVOKE ALL ON TABLE {_RECORD} FROM PUBLIC"))
            connection.execute(
                text(
                    f"INSERT INTO {_RECORD} (schema_name, catalog_fingerprint, models_fingerprint)"
                    " VALUES (:schema, :catalog, :models) ON CONFLICT (schema_name) DO UPDATE"
                    " SET catalog_fingerprint = excluded.catalog_fingerprint,"
                    " models_fingerprint = excluded.models_fingerprint, recorded_at = now()"
                ),
                [{"schema": name, "catalog": f.catalog, "models": f.models} for name, f in sorted(clean.items())],
            )
    except DBAPIError:
        return False
    return True
