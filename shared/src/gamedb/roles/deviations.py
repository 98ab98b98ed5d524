"""The role model compared with the catalog as ONE query, and the repair that executes its fixes.

The comparison is ONE query (`deviations_query`): each row is a deviation (the schema it belongs
to, what kind, the object with found vs expected) and the statement that repairs it. `roles check`
prints the rows; `roles apply` (and `roles sql`) runs the same query inside a DO block and executes
every repair, so whatever check reports, apply repairs, and an empty result means the model holds.

What it governs: the attributes (VALID UNTIL included), memberships (both directions, ADMIN
option, and INHERIT/SET per grant on PostgreSQL 16+) and stored settings of every managed role
(migrator, `<s>_owner`, `<s>_rw`, and the logins gamedb made, recognised by their `COMMENT ON ROLE`
marker or by their membership in `<s>_rw` / migrator); privileges on the current database and on
schema `public` held by PUBLIC or a managed role; every privilege on schemas `alembic`,
`extensions`, the service schemas, their tables and columns, sequences, functions and types, and the
version and checksum tables; privileges of PUBLIC or a managed role on parameters and large
objects, of a managed role on languages, foreign-data wrappers and servers, tablespaces; the default
privileges of every managed role and of any role in a service schema; ownership of the database,
the shared schemas, everything in the service schemas and the version and checksum tables
(gamedb.migrate.checksums).
Refused (phase 0): a SECURITY DEFINER function in a service schema its owner does not own.
Reported only: gamedb.roles.outside.
Not governed: what unmanaged roles (a DBA's own login) hold on the database and on `public`.
"""

from __future__ import annotations

import json

from psycopg import sql

from gamedb.discovery import SchemaInfo
from gamedb.names import EXTENSIONS_SCHEMA, VERSION_TABLE_SCHEMA
from gamedb.roles.model import (
    DEPLOYER_SETTINGS,
    HISTORY_OWNER,
    MIGRATOR,
    NOT_MANAGED_SQLSTATE,
    Statement,
    do_block,
    session_settings,
)
from gamedb.roles.outside import REPORTED_ONLY

# --- the query -----------------------------------------------------------------------------------
# Placeholders: {schemas} = the declared schemas as parallel arrays, {deployer} = the deployer
# logins' settings (jsonb). Every name reaching a repair statement goes through format('%I') or
# ::regrole/::regclass/::regprocedure output (which quotes), never concatenation.
_MODEL = """
decl AS (
  SELECT * FROM unnest({names}::text[], {owners}::text[], {rws}::text[], {version_tables}::text[],
                       {settings}::text[], {checksum_tables}::text[])
    AS d(schema, owner, rw, version_table, settings, checksum_table)
),
-- the tables each schema keeps in schema alembic: its version table (its owner's) and its record
-- (gamedb_history's: gamedb.migrate.history)
kept(schema, owner, word, relname) AS (
  SELECT schema, owner, 'version table', version_table FROM decl
  UNION ALL SELECT schema, {history_owner}::text, 'checksum table', checksum_table FROM decl
),
record_fn(schema, owner, fn) AS (
  SELECT schema, owner, to_regprocedure(format('%I.%I(text, text, text, text, text)', {alembic}::text,
                                               'gamedb_record_' || schema)) FROM decl
),
declared(rolname, kind, schema) AS (
  SELECT {migrator}::text, 'migrator', NULL::text
  UNION ALL SELECT {history_owner}::text, 'history owner', NULL::text
  UNION ALL SELECT owner, 'owner', schema FROM decl
  UNION ALL SELECT rw, 'rw', schema FROM decl
),
marked(rolname, kind, schema) AS (
  SELECT r.rolname, x.m[1], x.m[2] FROM pg_roles r
  CROSS JOIN LATERAL (SELECT regexp_match(shobj_description(r.oid, 'pg_authid'),
    '^gamedb: (migrator|deployer login|owner|rw|service login)(?: of schema ([a-z][a-z0-9_]*))?$') AS m) x
  WHERE x.m IS NOT NULL AND r.rolname NOT IN (SELECT rolname FROM declared)
),
-- logins found by membership: a login in a `<s>_rw` or in migrator is one gamedb manages even when its
-- marker is gone (or was replaced), so its attributes are still enforced (a SUPERUSER app login is
-- never left alone); a deployer's membership wins over a service login's, then the first schema
joined(rolname, kind, schema) AS (
  SELECT DISTINCT ON (r.rolname) r.rolname,
         CASE WHEN d.kind = 'migrator' THEN 'deployer login' ELSE 'service login' END, d.schema
  FROM pg_auth_members a JOIN pg_roles g ON g.oid = a.roleid
  JOIN declared d ON d.rolname = g.rolname AND d.kind IN ('migrator', 'rw')
  JOIN pg_roles r ON r.oid = a.member
  WHERE r.rolcanlogin AND r.rolname NOT IN (SELECT rolname FROM declared)
    AND r.rolname NOT IN (SELECT rolname FROM marked)
  ORDER BY r.rolname, d.kind <> 'migrator', d.schema
),
model(rolname, kind, schema, login, marker, settings) AS (
  SELECT e.rolname, e.kind, e.schema, e.kind LIKE '%login',
         'gamedb: ' || e.kind || coalesce(' of schema ' || e.schema, ''),
         CASE WHEN e.kind IN ('migrator', 'history owner', 'owner', 'rw') THEN '{{}}'::jsonb
              WHEN e.kind = 'deployer login' THEN {deployer}::jsonb
              WHEN e.kind = 'service login' THEN (SELECT d.settings::jsonb FROM decl d WHERE d.schema = e.schema) END
  FROM (SELECT * FROM declared UNION ALL SELECT * FROM marked UNION ALL SELECT * FROM joined) e
),
managed AS (
  SELECT m.*, r.oid, r.rolsuper, r.rolinherit, r.rolcreaterole, r.rolcreatedb, r.rolcanlogin,
         r.rolreplication, r.rolbypassrls, r.rolconnlimit, r.rolvaliduntil,
         shobj_description(r.oid, 'pg_authid') AS comment
  FROM model m JOIN pg_roles r USING (rolname)
),
owner_of AS (SELECT oid, schema FROM managed WHERE kind = 'owner'),
rw_of AS (SELECT oid, schema FROM managed WHERE kind = 'rw'),
migrator AS (SELECT oid FROM managed WHERE kind = 'migrator'),
service_ns AS (SELECT n.oid, n.nspname, n.nspowner, d.schema, d.owner, d.rw
               FROM pg_namespace n JOIN decl d ON d.schema = n.nspname),
-- the database, and who should own it and the shared schemas: its owner, unless that is a role gamedb
-- manages (an app login owning `game` may create schemas): then the administrator running apply
admin AS (SELECT d.oid AS db, d.datname, d.datdba,
                 CASE WHEN d.datdba IN (SELECT oid FROM managed)
                      THEN (SELECT oid FROM pg_roles WHERE rolname = current_user) ELSE d.datdba END AS expected
          FROM pg_database d WHERE d.datname = current_database()),
-- relations whose columns the model governs: the service schemas' and the version and checksum tables
governed_rel AS (
  SELECT c.oid, s.schema FROM pg_class c JOIN service_ns s ON s.oid = c.relnamespace
  WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f')
  UNION ALL
  SELECT c.oid, k.schema FROM kept k JOIN pg_class c ON c.oid = to_regclass(format('%I.%I', {alembic}::text, k.relname))
)
"""

