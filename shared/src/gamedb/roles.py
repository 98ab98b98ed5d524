"""Least-privilege roles for every schema: the model, as SQL a DBA can read, applied idempotently.

- `migrator` NOLOGIN NOINHERIT: member of every `<s>_owner`; deployer logins are members of it and
  get nothing until a migration does SET ROLE <s>_owner (they may read the version tables).
- `<s>_owner` NOLOGIN: owns schema `<s>`, everything in it and `alembic.alembic_version_<s>`.
- `<s>_rw` NOLOGIN: USAGE on `<s>`; SELECT/INSERT/UPDATE/DELETE on its tables, USAGE/SELECT on its
  sequences, EXECUTE on its functions, through role-wide default privileges of `<s>_owner` (they
  survive `downgrade base`). No TRUNCATE, TEMP, CREATE, other schemas or version tables.
- Service logins are members of one `<s>_rw` and carry the schema's session timeouts themselves
  (role settings are not inherited through membership).

Every name reaching SQL is validated first and then quoted (psycopg.sql.Identifier / Literal).
"""

from __future__ import annotations

from collections.abc import Iterable

from psycopg import sql

from gamedb.discovery import SchemaInfo
from gamedb.extensions import extension_statements
from gamedb.names import VERSION_TABLE_SCHEMA

MIGRATOR = "migrator"
ROLE_ATTRIBUTES = "NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS"
TABLE_PRIVILEGES = ("SELECT", "INSERT", "UPDATE", "DELETE")
SEQUENCE_PRIVILEGES = ("USAGE", "SELECT")
DEPLOYER_SETTINGS = {"lock_timeout": "2s", "statement_timeout": "30min"}

Statement = sql.Composable


def _ident(*names: str) -> sql.Identifier:
    return sql.Identifier(*names)


def _do(body: sql.Composable) -> Statement:
    return sql.SQL("DO $gamedb$ BEGIN {} END $gamedb$").format(body)


def _on_database(template: str, *roles: str) -> Statement:
    """A statement about the current database, whose name the SQL need not know: format('%I')."""
    args = sql.SQL(", ").join([sql.SQL("current_database()"), *(sql.Literal(r) for r in roles)])
    return _do(sql.SQL("EXECUTE format({}, {});").format(sql.Literal(template), args))


def ensure_role(name: str, *, login: bool, inherit: bool) -> list[Statement]:
    """Create the role if missing, then enforce its attributes (an adopted role may be SUPERUSER...)."""
    attrs = sql.SQL(("LOGIN" if login else "NOLOGIN") + (" INHERIT" if inherit else " NOINHERIT"))
    return [
        _do(sql.SQL("CREATE ROLE {} {}; EXCEPTION WHEN duplicate_object THEN NULL;").format(_ident(name), attrs)),
        sql.SQL("ALTER ROLE {} {} " + ROLE_ATTRIBUTES).format(_ident(name), attrs),
    ]


def global_statements() -> list[Statement]:
    """The roles and hardening every schema relies on."""
    return [
        *ensure_role(MIGRATOR, login=False, inherit=False),
        _on_database("REVOKE ALL ON DATABASE %I FROM PUBLIC"),  # PUBLIC had CONNECT and TEMP
        _on_database("GRANT CONNECT ON DATABASE %I TO %I", MIGRATOR),
        sql.SQL("REVOKE CREATE ON SCHEMA public FROM PUBLIC"),
        sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(_ident(VERSION_TABLE_SCHEMA)),
        sql.SQL("REVOKE ALL ON SCHEMA {} FROM PUBLIC").format(_ident(VERSION_TABLE_SCHEMA)),
        # deployers read every version row (status, upgrade-all) without any SET ROLE
        sql.SQL("GRANT USAGE ON SCHEMA {} TO {}").format(_ident(VERSION_TABLE_SCHEMA), _ident(MIGRATOR)),
    ]


