"""What `gamedb move` checks before it changes anything: one line per reason, nothing touched."""

from __future__ import annotations

import psycopg
from psycopg import sql

from gamedb.discovery import SchemaInfo
from gamedb.errors import MoveRefused
from gamedb.names import VERSION_TABLE_SCHEMA
from gamedb.server.connections import one_value

MIN_SERVER_VERSION = 150000  # CREATE PUBLICATION ... FOR TABLES IN SCHEMA

# Tables logical replication can't carry faithfully: no key to identify a changed row, unlogged
# (never in the WAL), foreign (data elsewhere).
_UNREPLICABLE = """
SELECT c.relname,
       CASE WHEN c.relpersistence = 'u' THEN 'unlogged'
            WHEN c.relkind = 'f' THEN 'a foreign table'
            ELSE 'no primary key or replica identity' END
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = %(schema)s AND c.relkind IN ('r', 'p', 'f') AND NOT c.relispartition
  AND (c.relpersistence = 'u' OR c.relkind = 'f'
       OR c.relreplident = 'n'
       OR (c.relreplident = 'd' AND NOT EXISTS (
             SELECT 1 FROM pg_index i WHERE i.indrelid = c.oid AND i.indisprimary)))
ORDER BY 1
"""


def server_version(conn: psycopg.Connection, where: str) -> int:
    version = conn.info.server_version
    if version < MIN_SERVER_VERSION:
        raise MoveRefused(f"{where} runs PostgreSQL {version // 10000}: gamedb move needs 15 or later on both sides")
    return version


def system_identity(conn: psycopg.Connection) -> tuple[str, str]:
    """(running server, database): two URLs with the same one reach one database.

    The server is named by its start time (to the microsecond) and port, which any login may read:
    no file access (pg_control_system() reads global/pg_control, which failed once with EACCES here
    while another embedded server was being set up), and a restored copy elsewhere is another server.
    """
    row = conn.execute(
        "SELECT pg_postmaster_start_time()::text || ':' || current_setting('port'), current_database()"
    ).fetchone()
    assert row is not None
    return row[0], row[1]


# The first key of the session-level advisory lock a move holds on the source (the second: the schema)
MOVE_LOCK_CLASS = 0x6D6F7665  # "move"


def claim_move(conn: psycopg.Connection, schema: str) -> None:
    """One move of a schema at a time: a session lock on the source, released when the move's
    connection closes (a killed move's too). A second move would otherwise take the first one's
    subscription and half-made target for an interrupted move's, and remove them."""
    held = one_value(
        conn.execute("SELECT pg_try_advisory_lock(%s, hashtext(%s))", (MOVE_LOCK_CLASS, f"gamedb move {schema}"))
    )
    if not held:
        raise MoveRefused(f"another gamedb move of {schema} is running (it holds the move lock on the source)")


# Views and foreign keys of OTHER schemas on this one's tables: after a move they would read the copy
# left behind (or be dropped by --drop-source's DROP SCHEMA ... CASCADE)
_DEPENDENTS = """
SELECT DISTINCT o.label FROM pg_depend d
JOIN pg_class c ON d.refclassid = 'pg_class'::regclass AND d.refobjid = c.oid
CROSS JOIN LATERAL (
    SELECT n2.nspname, n2.nspname || '.' || c2.relname AS label
    FROM pg_rewrite r JOIN pg_class c2 ON c2.oid = r.ev_class JOIN pg_namespace n2 ON n2.oid = c2.relnamespace
    WHERE d.classid = 'pg_rewrite'::regclass AND r.oid = d.objid
    UNION ALL
    SELECT n2.nspname, n2.nspname || '.' || c2.relname || ' (foreign key ' || k.conname || ')'
    FROM pg_constraint k JOIN pg_class c2 ON c2.oid = k.conrelid JOIN pg_namespace n2 ON n2.oid = c2.relnamespace
    WHERE d.classid = 'pg_constraint'::regclass AND k.oid = d.objid
) o
WHERE c.relnamespace = to_regnamespace(%(schema)s) AND o.nspname <> %(schema)s
ORDER BY 1
"""