# Each part: (phase, schema, kind, detail, fix). Phase 1 repairs run before phase 2's: ownership,
# attributes and memberships first, so the privileges are read after owners moved.
_PARTS = [
    # roles the model defines but the server lacks (apply creates them before it repairs)
    """SELECT 1, m.schema, 'missing role', m.rolname || ' does not exist', NULL::text
       FROM model m WHERE m.kind IN ('migrator', 'history owner', 'owner', 'rw')
         AND NOT EXISTS (SELECT FROM pg_roles r WHERE r.rolname = m.rolname)""",
    # a model role without gamedb's marker: made by hand or by an older gamedb (apply adopts or refuses)
    """SELECT 1, m.schema, 'role not marked as gamedb''s',
              format('%s has comment %s, expected %L', m.rolname, coalesce(quote_literal(m.comment), 'none'),
                     m.marker),
              CASE WHEN m.login THEN format('COMMENT ON ROLE %I IS %L', m.rolname, m.marker) END
       FROM managed m WHERE m.comment IS DISTINCT FROM m.marker""",
    # attributes
    """SELECT 1, m.schema, 'role attribute',
              format('%s is %s, expected %s', m.rolname, CASE WHEN a.have THEN a.yes ELSE a.no END,
                     CASE WHEN a.want THEN a.yes ELSE a.no END),
              format('ALTER ROLE %I %s', m.rolname, CASE WHEN a.want THEN a.yes ELSE a.no END)
       FROM managed m CROSS JOIN LATERAL (VALUES
         (m.rolcanlogin, m.login, 'LOGIN', 'NOLOGIN'), (m.rolinherit, m.login, 'INHERIT', 'NOINHERIT'),
         (m.rolsuper, false, 'SUPERUSER', 'NOSUPERUSER'), (m.rolcreaterole, false, 'CREATEROLE', 'NOCREATEROLE'),
         (m.rolcreatedb, false, 'CREATEDB', 'NOCREATEDB'), (m.rolreplication, false, 'REPLICATION', 'NOREPLICATION'),
         (m.rolbypassrls, false, 'BYPASSRLS', 'NOBYPASSRLS')) a(have, want, yes, no)
       WHERE a.have <> a.want""",
    """SELECT 1, m.schema, 'role attribute',
              format('%s has CONNECTION LIMIT %s, expected -1 (none)', m.rolname, m.rolconnlimit),
              format('ALTER ROLE %I CONNECTION LIMIT -1', m.rolname)
       FROM managed m WHERE m.rolconnlimit <> -1""",
    # a password expiry locks deployments or apps out at a date nobody reviews: logins never expire
    # (rotate passwords with `roles login NAME --password-env VAR`)
    """SELECT 1, m.schema, 'role attribute',
              format('%s has VALID UNTIL %s, expected none', m.rolname, m.rolvaliduntil),
              format('ALTER ROLE %I VALID UNTIL %L', m.rolname, 'infinity')
       FROM managed m WHERE m.rolvaliduntil IS NOT NULL AND m.rolvaliduntil <> 'infinity'""",
    # PostgreSQL 16+: INHERIT and SET per grant (to_jsonb reads the columns where they exist, NULL on 15).
    # A migrator -> owner grant WITH INHERIT TRUE hands every deployer the owners' data without SET ROLE.
    """SELECT 1, coalesce(g.schema, u.schema), 'membership option',
              format('%s is a member of %s with INHERIT %s, SET %s, expected INHERIT %s, SET TRUE', u.rolname,
                     g.rolname, upper(a.inh::text), upper(a.st::text), upper((u.kind <> 'migrator')::text)),
              format('GRANT %I TO %I WITH INHERIT %s, SET TRUE', g.rolname, u.rolname,
                     upper((u.kind <> 'migrator')::text))
       FROM (SELECT roleid, member, bool_or((to_jsonb(x) ->> 'inherit_option')::boolean) AS inh,
                    bool_and((to_jsonb(x) ->> 'set_option')::boolean) AS st
             FROM pg_auth_members x GROUP BY 1, 2) a
       JOIN managed g ON g.oid = a.roleid JOIN managed u ON u.oid = a.member
       WHERE a.inh IS NOT NULL AND (a.inh <> (u.kind <> 'migrator') OR NOT a.st)
         AND ((g.kind = 'owner' AND u.kind = 'migrator')
           OR (g.kind = 'rw' AND u.kind = 'service login' AND u.schema = g.schema)
           OR (g.kind = 'migrator' AND u.kind = 'deployer login'))""",
    # memberships involving a managed role, either side; predefined roles (pg_*) included
    """SELECT 1, coalesce(g.schema, u.schema), 'membership beyond the model',
              format('%s is a member of %s%s, expected not', a.member::regrole, a.roleid::regrole,
                     CASE WHEN a.adm THEN ' WITH ADMIN OPTION' ELSE '' END),
              format('REVOKE %s FROM %s CASCADE', a.roleid::regrole, a.member::regrole)
       FROM (SELECT roleid, member, bool_or(admin_option) AS adm FROM pg_auth_members GROUP BY 1, 2) a
       LEFT JOIN managed g ON g.oid = a.roleid LEFT JOIN managed u ON u.oid = a.member
       WHERE (g.oid IS NOT NULL OR u.oid IS NOT NULL)
         AND NOT coalesce((g.kind = 'owner' AND u.kind = 'migrator')
                       OR (g.kind = 'rw' AND u.kind = 'service login' AND u.schema = g.schema)
                       OR (g.kind = 'migrator' AND u.kind = 'deployer login'), false)""",
    """SELECT 1, coalesce(g.schema, u.schema), 'membership option',
              format('%s is a member of %s WITH ADMIN OPTION, expected without', u.rolname, g.rolname),
              format('REVOKE ADMIN OPTION FOR %I FROM %I CASCADE', g.rolname, u.rolname)
       FROM (SELECT roleid, member FROM pg_auth_members GROUP BY 1, 2 HAVING bool_or(admin_option)) a
       JOIN managed g ON g.oid = a.roleid JOIN managed u ON u.oid = a.member
       WHERE (g.kind = 'owner' AND u.kind = 'migrator')
          OR (g.kind = 'rw' AND u.kind = 'service login' AND u.schema = g.schema)
          OR (g.kind = 'migrator' AND u.kind = 'deployer login')""",
    """SELECT 1, coalesce(g.schema, u.schema), 'missing membership',
              format('%s is not a member of %s', u.rolname, g.rolname),
              format('GRANT %I TO %I', g.rolname, u.rolname)
       FROM managed g JOIN managed u ON (g.kind = 'owner' AND u.kind = 'migrator')
                                     OR (g.kind = 'rw' AND u.kind = 'service login' AND u.schema = g.schema)
                                     OR (g.kind = 'migrator' AND u.kind = 'deployer login')
       WHERE NOT EXISTS (SELECT FROM pg_auth_members a WHERE a.roleid = g.oid AND a.member = u.oid)""",
    # ownership: the service schemas, everything in them (extension members and sequences that
    # follow their table aside) and the version tables
    """SELECT 1, s.schema, 'wrong owner',
              format('schema %I is owned by %s, expected %s', s.nspname, s.nspowner::regrole, s.owner),
              format('ALTER SCHEMA %I OWNER TO %I', s.nspname, s.owner)
       FROM service_ns s WHERE s.nspowner::regrole::text <> s.owner""",
    """SELECT 1, s.schema, 'wrong owner',
              format('%s %s is owned by %s, expected %s', lower(k.word), c.oid::regclass, c.relowner::regrole, s.owner),
              format('ALTER %s %s OWNER TO %I', k.word, c.oid::regclass, s.owner)
       FROM pg_class c JOIN service_ns s ON s.oid = c.relnamespace
       JOIN (VALUES ('r', 'TABLE'), ('p', 'TABLE'), ('v', 'VIEW'), ('m', 'MATERIALIZED VIEW'),
                    ('f', 'FOREIGN TABLE'), ('S', 'SEQUENCE')) k(relkind, word) ON k.relkind = c.relkind
       WHERE c.relowner::regrole::text <> s.owner
         -- an extension's member, or a sequence owned by its table (ALTER TABLE ... OWNER carries it);
         -- not a partitioned table (its key columns are an internal dependency on itself) nor a
         -- partition (an automatic one on its parent): ALTER TABLE ... OWNER does not recurse to those
         AND NOT EXISTS (SELECT FROM pg_depend d WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid
                         AND (d.deptype = 'e' OR (c.relkind = 'S' AND d.deptype IN ('a', 'i'))))""",
    """SELECT 1, s.schema, 'wrong owner',
              format('function %s is owned by %s, expected %s', p.oid::regprocedure, p.proowner::regrole, s.owner),
              format('ALTER ROUTINE %s OWNER TO %I', p.oid::regprocedure, s.owner)
       FROM pg_proc p JOIN service_ns s ON s.oid = p.pronamespace
       WHERE p.proowner::regrole::text <> s.owner AND p.prokind <> 'a' AND NOT p.prosecdef
         AND NOT EXISTS (SELECT FROM pg_depend d WHERE d.classid = 'pg_proc'::regclass AND d.objid = p.oid
                         AND d.deptype = 'e')""",
    """SELECT 1, s.schema, 'wrong owner',
              format('type %s is owned by %s, expected %s', t.oid::regtype, t.typowner::regrole, s.owner),
              format('ALTER TYPE %s OWNER TO %I', t.oid::regtype, s.owner)
       FROM pg_type t JOIN service_ns s ON s.oid = t.typnamespace
       WHERE t.typtype IN ('e', 'd') AND t.typowner::regrole::text <> s.owner
         AND NOT EXISTS (SELECT FROM pg_depend d WHERE d.classid = 'pg_type'::regclass AND d.objid = t.oid
                         AND d.deptype = 'e')""",
    """SELECT 1, k.schema, 'wrong owner',
              format('%s %s is owned by %s, expected %s', k.word, c.oid::regclass, c.relowner::regrole, k.owner),
              format('ALTER TABLE %s OWNER TO %I', c.oid::regclass, k.owner)
       FROM kept k JOIN pg_class c ON c.oid = to_regclass(format('%I.%I', {alembic}::text, k.relname))
       WHERE c.relowner::regrole::text <> k.owner""",
    """SELECT 1, k.schema, 'missing ' || k.word, format('%I.%I', {alembic}::text, k.relname), NULL
       FROM kept k WHERE to_regclass(format('%I.%I', {alembic}::text, k.relname)) IS NULL""",
    # the record's function: gamedb_history's (it runs as its owner: SECURITY DEFINER)
    """SELECT 1, f.schema, 'wrong owner',
              format('function %s is owned by %s, expected %s', f.fn::regprocedure, p.proowner::regrole,
                     {history_owner}::text),
              format('ALTER FUNCTION %s OWNER TO %I', f.fn::regprocedure, {history_owner}::text)
       FROM record_fn f JOIN pg_proc p ON p.oid = f.fn WHERE p.proowner::regrole::text <> {history_owner}""",
    """SELECT 1, d.schema, 'missing history function',
              format('%I.%I(text, text, text, text, text)', {alembic}::text, 'gamedb_record_' || d.schema), NULL
       FROM record_fn d WHERE d.fn IS NULL""",
    """SELECT 1, NULL, 'missing schema', {alembic}::text, NULL
       WHERE NOT EXISTS (SELECT FROM pg_namespace WHERE nspname = {alembic})""",
    # the database: an owner may create schemas and holds every database privilege
    """SELECT 1, NULL, 'wrong owner',
              format('database %I is owned by %s, a role gamedb manages; expected an administrator''s role'
                     ' (roles apply gives it to the role running it)', a.datname, a.datdba::regrole),
              format('ALTER DATABASE %I OWNER TO CURRENT_USER', a.datname)
       FROM admin a WHERE a.datdba <> a.expected""",
    # schemas alembic and extensions (and public): their owner may drop the version and checksum tables,
    # or put functions ahead of pg_catalog on every migration's search_path. The database's owner, a
    # superuser or pg_database_owner may own them; a role gamedb manages (or any other) may not.
    """SELECT 1, NULL, 'wrong owner',
              format('schema %I is owned by %s, expected %s', n.nspname, n.nspowner::regrole,
                     CASE WHEN n.nspname = 'public' THEN 'pg_database_owner' ELSE a.expected::regrole::text END),
              format('ALTER SCHEMA %I OWNER TO %s', n.nspname,
                     CASE WHEN n.nspname = 'public' THEN 'pg_database_owner' ELSE a.expected::regrole::text END)
       FROM pg_namespace n CROSS JOIN admin a
       WHERE n.nspname IN ({alembic}, {extensions}, 'public')
         AND (n.nspowner IN (SELECT oid FROM managed)
              OR NOT (n.nspowner IN (a.expected, 'pg_database_owner'::regrole)
                      OR (SELECT rolsuper FROM pg_roles WHERE oid = n.nspowner)))""",
    # phase 0 refuses the whole apply: a SECURITY DEFINER function in a service schema that its owner
    # does not own. Taking it over would hand every app login of the schema the owner's rights through
    # a body nobody reviewed (and keeping its owner, a superuser's); only a person can decide.
    """SELECT 0, s.schema, 'security definer function not owned by the schema''s owner',
              format('function %s is SECURITY DEFINER and owned by %s, expected %s', p.oid::regprocedure,
                     p.proowner::regrole, s.owner),
              format('function %s is SECURITY DEFINER and owned by %s, not %s: gamedb does not take it over'
                     ' (its body would run with %s''s rights for every app login of schema %s); drop it,'
                     ' or after review run ALTER ROUTINE %s OWNER TO %I', p.oid::regprocedure,
                     p.proowner::regrole, s.owner, s.owner, s.schema, p.oid::regprocedure, s.owner)
       FROM pg_proc p JOIN service_ns s ON s.oid = p.pronamespace
       WHERE p.prosecdef AND p.proowner::regrole::text <> s.owner
         AND NOT EXISTS (SELECT FROM pg_depend d WHERE d.classid = 'pg_proc'::regclass AND d.objid = p.oid
                         AND d.deptype = 'e')""",
    # columns: the model grants nothing per column, so every column privilege is beyond it
    """SELECT 2, r.schema, 'privilege beyond the model',
              format('%s has %s%s on column %s.%I, expected not',
                     CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE a.grantee::regrole::text END, a.privilege_type,
                     CASE WHEN a.is_grantable THEN ' WITH GRANT OPTION' ELSE '' END, c.oid::regclass, t.attname),
              format('REVOKE %s (%I) ON TABLE %s FROM %s', a.privilege_type, t.attname, c.oid::regclass,
                     CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE a.grantee::regrole::text END)
       FROM pg_attribute t JOIN governed_rel r ON r.oid = t.attrelid JOIN pg_class c ON c.oid = t.attrelid
       CROSS JOIN LATERAL aclexplode(t.attacl) a
       WHERE t.attacl IS NOT NULL AND t.attnum > 0 AND NOT t.attisdropped AND a.grantee <> c.relowner""",
    # settings stored for a managed role: exactly the login's timeouts in this database, nothing else
    """SELECT 2, m.schema, 'login setting',
              format('%s has %s=%s, expected %s', m.rolname, e.key,
                     coalesce((SELECT split_part(c, '=', 2) FROM unnest(s.setconfig) c
                               WHERE split_part(c, '=', 1) = e.key), 'unset'), e.value),
              format('ALTER ROLE %I IN DATABASE %I SET %s = %L', m.rolname, current_database(), e.key, e.value)
       FROM managed m CROSS JOIN LATERAL jsonb_each_text(m.settings) e
       LEFT JOIN pg_db_role_setting s ON s.setrole = m.oid
            AND s.setdatabase = (SELECT oid FROM pg_database WHERE datname = current_database())
       WHERE NOT (coalesce(s.setconfig, '{{}}') @> ARRAY[e.key || '=' || e.value])""",
    """SELECT 2, m.schema, 'role setting beyond the model',
              format('%s has %s=%s %s, expected none', m.rolname, split_part(c, '=', 1), split_part(c, '=', 2),
                     CASE WHEN s.setdatabase = 0 THEN 'in every database' ELSE 'in this database' END),
              format('ALTER ROLE %I %s RESET %s', m.rolname,
                     CASE WHEN s.setdatabase = 0 THEN '' ELSE format('IN DATABASE %I', current_database()) END,
                     split_part(c, '=', 1))
       FROM managed m JOIN pg_db_role_setting s ON s.setrole = m.oid
            AND s.setdatabase IN (0, (SELECT oid FROM pg_database WHERE datname = current_database()))
       CROSS JOIN LATERAL unnest(s.setconfig) c
       WHERE m.settings IS NOT NULL AND (s.setdatabase = 0 OR NOT m.settings ? split_part(c, '=', 1))""",
]

