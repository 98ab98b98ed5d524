"""The snapshot two builds of a schema are compared by: the stairway's catalog (gamedb.testing) and
what a squash must also keep equal: index and view definitions, column order, identity and generated
columns, sequences' settings, functions' bodies, triggers, policies, row security, comments, owners
and grants; with rows, every table's rows and every sequence's position."""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg import sql

from gamedb.server.connections import one_value
from gamedb.testing.checks import SCHEMA_CATALOG

DETAILS = r"""
WITH s AS (SELECT oid FROM pg_namespace WHERE nspname = %(schema)s)
SELECT 'schema owner ' || n.nspowner::regrole::text || ' acl ' || coalesce(n.nspacl::text, '-')
       || coalesce(' comment ' || obj_description(n.oid, 'pg_namespace'), '')
FROM pg_namespace n, s WHERE n.oid = s.oid
UNION ALL
SELECT 'relation ' || c.relname || ' owner ' || c.relowner::regrole::text || ' acl ' || coalesce(c.relacl::text, '-')
       || ' rls ' || c.relrowsecurity::text || '/' || c.relforcerowsecurity::text
       || ' persistence ' || c.relpersistence::text
       || coalesce(' comment ' || obj_description(c.oid, 'pg_class'), '')
FROM pg_class c, s WHERE c.relnamespace = s.oid
UNION ALL
SELECT 'index ' || pg_get_indexdef(i.indexrelid) || CASE WHEN i.indisvalid THEN '' ELSE ' INVALID' END
FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid JOIN s ON c.relnamespace = s.oid
UNION ALL
SELECT 'column ' || c.relname || '.' || a.attname || ' position '
       || row_number() OVER (PARTITION BY c.oid ORDER BY a.attnum)
       || ' identity ' || a.attidentity::text || ' generated ' || a.attgenerated::text
       || coalesce(' collation ' || co.collname, '') || ' acl ' || coalesce(a.attacl::text, '-')
       || coalesce(' comment ' || col_description(c.oid, a.attnum), '')
FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid JOIN s ON c.relnamespace = s.oid
LEFT JOIN pg_collation co ON co.oid = a.attcollation AND a.attcollation <> 100
WHERE a.attnum > 0 AND NOT a.attisdropped
UNION ALL
SELECT 'sequence ' || c.relname || ' ' || format_type(q.seqtypid, NULL) || ' start ' || q.seqstart
       || ' increment ' || q.seqincrement || ' min ' || q.seqmin || ' max ' || q.seqmax
       || ' cache ' || q.seqcache || ' cycle ' || q.seqcycle::text
FROM pg_sequence q JOIN pg_class c ON c.oid = q.seqrelid JOIN s ON c.relnamespace = s.oid
UNION ALL
SELECT 'view ' || c.relname || ' ' || pg_get_viewdef(c.oid)
FROM pg_class c, s WHERE c.relnamespace = s.oid AND c.relkind IN ('v', 'm')
UNION ALL
SELECT 'function ' || p.oid::regprocedure::text || ' owner ' || p.proowner::regrole::text
       || ' acl ' || coalesce(p.proacl::text, '-') || ' ' || pg_get_functiondef(p.oid)
       || coalesce(' comment ' || obj_description(p.oid, 'pg_proc'), '')
FROM pg_proc p, s WHERE p.pronamespace = s.oid AND p.prokind IN ('f', 'p', 'w')
UNION ALL
SELECT 'trigger ' || pg_get_triggerdef(t.oid) || ' enabled ' || t.tgenabled::text
FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid JOIN s ON c.relnamespace = s.oid WHERE NOT t.tgisinternal
UNION ALL
SELECT 'policy ' || c.relname || '.' || p.polname || ' ' || p.polcmd::text || ' permissive ' || p.polpermissive::text
       || ' to ' || array_to_string(ARRAY(SELECT CASE WHEN r = 0 THEN 'public' ELSE r::regrole::text END
                                         FROM unnest(p.polroles) r ORDER BY 1), ',')
       || coalesce(' using ' || pg_get_expr(p.polqual, p.polrelid), '')
       || coalesce(' check ' || pg_get_expr(p.polwithcheck, p.polrelid), '')
FROM pg_policy p JOIN pg_class c ON c.oid = p.polrelid JOIN s ON c.relnamespace = s.oid
UNION ALL
SELECT 'type ' || t.typname || ' owner ' || t.typowner::regrole::text || ' acl ' || coalesce(t.typacl::text, '-')
       || coalesce(' comment ' || obj_description(t.oid, 'pg_type'), '')
FROM pg_type t, s WHERE t.typnamespace = s.oid AND t.typtype IN ('e', 'd', 'r', 'm')
UNION ALL
SELECT 'constraint comment ' || co.conname || ' ' || obj_description(co.oid, 'pg_constraint')
FROM pg_constraint co, s WHERE co.connamespace = s.oid AND obj_description(co.oid, 'pg_constraint') IS NOT NULL
"""

_TABLES = """
SELECT c.relname, c.relkind FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = %s AND c.relkind IN ('r', 'p', 'S') ORDER BY 1
"""


def catalog_snapshot(libpq: str, schema: str, *, with_rows: bool) -> set[str]:
    """One line per fact about `schema` in the database at `libpq` (its rows too with `with_rows`)."""
    with psycopg.connect(libpq, autocommit=True) as conn:
        lines = {row[0] for row in conn.execute(SCHEMA_CATALOG, {"schema": schema})}
        lines |= {row[0] for row in conn.execute(DETAILS, {"schema": schema}) if row[0] is not None}
        if with_rows:
            lines |= _rows(conn, schema)
    return lines


def _rows(conn: psycopg.Connection[Any], schema: str) -> set[str]:
    lines = set()
    for name, kind in conn.execute(_TABLES, (schema,)).fetchall():
        table = sql.Identifier(schema, name)
        if kind == "S":
            value = one_value(conn.execute(sql.SQL("SELECT last_value || '/' || is_called FROM {}").format(table)))
            lines.add(f"sequence {name} at {value}")
            continue
        query = sql.SQL("SELECT t::text, count(*) FROM {} t GROUP BY 1").format(table)
        lines |= {f"row {name} {row} x{count}" for row, count in conn.execute(query)}
    return lines


def differences(old: set[str], new: set[str], limit: int = 5) -> list[str]:
    """The lines only one snapshot has, as short statements (at most `limit` of each side)."""
    only_old, only_new = sorted(old - new), sorted(new - old)
    lines = [f"only through the old revisions: {line}" for line in only_old[:limit]]
    lines += [f"only through the squashed revision: {line}" for line in only_new[:limit]]
    hidden = max(0, len(only_old) - limit) + max(0, len(only_new) - limit)
    return lines + ([f"... and {hidden} more"] if hidden else [])