def schema_statements(info: SchemaInfo) -> list[Statement]:
    """Owner, rw, the schema, its objects' ownership and grants, its version table; idempotent."""
    owner, rw, schema = info.owner_role, info.rw_role, info.name
    o, r, s = _ident(owner), _ident(rw), _ident(schema)
    version_table = _ident(VERSION_TABLE_SCHEMA, info.version_table)
    return [
        *ensure_role(owner, login=False, inherit=False),
        *ensure_role(rw, login=False, inherit=False),
        sql.SQL("GRANT {} TO {}").format(o, _ident(MIGRATOR)),
        _on_database("GRANT CONNECT ON DATABASE %I TO %I", rw),
        # the init revision's CREATE SCHEMA IF NOT EXISTS checks CREATE on the database first
        _on_database("GRANT CREATE ON DATABASE %I TO %I", owner),
        _on_database("REVOKE CREATE, TEMPORARY ON DATABASE %I FROM %I", rw),
        # role-wide defaults (no IN SCHEMA): they survive DROP SCHEMA and cover a re-created schema
        sql.SQL("ALTER DEFAULT PRIVILEGES FOR ROLE {} GRANT USAGE ON SCHEMAS TO {}").format(o, r),
        sql.SQL("ALTER DEFAULT PRIVILEGES FOR ROLE {} GRANT {} ON TABLES TO {}").format(
            o, sql.SQL(", ").join(map(sql.SQL, TABLE_PRIVILEGES)), r
        ),
        sql.SQL("ALTER DEFAULT PRIVILEGES FOR ROLE {} GRANT USAGE, SELECT ON SEQUENCES TO {}").format(o, r),
        sql.SQL("ALTER DEFAULT PRIVILEGES FOR ROLE {} REVOKE EXECUTE ON FUNCTIONS FROM PUBLIC").format(o),
        sql.SQL("ALTER DEFAULT PRIVILEGES FOR ROLE {} GRANT EXECUTE ON FUNCTIONS TO {}").format(o, r),
        sql.SQL("CREATE SCHEMA IF NOT EXISTS {} AUTHORIZATION {}").format(s, o),
        sql.SQL("ALTER SCHEMA {} OWNER TO {}").format(s, o),
        _do(sql.SQL(REPAIR_BODY).format(schema=sql.Literal(schema), owner=sql.Literal(owner), rw=sql.Literal(rw))),
        sql.SQL("GRANT USAGE ON SCHEMA {} TO {}").format(s, r),
        sql.SQL("GRANT {} ON ALL TABLES IN SCHEMA {} TO {}").format(
            sql.SQL(", ").join(map(sql.SQL, TABLE_PRIVILEGES)), s, r
        ),
        sql.SQL("REVOKE TRUNCATE, REFERENCES, TRIGGER ON ALL TABLES IN SCHEMA {} FROM {}").format(s, r),
        sql.SQL("GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA {} TO {}").format(s, r),
        sql.SQL("REVOKE UPDATE ON ALL SEQUENCES IN SCHEMA {} FROM {}").format(s, r),
        sql.SQL("REVOKE EXECUTE ON ALL ROUTINES IN SCHEMA {} FROM PUBLIC").format(s),
        sql.SQL("GRANT EXECUTE ON ALL ROUTINES IN SCHEMA {} TO {}").format(s, r),
        # the version table, pre-created with Alembic's own DDL, owned by the owner, closed to rw
        sql.SQL("GRANT USAGE ON SCHEMA {} TO {}").format(_ident(VERSION_TABLE_SCHEMA), o),
        sql.SQL(
            "CREATE TABLE IF NOT EXISTS {} (version_num VARCHAR(32) NOT NULL, CONSTRAINT {} PRIMARY KEY (version_num))"
        ).format(version_table, _ident(f"{info.version_table}_pkc")),
        sql.SQL("ALTER TABLE {} OWNER TO {}").format(version_table, o),
        sql.SQL("REVOKE ALL ON TABLE {} FROM PUBLIC, {}").format(version_table, r),
        sql.SQL("GRANT SELECT ON TABLE {} TO {}").format(version_table, _ident(MIGRATOR)),
        _do(
            sql.SQL(MEMBERSHIP_BODY).format(
                owner=sql.Literal(owner),
                rw=sql.Literal(rw),
                migrator=sql.Literal(MIGRATOR),
                settings=_settings_sql(session_settings(info)),
            )
        ),
    ]


def deployer_statements() -> list[Statement]:
    """Re-apply the deployer logins' settings (members of migrator that can log in)."""
    return [
        _do(sql.SQL(DEPLOYER_BODY).format(migrator=sql.Literal(MIGRATOR), settings=_settings_sql(DEPLOYER_SETTINGS)))
    ]