# Privileges: one pattern for every kind of object. {objects} yields schema, label (how the line
# names it), target (what GRANT/REVOKE ... ON takes), owner (oid) and acl (aclitem[]);
# {governed} says which grantees the model speaks for; {allowed} which (grantee, privilege) it grants
# (NULL for PUBLIC, which no managed row matches: hence the coalesce).
_ACL_PART = """
SELECT 2, o.schema, 'privilege beyond the model',
       format('%s has %s%s on %s, expected %s', CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE a.grantee::regrole::text END,
              a.privilege_type, CASE WHEN a.is_grantable THEN ' WITH GRANT OPTION' ELSE '' END, o.label,
              CASE WHEN coalesce(({allowed}), false) THEN 'without GRANT OPTION' ELSE 'not' END),
       format('REVOKE %s%s ON %s FROM %s', CASE WHEN coalesce(({allowed}), false) THEN 'GRANT OPTION FOR ' ELSE '' END,
              a.privilege_type, o.target, CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE a.grantee::regrole::text END)
FROM ({objects}) o(schema, label, target, owner, acl, relkind) CROSS JOIN LATERAL aclexplode(o.acl) a
LEFT JOIN managed g ON g.oid = a.grantee
WHERE a.grantee <> o.owner AND ({governed}) AND (NOT coalesce(({allowed}), false) OR a.is_grantable)
"""
# Privileges the model grants that are missing: {wanted} yields schema, label, target, grantee, privilege.
_MISSING_PART = """
SELECT 2, w.schema, 'missing privilege', format('%s lacks %s on %s', w.grantee, w.privilege, w.label),
       format('GRANT %s ON %s TO %I', w.privilege, w.target, w.grantee)
FROM ({wanted}) w(schema, label, target, grantee, privilege, acl) WHERE NOT EXISTS (
  SELECT FROM aclexplode(w.acl) a WHERE a.grantee = w.grantee::regrole AND a.privilege_type = w.privilege)
"""

