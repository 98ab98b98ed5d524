"""Least-privilege roles for every schema: the model, as SQL a DBA can read, applied idempotently.

- `migrator` NOLOGIN NOINHERIT: member of every `<s>_owner`; deployer logins are members of it and
  get nothing until a migration does SET ROLE <s>_owner; they may read the version tables and look
  into the service schemas (USAGE, for reflection: no table privilege, no CREATE).
- `<s>_owner` NOLOGIN: owns schema `<s>`, everything in it and `alembic.alembic_version_<s>`; reads
  `alembic.gamedb_checksums_<s>` and may append to it only through `alembic.gamedb_record_<s>(...)`.
- `gamedb_history` NOLOGIN, no member ever: owns every schema's record of its revisions
  (`alembic.gamedb_checksums_<s>`, append-only, and its SECURITY DEFINER function; gamedb.migrate.history),
  so no login can change or delete a recorded row, whatever role it can SET ROLE to.
- `<s>_rw` NOLOGIN: USAGE on `<s>`; SELECT/INSERT/UPDATE/DELETE on its tables, USAGE/SELECT on its
  sequences, EXECUTE on its functions, through role-wide default privileges of `<s>_owner` (they
  survive `downgrade base`). No TRUNCATE, TEMP, CREATE, other schemas or version tables.
- Service logins are members of one `<s>_rw` and carry the schema's session timeouts themselves
  (role settings are not inherited through membership).

Every role gamedb creates carries a `COMMENT ON ROLE` marker (`role_marker`); gamedb refuses to
change an existing role without it unless told to adopt it. Every name reaching SQL is validated
first and then quoted (psycopg.sql.Identifier / Literal).
"""

from __future__ import annotations

from collections.abc import Iterable

from psycopg import sql

from gamedb.discovery import SchemaInfo
from gamedb.migrate import history
from gamedb.names import VERSION_TABLE_SCHEMA

MIGRATOR = "migrator"
HISTORY_OWNER = history.HISTORY_OWNER
TABLE_PRIVILEGES = ("SELECT", "INSERT", "UPDATE", "DELETE")
SEQUENCE_PRIVILEGES = ("USAGE", "SELECT")
DEPLOYER_SETTINGS = {"lock_timeout": "2s", "statement_timeout": "30min"}
# SQLSTATE of the refusal to touch a role gamedb did not create (a class no PostgreSQL error uses)
NOT_MANAGED_SQLSTATE = "GDB01"

# what psycopg's execute() takes of psycopg.sql: a statement, not a bare identifier or literal
Statement = sql.SQL | sql.Composed


def role_marker(kind: str, schema: str | None = None) -> str:
    """The `COMMENT ON ROLE` text by which gamedb recognises a role it made (kind: migrator, owner,
    rw, service login, deployer login); the deviations query (gamedb.roles.deviations) parses the same shape."""
    return f"gamedb: {kind}" + (f" of schema {schema}" if schema else "")


def _ident(*names: str) -> sql.Identifier:
    return sql.Identifier(*names)


def do_block(body: sql.Composable) -> Statement:
    """`body` as an anonymous code block (DO), for what plain SQL cannot say conditionally."""
    return sql.SQL("DO $gamedb$ BEGIN {} END $gamedb$").format(body)


def _on_database(template: str, *roles: str) -> Statement:
    """A statement about the current database, whose name the SQL need not know: format('%I')."""
    args = sql.SQL(", ").join([sql.SQL("current_database()"), *(sql.Literal(r) for r in roles)])
    return do_block(sql.SQL("EXECUTE format({}, {});").format(sql.Literal(template), args))


# Runs before gamedb touches an existing role: it must carry gamedb's marker, or be adopted on
# purpose (--adopt), or be an unmarked role of an earlier gamedb whose attributes are exactly the
# model's (never a superuser). Anything else stops the whole transaction with one line.
GUARD_BODY = """
DECLARE r pg_roles; c text; why text;
BEGIN
  SELECT * INTO r FROM pg_roles WHERE rolname = {name};
  IF NOT FOUND OR {adopt} THEN RETURN; END IF;
  c := shobj_description(r.oid, 'pg_authid');
  IF c = {marker} THEN RETURN; END IF;
  IF c IS NOT NULL THEN why := format('its comment is %L', c);
  ELSIF r.rolsuper THEN why := 'it is a SUPERUSER';
  ELSIF r.rolcanlogin <> {login} OR r.rolinherit <> {login} OR r.rolcreaterole OR r.rolcreatedb
        OR r.rolreplication OR r.rolbypassrls OR r.rolconnlimit <> -1 THEN
    why := 'its attributes are not the model''s';
  ELSIF {login} AND (SELECT coalesce(array_agg(a.roleid::regrole::text), '{{}}') FROM pg_auth_members a
                     WHERE a.member = r.oid) <> ARRAY[{member_of}]::text[] THEN
    -- an earlier gamedb made logins members of their group and nothing else; a human login is not
    why := format('a login that is not a member of %s alone', {member_of});
  ELSE RETURN;  -- made by an earlier gamedb: adopted as it already matches the model
  END IF;
  RAISE EXCEPTION 'role % exists and gamedb did not create it (%): not changed; to let gamedb manage it, run %',
    {name}, why, {how} USING ERRCODE = {sqlstate};
END;
"""