def _settings_sql(settings: dict[str, str]) -> sql.Composable:
    """EXECUTE statements setting each of `settings` on login r.rolname in this database."""
    return sql.SQL(" ").join(
        sql.SQL(
            "EXECUTE format('ALTER ROLE %I IN DATABASE %I SET %s = %L', r.rolname, current_database(), {}, {});"
        ).format(sql.Literal(name), sql.Literal(value))
        for name, value in settings.items()
    )


# Memberships as the model has them: only migrator in the owner; only logins in rw; rw in nothing;
# rw's logins not in migrator or the owner, each carrying the schema's session settings.
MEMBERSHIP_BODY = """
DECLARE r record;
BEGIN
  FOR r IN SELECT m.rolname FROM pg_auth_members a JOIN pg_roles g ON g.oid = a.roleid
             JOIN pg_roles m ON m.oid = a.member WHERE g.rolname = {owner} AND m.rolname <> {migrator} LOOP
    EXECUTE format('REVOKE %I FROM %I', {owner}, r.rolname);
  END LOOP;
  FOR r IN SELECT m.rolname FROM pg_auth_members a JOIN pg_roles g ON g.oid = a.roleid
             JOIN pg_roles m ON m.oid = a.member WHERE g.rolname = {rw} AND NOT m.rolcanlogin LOOP
    EXECUTE format('REVOKE %I FROM %I', {rw}, r.rolname);
  END LOOP;
  FOR r IN SELECT g.rolname FROM pg_auth_members a JOIN pg_roles g ON g.oid = a.roleid
             JOIN pg_roles m ON m.oid = a.member WHERE m.rolname = {rw} LOOP
    EXECUTE format('REVOKE %I FROM %I', r.rolname, {rw});
  END LOOP;
  FOR r IN SELECT m.rolname FROM pg_auth_members a JOIN pg_roles g ON g.oid = a.roleid
             JOIN pg_roles m ON m.oid = a.member WHERE g.rolname = {rw} AND m.rolcanlogin LOOP
    IF pg_has_role(r.rolname, {migrator}, 'MEMBER') AND EXISTS (SELECT 1 FROM pg_auth_members a
        WHERE a.roleid = {migrator}::regrole AND a.member = r.rolname::regrole) THEN
      EXECUTE format('REVOKE %I FROM %I', {migrator}, r.rolname);
    END IF;
    {settings}
  END LOOP;
END;
"""

DEPLOYER_BODY = """
DECLARE r record;
BEGIN
  FOR r IN SELECT m.rolname FROM pg_auth_members a JOIN pg_roles g ON g.oid = a.roleid
             JOIN pg_roles m ON m.oid = a.member WHERE g.rolname = {migrator} AND m.rolcanlogin LOOP
    {settings}
  END LOOP;
END;
"""