_ALL_GRANTEES = "true"
_PUBLIC_AND_MANAGED = "a.grantee = 0 OR g.oid IS NOT NULL"

_ACLS = [
    (  # the current database: CONNECT for migrator and each rw, CREATE (CREATE SCHEMA IF NOT EXISTS) and
        # TEMPORARY (REFRESH MATERIALIZED VIEW CONCURRENTLY) for each owner
        """SELECT NULL::text AS schema, format('database %I', datname) AS label,
                  format('DATABASE %I', datname) AS target,
                  datdba AS owner, coalesce(datacl, acldefault('d', datdba)) AS acl, NULL::"char"
           FROM pg_database WHERE datname = current_database()""",
        _PUBLIC_AND_MANAGED,
        "(g.kind IN ('migrator', 'rw') AND a.privilege_type = 'CONNECT')"
        " OR (g.kind = 'owner' AND a.privilege_type IN ('CREATE', 'TEMPORARY'))",
    ),
    (  # schema public: PUBLIC may look in (USAGE), no one gamedb manages may create there
        """SELECT NULL::text, 'schema public', 'SCHEMA public', nspowner,
                  coalesce(nspacl, acldefault('n', nspowner)), NULL::"char"
           FROM pg_namespace WHERE nspname = 'public'""",
        _PUBLIC_AND_MANAGED,
        "a.grantee = 0 AND a.privilege_type = 'USAGE'",
    ),
    (  # schema alembic: USAGE for migrator, gamedb_history and the owners, for nobody else
        """SELECT NULL::text, format('schema %I', nspname), format('SCHEMA %I', nspname), nspowner,
                  coalesce(nspacl, acldefault('n', nspowner)), NULL::"char"
           FROM pg_namespace WHERE nspname = {alembic}""",
        _ALL_GRANTEES,
        "g.kind IN ('migrator', 'history owner', 'owner') AND a.privilege_type = 'USAGE'",
    ),
    (  # schema extensions: every role may use the declared extensions (USAGE to PUBLIC), nothing more
        """SELECT NULL::text, format('schema %I', nspname), format('SCHEMA %I', nspname), nspowner,
                  coalesce(nspacl, acldefault('n', nspowner)), NULL::"char"
           FROM pg_namespace WHERE nspname = {extensions}""",
        _ALL_GRANTEES,
        "a.grantee = 0 AND a.privilege_type = 'USAGE'",
    ),
    (  # version and checksum tables: the owner's own, SELECT for migrator (status, upgrade-all), nothing for others
        """SELECT k.schema, format('%s %s', k.word, c.oid::regclass), format('TABLE %s', c.oid::regclass),
                  c.relowner, coalesce(c.relacl, acldefault('r', c.relowner)), NULL::"char"
           FROM kept k JOIN pg_class c ON c.oid = to_regclass(format('%I.%I', {alembic}::text, k.relname))""",
        _ALL_GRANTEES,
        "a.privilege_type = 'SELECT' AND (g.kind = 'migrator'"
        " OR (g.kind = 'owner' AND g.schema = o.schema AND o.label LIKE 'checksum table %'))",
    ),
    (  # the record's function: EXECUTE for the schema's owner alone (what a migration runs as)
        """SELECT f.schema, format('function %s', f.fn::regprocedure), format('FUNCTION %s', f.fn::regprocedure),
                  p.proowner, coalesce(p.proacl, acldefault('f', p.proowner)), NULL::"char"
           FROM record_fn f JOIN pg_proc p ON p.oid = f.fn""",
        _ALL_GRANTEES,
        "g.kind = 'owner' AND g.schema = o.schema AND a.privilege_type = 'EXECUTE'",
    ),
    (  # service schemas: USAGE for their rw, and for migrator (reflection by status / check-all)
        """SELECT s.schema, format('schema %I', s.nspname), format('SCHEMA %I', s.nspname), s.nspowner,
                  coalesce(n.nspacl, acldefault('n', s.nspowner)), NULL::"char"
           FROM service_ns s JOIN pg_namespace n ON n.oid = s.oid""",
        _ALL_GRANTEES,
        "((g.kind = 'rw' AND g.schema = o.schema) OR g.kind = 'migrator') AND a.privilege_type = 'USAGE'",
    ),
    (  # tables, views, sequences of the service schemas
        """SELECT s.schema,
                  format('%s %s', CASE WHEN c.relkind = 'S' THEN 'sequence' ELSE 'table' END, c.oid::regclass),
                  format('%s %s', CASE WHEN c.relkind = 'S' THEN 'SEQUENCE' ELSE 'TABLE' END, c.oid::regclass),
                  c.relowner,
                  coalesce(c.relacl, acldefault(CASE WHEN c.relkind = 'S' THEN 's' ELSE 'r' END::"char", c.relowner)),
                  c.relkind
           FROM pg_class c JOIN service_ns s ON s.oid = c.relnamespace
           WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f', 'S')""",
        _ALL_GRANTEES,
        "g.kind = 'rw' AND g.schema = o.schema AND (CASE WHEN o.relkind = 'S'"
        " THEN a.privilege_type IN ('USAGE', 'SELECT')"
        " ELSE a.privilege_type IN ('SELECT', 'INSERT', 'UPDATE', 'DELETE') END)",
    ),
    (  # functions and procedures of the service schemas (not extension members)
        """SELECT s.schema, format('function %s', p.oid::regprocedure), format('ROUTINE %s', p.oid::regprocedure),
                  p.proowner, coalesce(p.proacl, acldefault('f', p.proowner)), NULL::"char"
           FROM pg_proc p JOIN service_ns s ON s.oid = p.pronamespace
           WHERE p.prokind IN ('f', 'p') AND NOT EXISTS (SELECT FROM pg_depend d
                 WHERE d.classid = 'pg_proc'::regclass AND d.objid = p.oid AND d.deptype = 'e')""",
        _ALL_GRANTEES,
        "g.kind = 'rw' AND g.schema = o.schema AND a.privilege_type = 'EXECUTE'",
    ),
    (  # types of the service schemas: PUBLIC keeps its built-in USAGE, nobody gets more
        """SELECT s.schema, format('type %s', t.oid::regtype), format('TYPE %s', t.oid::regtype), t.typowner,
                  coalesce(t.typacl, acldefault('T', t.typowner)), NULL::"char"
           FROM pg_type t JOIN service_ns s ON s.oid = t.typnamespace
           WHERE t.oid IN (SELECT oid FROM pg_type WHERE typtype IN ('e', 'd', 'r')
                           UNION ALL SELECT reltype FROM pg_class WHERE relkind = 'c')
             AND NOT EXISTS (SELECT FROM pg_depend d WHERE d.classid = 'pg_type'::regclass AND d.objid = t.oid
                             AND d.deptype = 'e')""",
        _ALL_GRANTEES,
        "a.grantee = 0 AND a.privilege_type = 'USAGE'",
    ),
    (  # server parameters (PostgreSQL 15+): SET / ALTER SYSTEM on session_replication_role turns off
        # foreign keys and triggers; no role gamedb manages (nor PUBLIC) gets any
        """SELECT NULL::text, format('parameter %s', parname), format('PARAMETER %I', parname), 10::oid,
                  paracl, NULL::"char"
           FROM pg_parameter_acl WHERE paracl IS NOT NULL""",
        _PUBLIC_AND_MANAGED,
        "false",
    ),
    (  # large objects: gamedb uses none; no grant on one to PUBLIC or a role gamedb manages
        """SELECT NULL::text, format('large object %s', oid), format('LARGE OBJECT %s', oid), lomowner,
                  coalesce(lomacl, acldefault('L', lomowner)), NULL::"char"
           FROM pg_largeobject_metadata""",
        _PUBLIC_AND_MANAGED,
        "false",
    ),
    (  # languages, foreign-data wrappers, foreign servers, tablespaces: nothing for a role gamedb manages
        # (PUBLIC's built-in USAGE on trusted languages is the server's business: it needs CREATE somewhere)
        """SELECT NULL::text, format('language %I', lanname), format('LANGUAGE %I', lanname), lanowner,
                  coalesce(lanacl, acldefault('l', lanowner)), NULL::"char" FROM pg_language
           UNION ALL
           SELECT NULL, format('foreign-data wrapper %I', fdwname), format('FOREIGN DATA WRAPPER %I', fdwname),
                  fdwowner, coalesce(fdwacl, acldefault('F', fdwowner)), NULL FROM pg_foreign_data_wrapper
           UNION ALL
           SELECT NULL, format('foreign server %I', srvname), format('FOREIGN SERVER %I', srvname), srvowner,
                  coalesce(srvacl, acldefault('S', srvowner)), NULL FROM pg_foreign_server
           UNION ALL
           SELECT NULL, format('tablespace %I', spcname), format('TABLESPACE %I', spcname), spcowner,
                  coalesce(spcacl, acldefault('t', spcowner)), NULL FROM pg_tablespace""",
        "g.oid IS NOT NULL",
        "false",
    ),
]