def ensure_role(
    name: str,
    *,
    kind: str,
    schema: str | None = None,
    login: bool,
    adopt: bool = False,
    how: str = "",
    member_of: str | None = None,
) -> list[Statement]:
    """Refuse a role gamedb does not manage, create it if missing, enforce its attributes, mark it."""
    attrs = sql.SQL(("LOGIN" if login else "NOLOGIN") + (" INHERIT" if login else " NOINHERIT"))
    marker = role_marker(kind, schema)
    guard = sql.SQL(GUARD_BODY).format(
        name=sql.Literal(name),
        adopt=sql.SQL("true" if adopt else "false"),
        marker=sql.Literal(marker),
        login=sql.SQL("true" if login else "false"),
        how=sql.Literal(how or f"gamedb roles apply --adopt {name}"),
        sqlstate=sql.Literal(NOT_MANAGED_SQLSTATE),
        member_of=sql.Literal(member_of),
    )
    return [
        do_block(guard),
        do_block(sql.SQL("CREATE ROLE {} {}; EXCEPTION WHEN duplicate_object THEN NULL;").format(_ident(name), attrs)),
        sql.SQL(
            "ALTER ROLE {} {} NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS CONNECTION LIMIT -1"
        ).format(_ident(name), attrs),
        sql.SQL("COMMENT ON ROLE {} IS {}").format(_ident(name), sql.Literal(marker)),
    ]


def global_statements(adopt: frozenset[str] = frozenset()) -> list[Statement]:
    """The roles and hardening every schema relies on."""
    return [
        *ensure_role(MIGRATOR, kind="migrator", login=False, adopt=MIGRATOR in adopt),
        *ensure_role(HISTORY_OWNER, kind="history owner", login=False, adopt=HISTORY_OWNER in adopt),
        _on_database("REVOKE ALL ON DATABASE %I FROM PUBLIC"),  # PUBLIC had CONNECT and TEMP
        _on_database("GRANT CONNECT ON DATABASE %I TO %I", MIGRATOR),
        sql.SQL("REVOKE CREATE ON SCHEMA public FROM PUBLIC"),
        sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(_ident(VERSION_TABLE_SCHEMA)),
        sql.SQL("REVOKE ALL ON SCHEMA {} FROM PUBLIC").format(_ident(VERSION_TABLE_SCHEMA)),
        # deployers read every version row (status, upgrade-all) without any SET ROLE
        sql.SQL("GRANT USAGE ON SCHEMA {} TO {}").format(_ident(VERSION_TABLE_SCHEMA), _ident(MIGRATOR)),
        # the records' owner reaches its tables in schema alembic (its functions run as it)
        sql.SQL("GRANT USAGE ON SCHEMA {} TO {}").format(_ident(VERSION_TABLE_SCHEMA), _ident(HISTORY_OWNER)),
    ]