def check_source(conn: psycopg.Connection, info: SchemaInfo, server: str) -> list[str]:
    """The source can publish `info`'s schema; returns its version rows."""
    server_version(conn, f"source server {server!r}")
    wal_level = one_value(conn.execute("SHOW wal_level"))
    if wal_level != "logical":
        raise MoveRefused(
            f"source server {server!r} has wal_level={wal_level}: set wal_level = logical in its postgresql.conf "
            "and restart it (the embedded server: gamedb server stop; it starts with logical)"
        )
    is_super = one_value(conn.execute("SELECT rolsuper FROM pg_roles WHERE rolname = current_user"))
    if not is_super:
        raise MoveRefused(
            f"source server {server!r}: the URL's user is not a superuser; publishing a whole schema "
            "(CREATE PUBLICATION ... FOR TABLES IN SCHEMA) and its replication slot need one"
        )
    if one_value(conn.execute("SELECT to_regnamespace(%s)", (info.name,))) is None:
        raise MoveRefused(f"schema {info.name!r} does not exist on source server {server!r}: nothing to move")
    rows = version_rows(conn, info)
    if not rows:
        raise MoveRefused(
            f"schema {info.name!r} on {server!r} has no version row: upgrade it (gamedb -x schema={info.name} "
            "upgrade head) before moving it"
        )
    dependents = [row[0] for row in conn.execute(_DEPENDENTS, {"schema": info.name})]
    if dependents:
        raise MoveRefused(
            f"{', '.join(dependents)} in another schema use {info.name}'s tables: after the move they would read "
            f"the copy left behind on {server!r} (or be dropped with it); drop or move them first"
        )
    bad = conn.execute(_UNREPLICABLE, {"schema": info.name}).fetchall()
    if bad:
        listed = ", ".join(f"{info.name}.{name} ({why})" for name, why in bad)
        raise MoveRefused(f"can't replicate {listed}: add a primary key (or REPLICA IDENTITY FULL) first")
    bad = _full_identity_without_equality(conn, info.name)
    if bad:
        listed = ", ".join(f"{info.name}.{table}.{column} ({type_})" for table, column, type_ in bad)
        raise MoveRefused(
            f"can't replicate changes to {listed}: the table has REPLICA IDENTITY FULL, which finds a changed row "
            "by comparing every column, and that type has no equality operator; add a primary key first"
        )
    slots = conn.execute(
        "SELECT (SELECT count(*) FROM pg_replication_slots), current_setting('max_replication_slots')::int"
    ).fetchone()
    assert slots is not None
    used, limit = slots
    if used >= limit:
        raise MoveRefused(f"source server {server!r} has no free replication slot ({used} of max_replication_slots)")
    return rows


def check_target(conn: psycopg.Connection, info: SchemaInfo, server: str) -> None:
    """The target can subscribe and holds nothing of the schema."""
    version = server_version(conn, f"target server {server!r}")
    allowed = one_value(
        conn.execute(
            "SELECT rolsuper OR (%s >= 160000 AND pg_has_role(current_user, 'pg_create_subscription', 'MEMBER')) "
            "FROM pg_roles WHERE rolname = current_user",
            (version,),
        )
    )
    if not allowed:
        raise MoveRefused(
            f"target server {server!r}: the URL's user may not create a subscription "
            "(a superuser, or on PostgreSQL 16+ a member of pg_create_subscription)"
        )
    if one_value(conn.execute("SELECT to_regnamespace(%s)", (info.name,))) is not None:
        raise MoveRefused(f"target server {server!r} already has a schema {info.name!r}: drop or rename it first")
    for table in (info.version_table, info.checksum_table):
        if one_value(conn.execute("SELECT to_regclass(%s)", (f"{VERSION_TABLE_SCHEMA}.{table}",))) is not None:
            raise MoveRefused(
                f"target server {server!r} already has {VERSION_TABLE_SCHEMA}.{table}: "
                "drop it first (a schema's history must not be mixed with another's)"
            )