_WANTED = [
    """SELECT NULL::text, format('database %I', d.datname), format('DATABASE %I', d.datname),
              m.rolname, p.privilege, coalesce(d.datacl, acldefault('d', d.datdba))
       FROM pg_database d, managed m
       JOIN (VALUES ('migrator', 'CONNECT'), ('rw', 'CONNECT'), ('owner', 'CREATE'), ('owner', 'TEMPORARY'))
         p(kind, privilege)
         ON p.kind = m.kind
       WHERE d.datname = current_database()""",
    """SELECT NULL::text, format('schema %I', n.nspname), format('SCHEMA %I', n.nspname), m.rolname, 'USAGE',
              coalesce(n.nspacl, acldefault('n', n.nspowner))
       FROM pg_namespace n, managed m
       WHERE n.nspname = {alembic} AND m.kind IN ('migrator', 'history owner', 'owner')""",
    """SELECT k.schema, format('%s %s', k.word, c.oid::regclass), format('TABLE %s', c.oid::regclass),
              m.rolname, 'SELECT', coalesce(c.relacl, acldefault('r', c.relowner))
       FROM kept k JOIN pg_class c ON c.oid = to_regclass(format('%I.%I', {alembic}::text, k.relname))
       CROSS JOIN managed m WHERE m.kind = 'migrator'
          OR (m.kind = 'owner' AND m.schema = k.schema AND k.word = 'checksum table')""",
    """SELECT f.schema, format('function %s', f.fn::regprocedure), format('FUNCTION %s', f.fn::regprocedure),
              f.owner, 'EXECUTE', coalesce(p.proacl, acldefault('f', p.proowner))
       FROM record_fn f JOIN pg_proc p ON p.oid = f.fn WHERE to_regrole(f.owner) IS NOT NULL""",
    """SELECT s.schema, format('schema %I', n.nspname), format('SCHEMA %I', n.nspname), m.rolname, 'USAGE',
              coalesce(n.nspacl, acldefault('n', n.nspowner))
       FROM service_ns s JOIN pg_namespace n ON n.oid = s.oid
       JOIN managed m ON (m.kind = 'rw' AND m.schema = s.schema) OR m.kind = 'migrator'
       WHERE n.nspowner::regrole::text = s.owner""",
    """SELECT s.schema, format('%s %s', CASE WHEN c.relkind = 'S' THEN 'sequence' ELSE 'table' END, c.oid::regclass),
              format('%s %s', CASE WHEN c.relkind = 'S' THEN 'SEQUENCE' ELSE 'TABLE' END, c.oid::regclass),
              s.rw, p.privilege,
              coalesce(c.relacl, acldefault(CASE WHEN c.relkind = 'S' THEN 's' ELSE 'r' END::"char", c.relowner))
       FROM pg_class c JOIN service_ns s ON s.oid = c.relnamespace
       JOIN (VALUES ('S', 'USAGE'), ('S', 'SELECT'), ('t', 'SELECT'), ('t', 'INSERT'), ('t', 'UPDATE'),
                    ('t', 'DELETE')) p(kind, privilege)
         ON p.kind = CASE WHEN c.relkind = 'S' THEN 'S' ELSE 't' END
       WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f', 'S') AND to_regrole(s.rw) IS NOT NULL
         AND c.relowner::regrole::text = s.owner""",
    """SELECT s.schema, format('function %s', p.oid::regprocedure), format('ROUTINE %s', p.oid::regprocedure),
              s.rw, 'EXECUTE', coalesce(p.proacl, acldefault('f', p.proowner))
       FROM pg_proc p JOIN service_ns s ON s.oid = p.pronamespace
       WHERE p.prokind IN ('f', 'p') AND to_regrole(s.rw) IS NOT NULL AND p.proowner::regrole::text = s.owner
         AND NOT EXISTS (SELECT FROM pg_depend d
             WHERE d.classid = 'pg_proc'::regclass AND d.objid = p.oid AND d.deptype = 'e')""",
]