# Runs inside a DO block with {schema}, {owner}, {rw} as literals. Hands every object of the schema
# to its owner (objects created without SET ROLE belong to whoever ran them; extension members are
# left alone) and takes back any privilege granted to a role outside the model.
REPAIR_BODY = """
DECLARE r record;
BEGIN
  FOR r IN SELECT c.oid::regclass AS obj, c.relkind FROM pg_class c
            WHERE c.relnamespace = {schema}::regnamespace AND c.relkind IN ('r','p','v','m','f','S')
              AND c.relowner <> {owner}::regrole
              AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass
                              AND d.objid = c.oid AND d.deptype IN ('e', 'a', 'i'))
            ORDER BY c.relkind = 'S' LOOP
    EXECUTE format('ALTER %s %s OWNER TO %I',
                   CASE r.relkind WHEN 'S' THEN 'SEQUENCE' WHEN 'v' THEN 'VIEW'
                                  WHEN 'm' THEN 'MATERIALIZED VIEW' WHEN 'f' THEN 'FOREIGN TABLE'
                                  ELSE 'TABLE' END, r.obj, {owner});
  END LOOP;
  FOR r IN SELECT p.oid::regprocedure AS obj FROM pg_proc p
            WHERE p.pronamespace = {schema}::regnamespace AND p.proowner <> {owner}::regrole
              AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_proc'::regclass
                              AND d.objid = p.oid AND d.deptype = 'e') LOOP
    EXECUTE format('ALTER ROUTINE %s OWNER TO %I', r.obj, {owner});
  END LOOP;
  FOR r IN SELECT t.oid::regtype AS obj FROM pg_type t
            WHERE t.typnamespace = {schema}::regnamespace AND t.typtype IN ('e', 'd')
              AND t.typowner <> {owner}::regrole
              AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_type'::regclass
                              AND d.objid = t.oid AND d.deptype = 'e') LOOP
    EXECUTE format('ALTER TYPE %s OWNER TO %I', r.obj, {owner});
  END LOOP;
  FOR r IN SELECT DISTINCT c.oid::regclass AS obj, c.relkind, a.grantee::regrole::text AS grantee
             FROM pg_class c CROSS JOIN LATERAL aclexplode(c.relacl) a
            WHERE c.relnamespace = {schema}::regnamespace AND a.grantee <> 0
              AND a.grantee NOT IN ({owner}::regrole, {rw}::regrole) LOOP
    EXECUTE format('REVOKE ALL ON %s %s FROM %I',
                   CASE r.relkind WHEN 'S' THEN 'SEQUENCE' ELSE 'TABLE' END, r.obj, r.grantee);
  END LOOP;
  FOR r IN SELECT DISTINCT c.oid::regclass AS obj, c.relkind FROM pg_class c
             CROSS JOIN LATERAL aclexplode(c.relacl) a
            WHERE c.relnamespace = {schema}::regnamespace AND a.grantee = 0 LOOP
    EXECUTE format('REVOKE ALL ON %s %s FROM PUBLIC',
                   CASE r.relkind WHEN 'S' THEN 'SEQUENCE' ELSE 'TABLE' END, r.obj);
  END LOOP;
  FOR r IN SELECT DISTINCT a.grantee::regrole::text AS grantee
             FROM pg_namespace n CROSS JOIN LATERAL aclexplode(n.nspacl) a
            WHERE n.nspname = {schema} AND a.grantee <> 0
              AND a.grantee NOT IN ({owner}::regrole, {rw}::regrole) LOOP
    EXECUTE format('REVOKE ALL ON SCHEMA %I FROM %I', {schema}, r.grantee);
  END LOOP;
END;
"""


def login_statements(
    login: str, member_of: str, settings: dict[str, str], password_verifier: str | None
) -> list[Statement]:
    """A login in one group role, with its settings in this database and an optional SCRAM verifier."""
    statements = [
        *ensure_role(login, login=True, inherit=True),
        sql.SQL("GRANT {} TO {}").format(_ident(member_of), _ident(login)),
    ]
    for name, value in settings.items():
        statements.append(
            _do(
                sql.SQL(
                    "EXECUTE format('ALTER ROLE %I IN DATABASE %I SET %s = %L', {}, current_database(), {}, {});"
                ).format(sql.Literal(login), sql.Literal(name), sql.Literal(value))
            )
        )
    if password_verifier is not None:
        # a verifier, never the password: the server stores it as given
        statements.append(sql.SQL("ALTER ROLE {} PASSWORD {}").format(_ident(login), sql.Literal(password_verifier)))
    return statements


def session_settings(info: SchemaInfo) -> dict[str, str]:
    """What a service login of `info` carries: its app sessions' timeouts."""
    return {
        "statement_timeout": info.statement_timeout,
        "idle_in_transaction_session_timeout": info.idle_in_transaction_session_timeout,
    }


def render(statements: Iterable[Statement]) -> str:
    """The statements as a script (no connection needed)."""
    return "".join(s.as_string(None) + ";\n" for s in statements)


def model_statements(schemas: Iterable[SchemaInfo]) -> list[Statement]:
    """Everything `roles apply` runs: global roles, declared extensions, each schema, the deployers' settings."""
    schemas = list(schemas)
    statements = global_statements()
    # extension_statements quotes the names it was given, after discovery validated them
    statements += [sql.SQL(s) for s in extension_statements(e for info in schemas for e in info.extensions)]
    for info in schemas:
        statements += schema_statements(info)
    return statements + deployer_statements()


def model_role_names(schemas: Iterable[SchemaInfo]) -> set[str]:
    """The roles the model itself defines (a login may not take one of these names)."""
    return {MIGRATOR} | {role for info in schemas for role in (info.owner_role, info.rw_role)}