def version_table_exists(conn: psycopg.Connection, info: SchemaInfo) -> bool:
    name = f"{VERSION_TABLE_SCHEMA}.{info.version_table}"
    return one_value(conn.execute("SELECT to_regclass(%s)", (name,))) is not None


def version_rows(conn: psycopg.Connection, info: SchemaInfo) -> list[str]:
    if not version_table_exists(conn, info):
        return []
    table = sql.Identifier(VERSION_TABLE_SCHEMA, info.version_table)
    return sorted(r[0] for r in conn.execute(sql.SQL("SELECT version_num FROM {}").format(table)))


# What the target, built by the schema's migrations, must have for the source's rows to land: every
# table, column, sequence and view (the copy, the sequence positions and the apps use them by name)
# and every enum label (a row holding one the target lacks can't be copied)
_SHAPE = """
SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = %(schema)s AND c.relkind IN ('r', 'p', 'S', 'v', 'm')
UNION ALL
SELECT c.relname || '.' || a.attname FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = %(schema)s AND c.relkind IN ('r', 'p') AND a.attnum > 0 AND NOT a.attisdropped
UNION ALL
SELECT t.typname || ' label ' || quote_literal(e.enumlabel) FROM pg_enum e JOIN pg_type t ON t.oid = e.enumtypid
JOIN pg_namespace n ON n.oid = t.typnamespace WHERE n.nspname = %(schema)s
"""


def source_only(source: psycopg.Connection, target: psycopg.Connection, schema: str) -> list[str]:
    """What the source's schema has that the target's, built by its migrations, lacks: objects made by
    hand on the source (schema drift), which the move can't carry."""

    def shape(conn: psycopg.Connection) -> set[str]:
        return {row[0] for row in conn.execute(_SHAPE, {"schema": schema})}

    return sorted(shape(source) - shape(target))


def refuse_drift(source: psycopg.Connection, target: psycopg.Connection, schema: str) -> None:
    extra = source_only(source, target, schema)
    if extra:
        listed = ", ".join(f"{schema}.{name}" for name in extra[:10]) + (" ..." if len(extra) > 10 else "")
        raise MoveRefused(
            f"schema drift: {listed} exist on the source but not in {schema}'s migrations (the target is built "
            "from them): add them to a revision, or drop them on the source, then move"
        )


_FULL_IDENTITY_COLUMNS = """
SELECT c.relname, a.attname, format_type(a.atttypid, NULL)
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
WHERE n.nspname = %(schema)s AND c.relkind IN ('r', 'p') AND c.relreplident = 'f'
ORDER BY 1, a.attnum
"""


def _full_identity_without_equality(conn: psycopg.Connection, schema: str) -> list[tuple[str, str, str]]:
    """(table, column, type) of REPLICA IDENTITY FULL tables whose column type has no `=` (json, xml,
    point...): the target can't find the row an UPDATE or DELETE changed, and the subscription fails."""
    found = []
    equality: dict[str, bool] = {}
    for table, column, type_name in conn.execute(_FULL_IDENTITY_COLUMNS, {"schema": schema}).fetchall():
        if type_name not in equality:
            # type_name is format_type()'s output: a catalog type, quoted by PostgreSQL itself
            probe = sql.SQL("SELECT NULL::{0} = NULL::{0}").format(sql.SQL(type_name))
            try:
                conn.execute(probe)
                equality[type_name] = True
            except psycopg.errors.UndefinedFunction:
                equality[type_name] = False
        if not equality[type_name]:
            found.append((table, column, type_name))
    return found