# Default privileges of managed roles. Only an owner has any, role-wide (no IN SCHEMA): rw gets
# DML on tables, USAGE/SELECT on sequences, EXECUTE on functions, USAGE on schemas; migrator USAGE
# on schemas; PUBLIC keeps its built-in USAGE on types and nothing else (no EXECUTE on functions).
_DEFAULT_OBJECTS = """
SELECT m.schema, m.rolname AS role, 0::oid AS ns, t.objtype,
       coalesce(d.defaclacl, acldefault(CASE t.objtype WHEN 'S' THEN 's' ELSE t.objtype END::"char", m.oid)) AS acl,
       m.oid AS owner, m.kind, false AS only_managed
FROM managed m
CROSS JOIN (VALUES ('r'::"char"), ('S'), ('f'), ('n')) t(objtype)
LEFT JOIN pg_default_acl d ON d.defaclrole = m.oid AND d.defaclnamespace = 0 AND d.defaclobjtype = t.objtype
WHERE m.kind = 'owner'
UNION ALL
SELECT m.schema, m.rolname, d.defaclnamespace, d.defaclobjtype, d.defaclacl, m.oid, m.kind, false
FROM pg_default_acl d JOIN managed m ON m.oid = d.defaclrole
WHERE m.kind <> 'owner' OR d.defaclnamespace <> 0 OR d.defaclobjtype NOT IN ('r', 'S', 'f', 'n')
UNION ALL
-- any other role: in a service schema the model has no default privilege at all (what it would give
-- is reported whoever gives it); role-wide, what it would give PUBLIC is its business, a managed role's is not
SELECT s.schema, r.rolname, d.defaclnamespace, d.defaclobjtype, d.defaclacl, r.oid, NULL, d.defaclnamespace = 0
FROM pg_default_acl d JOIN pg_roles r ON r.oid = d.defaclrole
LEFT JOIN service_ns s ON s.oid = d.defaclnamespace
WHERE r.oid NOT IN (SELECT oid FROM managed) AND (s.oid IS NOT NULL OR d.defaclnamespace = 0)
"""
_DEFAULT_ALLOWED = """
o.ns = 0 AND o.kind = 'owner' AND (
     (a.grantee = 0 AND o.objtype = 'T' AND a.privilege_type = 'USAGE')
  OR (g.kind = 'rw' AND g.schema = o.schema AND (
          (o.objtype = 'r' AND a.privilege_type IN ('SELECT', 'INSERT', 'UPDATE', 'DELETE'))
       OR (o.objtype = 'S' AND a.privilege_type IN ('USAGE', 'SELECT'))
       OR (o.objtype = 'f' AND a.privilege_type = 'EXECUTE')
       OR (o.objtype = 'n' AND a.privilege_type = 'USAGE')))
  OR (g.kind = 'migrator' AND o.objtype = 'n' AND a.privilege_type = 'USAGE'))
"""
_DEFAULT_PART = """
SELECT 2, o.schema, 'default privilege beyond the model',
       format('new %s of %s%s would give %s %s%s, expected %s', w.word, o.role,
              CASE WHEN o.ns <> 0 THEN format(' in schema %s', o.ns::regnamespace) ELSE '' END,
              CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE a.grantee::regrole::text END, a.privilege_type,
              CASE WHEN a.is_grantable THEN ' WITH GRANT OPTION' ELSE '' END,
              CASE WHEN coalesce(({allowed}), false) THEN 'without GRANT OPTION' ELSE 'not' END),
       format('ALTER DEFAULT PRIVILEGES FOR ROLE %I%s REVOKE %s%s ON %s FROM %s', o.role,
              CASE WHEN o.ns <> 0 THEN format(' IN SCHEMA %s', o.ns::regnamespace) ELSE '' END,
              CASE WHEN coalesce(({allowed}), false) THEN 'GRANT OPTION FOR ' ELSE '' END, a.privilege_type,
              upper(w.word),
              CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE a.grantee::regrole::text END)
FROM ({objects}) o CROSS JOIN LATERAL aclexplode(o.acl) a
JOIN (VALUES ('r'::"char", 'tables'), ('S', 'sequences'), ('f', 'functions'), ('T', 'types'), ('n', 'schemas'),
             ('L', 'large objects')) w(objtype, word) ON w.objtype = o.objtype
LEFT JOIN managed g ON g.oid = a.grantee
WHERE a.grantee <> o.owner AND (NOT coalesce(({allowed}), false) OR a.is_grantable)
  AND (NOT o.only_managed OR g.oid IS NOT NULL)
UNION ALL
SELECT 2, m.schema, 'missing default privilege',
       format('new %s of %s would not give %s %s', w.word, m.rolname, r.rolname, p.privilege),
       format('ALTER DEFAULT PRIVILEGES FOR ROLE %I GRANT %s ON %s TO %I', m.rolname, p.privilege, upper(w.word),
              r.rolname)
FROM managed m JOIN managed r ON (r.kind = 'rw' AND r.schema = m.schema) OR r.kind = 'migrator'
JOIN (VALUES ('rw', 'r'::"char", 'tables', 'SELECT'), ('rw', 'r', 'tables', 'INSERT'), ('rw', 'r', 'tables', 'UPDATE'),
             ('rw', 'r', 'tables', 'DELETE'), ('rw', 'S', 'sequences', 'USAGE'), ('rw', 'S', 'sequences', 'SELECT'),
             ('rw', 'f', 'functions', 'EXECUTE'), ('rw', 'n', 'schemas', 'USAGE'),
             ('migrator', 'n', 'schemas', 'USAGE')) w(kind, objtype, word, privilege) ON w.kind = r.kind
CROSS JOIN LATERAL (SELECT w.privilege) p
WHERE m.kind = 'owner' AND NOT EXISTS (
  SELECT FROM pg_default_acl d CROSS JOIN LATERAL aclexplode(d.defaclacl) a
  WHERE d.defaclrole = m.oid AND d.defaclnamespace = 0 AND d.defaclobjtype = w.objtype
    AND a.grantee = r.oid AND a.privilege_type = w.privilege)
"""


