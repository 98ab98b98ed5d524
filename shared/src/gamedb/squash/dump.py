"""A schema, as the old chain left it in a throwaway database, turned into statements by pg_dump.

Why pg_dump and not autogenerate: the squash must rebuild what the revisions made, not what the
models say, and autogenerate sees neither enum label order, sequences' settings, grants, comments,
functions, views, triggers nor policies; pg_dump is PostgreSQL's own, complete account of a schema,
in dependency order (types, tables, rows, then constraints, indexes, triggers, grants).
Ownership is left out (`--no-owner`): revisions run as `<s>_owner`, which then owns what they make.
Grants stay, each run only where its roles exist (a database without the role model has none).
"""

from __future__ import annotations

import re
import shutil
import subprocess

from gamedb.errors import SquashRefused
from gamedb.names import quote_literal
from gamedb.squash.statements import split_statements

# one TOC entry of a plain dump: "-- Name: t; Type: TABLE; Schema: s; Owner: -" (or "Data for Name: ...")
_ENTRY = re.compile(r"^--\n-- (?:Data for )?Name: .*?; Type: (?P<type>[A-Z ]+); Schema: .*$\n--\n", re.MULTILINE)
# pg_dump's session settings between entries, and psql meta-commands (\\restrict): not the schema's
_SESSION = re.compile(r"(SET |SELECT pg_catalog\.set_config\('search_path'|\\)")
_LEADING_COMMENTS = re.compile(r"\A(?:\s*--[^\n]*\n)*\s*")


def pg_dump_binary() -> str:
    """pg_dump: the embedded server's own (same major version as it), else PATH's."""
    from gamedb.server import embedded

    directory = embedded.bin_dir()
    if directory is not None and (directory / "pg_dump").exists():
        return str(directory / "pg_dump")
    found = shutil.which("pg_dump")
    if found is None:
        raise SquashRefused("gamedb squash needs pg_dump: install gamedb[embedded] or a PostgreSQL client")
    return found


def dump_schema(libpq: str, schema: str, *, with_data: bool) -> str:
    """pg_dump's plain text of one schema (its rows too with `with_data`), without owners."""
    args = [pg_dump_binary(), "--no-owner", "--no-tablespaces", "-n", schema, "-d", libpq]
    args += ["--column-inserts"] if with_data else ["--schema-only"]
    done = subprocess.run(args, capture_output=True, text=True)
    if done.returncode != 0:
        raise SquashRefused(f"pg_dump of schema {schema!r} failed: {done.stderr.strip().splitlines()[-1:]}")
    return done.stdout


def dump_statements(dump: str, owner: str) -> list[str]:
    """The statements that rebuild the schema: pg_dump's, minus its session settings, the schema's own
    CREATE (the revision's CREATE SCHEMA IF NOT EXISTS does it) and with grants made conditional."""
    statements = [
        "SET LOCAL check_function_bodies = false"
    ]  # bodies may name objects made later, as pg_dump's SET says
    pieces = _ENTRY.split(dump)
    # pieces: [preamble, type, body, type, body, ...]
    for kind, body in zip(pieces[1::2], pieces[2::2], strict=True):
        for statement in split_statements(body):
            statement = _LEADING_COMMENTS.sub("", statement)
            if kind == "SCHEMA" or _SESSION.match(statement):
                continue
            statements.append(_where_roles_exist(statement, owner) if kind == "ACL" else statement)
    return statements


def _where_roles_exist(statement: str, owner: str) -> str:
    """A GRANT / REVOKE run only under the role model (the owner's default privileges are in this
    database: the old revisions' grants were made on top of them), and skipped when a role it names
    does not exist (42704). Without the role model the old revisions left PostgreSQL's defaults."""
    return (
        "DO $gamedb_squash$ BEGIN IF EXISTS (SELECT FROM pg_default_acl d JOIN pg_roles r ON r.oid = d.defaclrole "
        f"WHERE r.rolname = {quote_literal(owner)}) THEN EXECUTE "
        + quote_literal(statement)
        + "; END IF; EXCEPTION WHEN undefined_object THEN NULL; END $gamedb_squash$"
    )


# Objects of the schema that the owner's default privileges grant to someone, with those grantees:
# pg_dump writes grants relative to PostgreSQL's built-in defaults, not the owner's default privileges,
# so a revision's REVOKE of a default grant would be lost. The squash first takes those grants back,
# then pg_dump's grants give exactly what the old revisions left.
_DEFAULT_GRANTEES = """
WITH s AS (SELECT oid, nspowner FROM pg_namespace WHERE nspname = %(schema)s),
d AS (
    SELECT da.defaclobjtype AS kind, (aclexplode(da.defaclacl)).grantee AS grantee
    FROM pg_default_acl da, s WHERE da.defaclrole = s.nspowner AND da.defaclnamespace IN (0, s.oid)
),
d_others AS (SELECT d.* FROM d, s WHERE d.grantee <> s.nspowner),  -- the owner keeps its own
objects AS (
    SELECT CASE WHEN c.relkind = 'S' THEN 'S' ELSE 'r' END AS kind,
           CASE WHEN c.relkind = 'S' THEN 'SEQUENCE ' ELSE 'TABLE ' END
           || format('%%I.%%I', %(schema)s, c.relname) AS what
    FROM pg_class c, s WHERE c.relnamespace = s.oid AND c.relkind IN ('r', 'p', 'v', 'm', 'f', 'S')
    UNION ALL
    SELECT 'f', 'ROUTINE ' || format('%%I.%%I', %(schema)s, p.proname) || '('
                || pg_get_function_identity_arguments(p.oid) || ')'
    FROM pg_proc p, s WHERE p.pronamespace = s.oid
    UNION ALL
    SELECT 'T', 'TYPE ' || format('%%I.%%I', %(schema)s, t.typname)
    FROM pg_type t, s WHERE t.typnamespace = s.oid AND t.typtype IN ('e', 'd', 'r', 'm', 'b')
)
SELECT DISTINCT o.what, CASE WHEN d.grantee = 0 THEN 'PUBLIC' ELSE quote_ident(d.grantee::regrole::text) END
FROM objects o JOIN d_others d ON d.kind = o.kind ORDER BY 1, 2
"""


def default_grant_resets(libpq: str, schema: str, owner: str) -> list[str]:
    """REVOKE ALL of every grant the owner's default privileges gave on the schema's objects, each
    doing nothing where its role does not exist."""
    import psycopg

    with psycopg.connect(libpq, autocommit=True) as conn:
        rows = conn.execute(_DEFAULT_GRANTEES, {"schema": schema}).fetchall()
    return [_where_roles_exist(f"REVOKE ALL ON {what} FROM {grantee}", owner) for what, grantee in rows]


def with_resets(statements: list[str], resets: list[str]) -> list[str]:
    """`resets` placed before the first grant (pg_dump writes grants last), or at the end."""
    first_grant = next((i for i, s in enumerate(statements) if s.startswith("DO $gamedb_squash$")), len(statements))
    return statements[:first_grant] + resets + statements[first_grant:]