def schema_statements(info: SchemaInfo, adopt: frozenset[str] = frozenset()) -> list[Statement]:
    """Owner, rw, the schema, its grants and its version table; idempotent."""
    owner, rw, schema = info.owner_role, info.rw_role, info.name
    o, r, s, m = _ident(owner), _ident(rw), _ident(schema), _ident(MIGRATOR)
    version_table = _ident(VERSION_TABLE_SCHEMA, info.version_table)
    checksum_table = _ident(VERSION_TABLE_SCHEMA, info.checksum_table)
    record_fn = sql.SQL(history.function_signature(info.name))
    h = _ident(HISTORY_OWNER)
    return [
        *ensure_role(owner, kind="owner", schema=schema, login=False, adopt=owner in adopt),
        *ensure_role(rw, kind="rw", schema=schema, login=False, adopt=rw in adopt),
        sql.SQL("GRANT {} TO {}").format(o, m),
        _on_database("GRANT CONNECT ON DATABASE %I TO %I", rw),
        # the init revision's CREATE SCHEMA IF NOT EXISTS checks CREATE on the database first; REFRESH
        # MATERIALIZED VIEW CONCURRENTLY runs as the view's owner and needs a temporary table
        _on_database("GRANT CREATE, TEMPORARY ON DATABASE %I TO %I", owner),
        # role-wide defaults (no IN SCHEMA): they survive DROP SCHEMA and cover a re-created schema
        sql.SQL("ALTER DEFAULT PRIVILEGES FOR ROLE {} GRANT USAGE ON SCHEMAS TO {}").format(o, r),
        # migrator (so the deployer) may look into a schema: reflection for status / check-all, no data
        sql.SQL("ALTER DEFAULT PRIVILEGES FOR ROLE {} GRANT USAGE ON SCHEMAS TO {}").format(o, m),
        sql.SQL("ALTER DEFAULT PRIVILEGES FOR ROLE {} GRANT {} ON TABLES TO {}").format(
            o, sql.SQL(", ").join(map(sql.SQL, TABLE_PRIVILEGES)), r
        ),
        sql.SQL("ALTER DEFAULT PRIVILEGES FOR ROLE {} GRANT USAGE, SELECT ON SEQUENCES TO {}").format(o, r),
        sql.SQL("ALTER DEFAULT PRIVILEGES FOR ROLE {} REVOKE EXECUTE ON FUNCTIONS FROM PUBLIC").format(o),
        sql.SQL("ALTER DEFAULT PRIVILEGES FOR ROLE {} GRANT EXECUTE ON FUNCTIONS TO {}").format(o, r),
        sql.SQL("CREATE SCHEMA IF NOT EXISTS {} AUTHORIZATION {}").format(s, o),
        sql.SQL("ALTER SCHEMA {} OWNER TO {}").format(s, o),
        sql.SQL("GRANT USAGE ON SCHEMA {} TO {}, {}").format(s, r, m),
        # no GRANT ... ON ALL ... IN SCHEMA: it would grant on objects the owner doesn't own (a
        # superuser's SECURITY DEFINER function); the repair grants per object, on the owner's only
        # the version table, pre-created with Alembic's own DDL, owned by the owner, closed to rw
        sql.SQL("GRANT USAGE ON SCHEMA {} TO {}").format(_ident(VERSION_TABLE_SCHEMA), o),
        sql.SQL(
            "CREATE TABLE IF NOT EXISTS {} (version_num VARCHAR(32) NOT NULL, CONSTRAINT {} PRIMARY KEY (version_num))"
        ).format(version_table, _ident(f"{info.version_table}_pkc")),
        sql.SQL("ALTER TABLE {} OWNER TO {}").format(version_table, o),
        sql.SQL("REVOKE ALL ON TABLE {} FROM PUBLIC, {}").format(version_table, r),
        sql.SQL("GRANT SELECT ON TABLE {} TO {}").format(version_table, m),
        # the record of its revisions (gamedb.migrate.history): created, or converted from an earlier
        # gamedb's form keeping its rows; owned by gamedb_history; the owner appends through the function
        sql.SQL(history.ensure_statement(info.name, info.checksum_table)),
        sql.SQL("ALTER TABLE {} OWNER TO {}").format(checksum_table, h),
        sql.SQL("ALTER FUNCTION {} OWNER TO {}").format(record_fn, h),
        sql.SQL("REVOKE ALL ON TABLE {} FROM PUBLIC, {}").format(checksum_table, r),
        sql.SQL("GRANT SELECT ON TABLE {} TO {}, {}").format(checksum_table, m, o),
        sql.SQL("REVOKE ALL ON FUNCTION {} FROM PUBLIC").format(record_fn),
        sql.SQL("GRANT EXECUTE ON FUNCTION {} TO {}").format(record_fn, o),
    ]


def login_statements(
    login: str,
    member_of: str,
    settings: dict[str, str],
    password_verifier: str | None,
    *,
    schema: str | None = None,
    adopt: bool = False,
    how: str = "",
) -> list[Statement]:
    """A login in one group role (a service login of `schema`, else a deployer), its settings in
    this database and an optional SCRAM verifier."""
    kind = "service login" if schema else "deployer login"
    statements = [
        *ensure_role(login, kind=kind, schema=schema, login=True, adopt=adopt, how=how, member_of=member_of),
        sql.SQL("GRANT {} TO {}").format(_ident(member_of), _ident(login)),
    ]
    for name, value in settings.items():
        statements.append(
            do_block(
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


def model_role_names(schemas: Iterable[SchemaInfo]) -> set[str]:
    """The roles the model itself defines (a login may not take one of these names)."""
    return {MIGRATOR, HISTORY_OWNER} | {role for info in schemas for role in (info.owner_role, info.rw_role)}