def deviations_query(arrays: dict[str, sql.Composable], deployer: sql.Composable) -> sql.Composable:
    """Every deviation from the model as rows (phase, schema, kind, detail, fix) for the declared schemas."""
    names = {
        **arrays,
        "deployer": deployer,
        "migrator": sql.Literal(MIGRATOR),
        "history_owner": sql.Literal(HISTORY_OWNER),
        "alembic": sql.Literal(VERSION_TABLE_SCHEMA),
        "extensions": sql.Literal(EXTENSIONS_SCHEMA),
    }
    parts = [sql.SQL(p).format(**names) for p in _PARTS]
    for objects, governed, allowed in _ACLS:
        parts.append(
            sql.SQL(_ACL_PART).format(
                objects=sql.SQL(objects).format(**names), governed=sql.SQL(governed), allowed=sql.SQL(allowed)
            )
        )
    for wanted in _WANTED:
        parts.append(sql.SQL(_MISSING_PART).format(wanted=sql.SQL(wanted).format(**names)))
    parts.append(sql.SQL(_DEFAULT_PART).format(objects=sql.SQL(_DEFAULT_OBJECTS), allowed=sql.SQL(_DEFAULT_ALLOWED)))
    parts += [sql.SQL(p).format(**names) for p in REPORTED_ONLY]
    body = sql.SQL("\nUNION ALL\n").join(sql.SQL("({})").format(p) for p in parts)
    return sql.SQL("WITH {model}\nSELECT * FROM (\n{body}\n) AS deviation(phase, schema, kind, detail, fix)").format(
        model=sql.SQL(_MODEL).format(**names), body=body
    )


# The query is large: its estimated cost crosses jit_above_cost, and compiling it took 2.2 s of a 3.5 s
# run at 100 schemas x 50 tables (0.9 s without). Every run of it turns JIT off for its transaction.
JIT_OFF = "SELECT set_config('jit', 'off', true)"

# Phase 0 rows are what apply refuses to repair: the first one stops the whole transaction (roles
# apply runs in one), with its fix column as the one line that says why and what a person can do.
REFUSAL_BODY = """
DECLARE gamedb_refusal record;  -- a name the query's own aliases never use
BEGIN
  PERFORM set_config('jit', 'off', true);  -- see JIT_OFF
  FOR gamedb_refusal IN SELECT fix FROM ({query}) d WHERE d.phase = 0 ORDER BY 1 LIMIT 1 LOOP
    RAISE EXCEPTION '%', gamedb_refusal.fix USING ERRCODE = {sqlstate};
  END LOOP;
END;
"""

# Executes the repair of every row of the deviations query in one phase: the statements `roles check`
# would have reported as deviations. Phase 1 (ownership, attributes, memberships) runs before
# phase 2 (privileges, default privileges, settings), which it changes.
REPAIR_BODY = """
DECLARE gamedb_repair record;  -- a name the query's own aliases never use
BEGIN
  PERFORM set_config('jit', 'off', true);  -- see JIT_OFF
  FOR gamedb_repair IN SELECT DISTINCT fix FROM ({query}) d WHERE d.phase = {phase} AND d.fix IS NOT NULL
                       ORDER BY 1 LOOP
    EXECUTE gamedb_repair.fix;
  END LOOP;
END;
"""


def repair_statements(schemas: list[SchemaInfo]) -> list[Statement]:
    """Revoke, reset and re-grant whatever differs from the model: what `roles check` reports."""
    query = deviations_query(schema_arrays(schemas), deployer_settings_json())
    refusal = do_block(sql.SQL(REFUSAL_BODY).format(query=query, sqlstate=sql.Literal(NOT_MANAGED_SQLSTATE)))
    return [refusal] + [
        do_block(sql.SQL(REPAIR_BODY).format(query=query, phase=sql.Literal(phase))) for phase in (1, 2)
    ]


def schema_arrays(schemas: list[SchemaInfo]) -> dict[str, sql.Composable]:
    """The declared schemas as parallel array literals for the deviations query."""
    return {
        "names": sql.Literal([i.name for i in schemas]),
        "owners": sql.Literal([i.owner_role for i in schemas]),
        "rws": sql.Literal([i.rw_role for i in schemas]),
        "version_tables": sql.Literal([i.version_table for i in schemas]),
        "checksum_tables": sql.Literal([i.checksum_table for i in schemas]),
        "settings": sql.Literal([json.dumps(session_settings(i), sort_keys=True) for i in schemas]),
    }


def deployer_settings_json() -> sql.Composable:
    """The deployer logins' settings as the jsonb literal the query compares with."""
    return sql.Literal(json.dumps(DEPLOYER_SETTINGS, sort_keys=True))
