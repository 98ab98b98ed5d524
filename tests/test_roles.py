"""The role model, proven on a real server: what a service login and a deployer may and may not do."""

from __future__ import annotations

import os
import threading
import time

import psycopg
import pytest
from sqlalchemy import text

from conftest import apply_with_psql, run_cli, sqlstate
from gamedb.server import service_engine

DENIED_TO_AUTH_SVC = [
    "CREATE TABLE auth.mine (id int)",
    "ALTER TABLE auth.users ADD COLUMN nickname text",
    "DROP TABLE auth.refresh_tokens",
    "TRUNCATE auth.users",
    "CREATE TABLE public.mine (id int)",
    "CREATE TEMP TABLE scratch (id int)",
    "SELECT * FROM inventory.items",
    "SELECT * FROM alembic.alembic_version_auth",
    "UPDATE alembic.alembic_version_auth SET version_num = 'x'",
    "SELECT * FROM alembic.alembic_version_inventory",
    "SELECT * FROM alembic.gamedb_checksums_auth",
    "DELETE FROM alembic.gamedb_checksums_auth",
    "SET ROLE auth_owner",
    "CREATE SCHEMA mine",
]


@pytest.mark.parametrize("statement", DENIED_TO_AUTH_SVC)
def test_a_service_login_is_refused_everything_but_dml_on_its_schema(roles_db, statement):
    assert sqlstate(roles_db.login_uri("auth_svc"), statement) == "42501"


def test_a_service_login_inserts_into_an_identity_table_and_reads_it_back(roles_db):
    uri = roles_db.login_uri("auth_svc")
    with psycopg.connect(uri, autocommit=True) as conn:
        (user_id,) = conn.execute(
            "INSERT INTO auth.users (login, email, password_hash) VALUES ('ann', 'ann@x', 'h') RETURNING id"
        ).fetchone()
        conn.execute("UPDATE auth.users SET disabled = true WHERE id = %s", (user_id,))
        assert conn.execute("SELECT disabled FROM auth.users").fetchall() == [(True,)]
        conn.execute("DELETE FROM auth.users")


def test_a_table_created_by_a_later_migration_is_usable_at_once(roles_db):
    uri = roles_db.login_uri("chat_svc")

    with psycopg.connect(uri, autocommit=True) as conn:
        conn.execute("INSERT INTO chat.messages (body) VALUES ('hi')")
        assert conn.execute("SELECT body FROM chat.messages").fetchall() == [("hi",)]


def test_every_object_is_owned_by_its_schemas_owner_after_a_deployer_ran_the_migrations(roles_db):
    rows = roles_db.query(
        "SELECT n.nspname, c.relname, c.relowner::regrole::text FROM pg_class c"
        " JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname IN ('auth', 'inventory', 'chat')"
    )
    assert rows and all(owner == f"{schema}_owner" for schema, _, owner in rows)
    versions = roles_db.query(
        "SELECT relname, relowner::regrole::text FROM pg_class WHERE relnamespace = 'alembic'::regnamespace"
        " AND relkind = 'r'"
    )
    assert sorted(versions) == [
        ("alembic_version_auth", "auth_owner"),
        ("alembic_version_chat", "chat_owner"),
        ("alembic_version_inventory", "inventory_owner"),
        ("gamedb_checksums_auth", "gamedb_history"),  # the record: no login is a member of its owner
        ("gamedb_checksums_chat", "gamedb_history"),
        ("gamedb_checksums_inventory", "gamedb_history"),
    ]


@pytest.mark.parametrize(
    "statement", ["CREATE TABLE auth.mine (id int)", "INSERT INTO auth.users (login) VALUES ('x')", "CREATE SCHEMA x"]
)
def test_a_deployer_can_do_nothing_without_set_role(roles_db, statement):
    assert sqlstate(roles_db.login_uri("deployer"), statement) == "42501"


def test_a_service_login_carries_its_schemas_timeouts(roles_db):
    with psycopg.connect(roles_db.login_uri("auth_svc"), autocommit=True) as conn:
        settings = conn.execute(
            "SELECT current_setting('statement_timeout'), current_setting('idle_in_transaction_session_timeout')"
        ).fetchone()
    assert settings == ("5s", "10s")


def test_a_statement_longer_than_the_timeout_is_cancelled(roles_db):
    assert sqlstate(roles_db.login_uri("chat_svc"), "SELECT pg_sleep(3)") == "57014"


def test_idle_in_transaction_past_the_timeout_ends_the_connection(roles_db):
    with psycopg.connect(roles_db.login_uri("chat_svc")) as conn:
        conn.execute("SELECT 1")  # opens a transaction
        time.sleep(2.5)
        with pytest.raises(psycopg.Error) as caught:
            conn.execute("SELECT 1")
    assert caught.value.sqlstate == "25P03"


def test_service_engine_sets_timeouts_search_path_and_pre_ping(roles_db):
    url = roles_db.url.replace("postgresql+psycopg://postgres", "postgresql+psycopg://auth_svc", 1)
    engine = service_engine("auth", url)
    try:
        with engine.connect() as conn:
            row = conn.execute(
                text(
                    "SELECT current_setting('statement_timeout'),"
                    " current_setting('idle_in_transaction_session_timeout'),"
                    " current_setting('search_path'), count(*) FROM users"
                )
            ).one()
        assert tuple(row) == ("5s", "10s", "auth,extensions", 0)
        assert engine.pool._pre_ping is True
    finally:
        engine.dispose()


def test_a_migration_waiting_on_an_app_lock_gives_up_with_55p03_and_apps_keep_going(roles_db, scratch_service):
    app = roles_db.login_uri("chat_svc")
    layout_dir = roles_db.extra[0] / "game_chat" / "versions"
    (layout_dir / "chat3_add_column.py").write_text(
        (layout_dir / "chat2_step_chat2.py")
        .read_text()
        .replace("revision: str = 'chat2'", "revision: str = 'chat3'")
        .replace("down_revision: str | None = 'chat1'", "down_revision: str | None = 'chat2'")
        .replace(
            "CREATE TABLE chat.messages (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, body text)",
            "ALTER TABLE chat.messages ADD COLUMN lang text",
        )
        .replace("DROP TABLE chat.messages", "ALTER TABLE chat.messages DROP COLUMN lang")
    )
    errors: list[str] = []
    served = 0
    stop = threading.Event()

    def app_traffic():
        nonlocal served
        with psycopg.connect(app, autocommit=True) as conn:
            while not stop.is_set():
                try:
                    conn.execute("INSERT INTO chat.messages (body) VALUES ('x')")
                    conn.execute("SELECT count(*) FROM chat.messages").fetchone()
                    served += 1
                except psycopg.Error as exc:
                    errors.append(exc.sqlstate)
                time.sleep(0.05)

    with psycopg.connect(roles_db.libpq) as holder:  # a long transaction holding a lock on chat.messages
        holder.execute("SELECT count(*) FROM chat.messages")
        traffic = threading.Thread(target=app_traffic)
        traffic.start()
        started = time.monotonic()
        result = run_cli(
            ["-x", "schema=chat", "upgrade", "head"],
            url=roles_db.deployer_url,
            python_path=roles_db.extra,
            GAMEDB_LOCK_TIMEOUT="300ms",
            GAMEDB_LOCK_RETRIES="1",
        )
        elapsed = time.monotonic() - started
        stop.set()
        traffic.join()
        holder.rollback()

    assert result.code == 1
    assert "55P03" in result.stderr and "Traceback" not in result.stderr
    assert elapsed < 30
    assert errors == [] and served > 0
    assert roles_db.version_rows("chat") == ["chat2"]
    assert "lang" not in {
        c for (c,) in roles_db.query("SELECT column_name FROM information_schema.columns WHERE table_schema = 'chat'")
    }


def catalog_snapshot(database):
    return database.query(
        """
        SELECT 'role', rolname || ':' || rolcanlogin || rolinherit || rolsuper FROM pg_roles
        UNION ALL SELECT 'member', roleid::regrole || '>' || member::regrole FROM pg_auth_members
        UNION ALL SELECT 'acl', c.oid::regclass || ':' || coalesce(c.relacl::text, '') || ':' || c.relowner::regrole
          FROM pg_class c WHERE c.relnamespace::regnamespace::text IN ('auth', 'inventory', 'chat', 'alembic')
        UNION ALL SELECT 'schema', nspname || ':' || coalesce(nspacl::text, '') || ':' || nspowner::regrole
          FROM pg_namespace
        UNION ALL SELECT 'default', defaclrole::regrole || ':' || defaclobjtype::text || ':' || defaclacl::text
          FROM pg_default_acl
        UNION ALL SELECT 'setting', setrole::regrole || ':' || array_to_string(setconfig, ',')
          FROM pg_db_role_setting
        UNION ALL SELECT 'db', coalesce(datacl::text, '') FROM pg_database WHERE datname = current_database()
        ORDER BY 1, 2
        """
    )


def test_roles_apply_twice_changes_nothing(gamedb, roles_db):
    before = catalog_snapshot(roles_db)

    result = gamedb("roles", "apply", extra=roles_db.extra)

    assert result.code == 0, result.output
    assert catalog_snapshot(roles_db) == before
    assert gamedb("roles", "check", extra=roles_db.extra).code == 0


def test_roles_check_catches_hand_made_grants_and_apply_removes_them(gamedb, roles_db):
    roles_db.query("GRANT TRUNCATE ON auth.users TO auth_rw")
    roles_db.query("GRANT SELECT ON auth.users TO inventory_rw")
    roles_db.query("ALTER ROLE auth_svc IN DATABASE " + roles_db.name + " RESET statement_timeout")

    check = gamedb("roles", "check", extra=roles_db.extra)

    assert check.code == 1
    assert "auth: privilege beyond the model: auth_rw has TRUNCATE on table auth.users, expected not" in check.stdout
    assert "auth: privilege beyond the model: inventory_rw has SELECT on table auth.users, expected not" in check.stdout
    assert "auth: login setting: auth_svc has statement_timeout=unset, expected 5s" in check.stdout
    assert gamedb("roles", "apply", extra=roles_db.extra).code == 0
    assert gamedb("roles", "check", extra=roles_db.extra).code == 0
    assert sqlstate(roles_db.login_uri("auth_svc"), "TRUNCATE auth.users") == "42501"


def test_roles_check_json_reports_an_object_owned_by_someone_else(gamedb, roles_db):
    roles_db.query("CREATE TABLE auth.handmade (id int)")

    result = gamedb("roles", "check", "--json", extra=roles_db.extra)

    assert result.code == 1
    import json

    findings = json.loads(result.stdout)
    expected = "table auth.handmade is owned by postgres, expected auth_owner"
    assert {"schema": "auth", "kind": "wrong owner", "detail": expected, "server": "default"} in [
        {**f, "detail": f["detail"].replace(roles_db.query("SELECT current_user")[0][0], "postgres")} for f in findings
    ]


def test_roles_sql_applied_by_psql_gives_a_clean_check(gamedb, database, psql):
    script = gamedb("roles", "sql")
    assert script.code == 0, script.output

    applied = apply_with_psql(psql, database, script.stdout)

    assert applied.returncode == 0, applied.stderr
    assert gamedb("roles", "check").code == 0


@pytest.mark.parametrize("name", ["a" * 60, "x; create role pwned superuser", "Auth", "auth_owner", "migrator"])
def test_login_names_that_would_truncate_inject_or_collide_are_refused(gamedb, database, name):
    result = gamedb("roles", "login", name, "--schema", "auth")

    assert result.code == 2
    assert result.stderr.startswith("gamedb: error: invalid login name")
    assert database.query("SELECT count(*) FROM pg_roles WHERE rolname IN ('pwned', %s)", (name,)) == [(0,)]


def test_a_schema_name_carrying_sql_is_refused_before_any_sql(gamedb, database):
    result = gamedb("roles", "apply", "--schema", "x; create role pwned superuser")

    assert result.code == 2
    assert "unknown schema" in result.stderr
    assert database.query("SELECT count(*) FROM pg_roles WHERE rolname IN ('pwned', 'migrator')") == [(0,)]


def test_a_login_password_becomes_a_scram_verifier_and_is_never_printed(gamedb, database):
    assert gamedb("roles", "apply").code == 0
    env_name = "GAMEDB_TEST_PASSWORD"
    os.environ[env_name] = "Sup3r-s3cret"
    try:
        result = gamedb("roles", "login", "auth_svc", "--schema", "auth", "--password-env", env_name)
    finally:
        del os.environ[env_name]

    assert result.code == 0, result.output
    assert "Sup3r-s3cret" not in result.output
    (stored,) = database.query("SELECT rolpassword FROM pg_authid WHERE rolname = 'auth_svc'")[0]
    assert stored.startswith("SCRAM-SHA-256$4096:")


def test_a_missing_password_variable_is_an_error_that_changes_nothing(gamedb, database):
    result = gamedb("roles", "login", "auth_svc", "--schema", "auth", "--password-env", "GAMEDB_NO_SUCH_VAR")

    assert result.code == 2
    assert result.stderr.strip() == "gamedb: error: environment variable GAMEDB_NO_SUCH_VAR is not set or empty"
    assert database.query("SELECT count(*) FROM pg_roles WHERE rolname = 'auth_svc'") == [(0,)]


# Each drift: statements an admin (or an attacker with admin rights, or a careless DBA) runs, the
# words `roles check` must print for it, and what must hold after `roles apply`: a statement the
# named login is refused (42501), or an admin query that must be true.
FUNCTION = [
    "SET ROLE auth_owner",
    "CREATE FUNCTION auth.probe() RETURNS int LANGUAGE sql AS 'SELECT 1'",
    "RESET ROLE",
]
FRESH_TABLE = "SET ROLE auth_owner; CREATE TABLE auth.fresh (i int); RESET ROLE; "
DRIFTS = [
    (
        "ALTER ROLE auth_svc SUPERUSER",
        "auth_svc is SUPERUSER, expected NOSUPERUSER",
        ("auth_svc", "CREATE TABLE auth.mine (i int)"),
    ),
    (
        "ALTER ROLE auth_svc CREATEROLE",
        "auth_svc is CREATEROLE, expected NOCREATEROLE",
        ("auth_svc", "CREATE ROLE gamedb_probe"),
    ),
    (
        "ALTER ROLE deployer CREATEDB",
        "deployer is CREATEDB, expected NOCREATEDB",
        ("deployer", "CREATE DATABASE gamedb_probe"),
    ),
    (
        "ALTER ROLE auth_svc BYPASSRLS",
        "auth_svc is BYPASSRLS, expected NOBYPASSRLS",
        "SELECT NOT rolbypassrls FROM pg_roles WHERE rolname = 'auth_svc'",
    ),
    (
        "ALTER ROLE deployer REPLICATION",
        "deployer is REPLICATION, expected NOREPLICATION",
        "SELECT NOT rolreplication FROM pg_roles WHERE rolname = 'deployer'",
    ),
    (
        "ALTER ROLE auth_svc NOINHERIT",
        "auth_svc is NOINHERIT, expected INHERIT",
        "SELECT rolinherit FROM pg_roles WHERE rolname = 'auth_svc'",
    ),
    (
        "ALTER ROLE auth_owner LOGIN",
        "auth_owner is LOGIN, expected NOLOGIN",
        "SELECT NOT rolcanlogin FROM pg_roles WHERE rolname = 'auth_owner'",
    ),
    (
        "ALTER ROLE auth_svc CONNECTION LIMIT 1",
        "auth_svc has CONNECTION LIMIT 1, expected -1",
        "SELECT rolconnlimit = -1 FROM pg_roles WHERE rolname = 'auth_svc'",
    ),
    (
        "GRANT pg_read_server_files TO auth_svc",
        "auth_svc is a member of pg_read_server_files, expected not",
        ("auth_svc", "COPY auth.users (login) FROM '/etc/hostname'"),
    ),
    (
        "GRANT pg_execute_server_program TO deployer",
        "deployer is a member of pg_execute_server_program",
        ("deployer", "COPY (SELECT 1) TO PROGRAM 'true'"),
    ),
    (
        "GRANT pg_write_all_data TO chat_svc",
        "chat_svc is a member of pg_write_all_data",
        ("chat_svc", "INSERT INTO auth.users (login, email, password_hash) VALUES ('x', 'x', 'x')"),
    ),
    (
        "GRANT inventory_rw TO auth_svc",
        "auth_svc is a member of inventory_rw, expected not",
        ("auth_svc", "SELECT * FROM inventory.items"),
    ),
    (
        "GRANT inventory_owner TO auth_svc",
        "auth_svc is a member of inventory_owner, expected not",
        ("auth_svc", "SET ROLE inventory_owner"),
    ),
    (
        "GRANT auth_rw TO auth_svc WITH ADMIN OPTION",
        "auth_svc is a member of auth_rw WITH ADMIN OPTION, expected without",
        ("auth_svc", "GRANT auth_rw TO chat_svc"),
    ),
    ("GRANT migrator TO auth_svc", "auth_svc is a member of migrator, expected not", ("auth_svc", "SET ROLE migrator")),
    ("GRANT migrator TO auth_rw", "auth_rw is a member of migrator, expected not", ("auth_svc", "SET ROLE migrator")),
    (
        "CREATE ROLE gamedb_human LOGIN; GRANT CONNECT ON DATABASE {db} TO gamedb_human;"
        " GRANT auth_owner TO gamedb_human",
        "gamedb_human is a member of auth_owner",
        ("gamedb_human", "SET ROLE auth_owner"),
    ),
    (
        "GRANT CREATE ON DATABASE {db} TO auth_svc",
        "auth_svc has CREATE on database",
        ("auth_svc", "CREATE SCHEMA probe"),
    ),
    (
        "GRANT TEMPORARY ON DATABASE {db} TO auth_rw",
        "auth_rw has TEMPORARY on database",
        ("auth_svc", "CREATE TEMP TABLE probe (i int)"),
    ),
    (
        "GRANT CONNECT, TEMPORARY ON DATABASE {db} TO PUBLIC",
        "PUBLIC has TEMPORARY on database",
        ("auth_svc", "CREATE TEMP TABLE probe (i int)"),
    ),
    (
        "GRANT CREATE ON SCHEMA public TO auth_rw",
        "auth_rw has CREATE on schema public, expected not",
        ("auth_svc", "CREATE TABLE public.probe (i int)"),
    ),
    (
        "GRANT CREATE ON SCHEMA public TO PUBLIC",
        "PUBLIC has CREATE on schema public, expected not",
        ("auth_svc", "CREATE TABLE public.probe (i int)"),
    ),
    (
        "GRANT USAGE ON SCHEMA alembic TO auth_rw",
        "auth_rw has USAGE on schema alembic, expected not",
        ("auth_svc", "SELECT * FROM alembic.alembic_version_inventory"),
    ),
    (
        "GRANT CREATE ON SCHEMA alembic TO migrator",
        "migrator has CREATE on schema alembic, expected not",
        ("deployer", "CREATE TABLE alembic.probe (i int)"),
    ),
    (
        "GRANT UPDATE ON alembic.alembic_version_auth TO deployer",
        "deployer has UPDATE on version table alembic.alembic_version_auth, expected not",
        ("deployer", "UPDATE alembic.alembic_version_auth SET version_num = version_num"),
    ),
    (
        "GRANT USAGE ON SCHEMA alembic TO PUBLIC; GRANT SELECT ON alembic.alembic_version_auth TO PUBLIC",
        "PUBLIC has SELECT on version table alembic.alembic_version_auth, expected not",
        ("auth_svc", "SELECT * FROM alembic.alembic_version_auth"),
    ),
    (
        "CREATE SCHEMA IF NOT EXISTS extensions; GRANT USAGE, CREATE ON SCHEMA extensions TO auth_rw",
        "auth_rw has CREATE on schema extensions, expected not",
        ("auth_svc", "CREATE TABLE extensions.probe (i int)"),
    ),
    (
        "GRANT CREATE ON SCHEMA auth TO auth_rw",
        "auth_rw has CREATE on schema auth, expected not",
        ("auth_svc", "CREATE TABLE auth.mine (i int)"),
    ),
    (
        "GRANT USAGE ON SCHEMA auth TO PUBLIC; GRANT SELECT ON auth.users TO PUBLIC",
        "PUBLIC has SELECT on table auth.users, expected not",
        ("chat_svc", "SELECT * FROM auth.users"),
    ),
    (
        "GRANT UPDATE ON SEQUENCE auth.users_id_seq TO auth_rw",
        "auth_rw has UPDATE on sequence auth.users_id_seq, expected not",
        ("auth_svc", "SELECT setval('auth.users_id_seq', 100)"),
    ),
    (
        "GRANT SELECT ON auth.users TO auth_rw WITH GRANT OPTION",
        "auth_rw has SELECT WITH GRANT OPTION on table auth.users, expected without GRANT OPTION",
        "SELECT NOT has_table_privilege('auth_rw', 'auth.users', 'SELECT WITH GRANT OPTION')",
    ),
    (
        "; ".join([*FUNCTION, "GRANT EXECUTE ON FUNCTION auth.probe() TO PUBLIC"]),
        "PUBLIC has EXECUTE on function auth.probe(), expected not",
        ("deployer", "SELECT auth.probe()"),
    ),
    (
        "; ".join([*FUNCTION, "GRANT EXECUTE ON FUNCTION auth.probe() TO inventory_rw"]),
        "inventory_rw has EXECUTE on function auth.probe(), expected not",
        "SELECT NOT has_function_privilege('inventory_rw', 'auth.probe()', 'EXECUTE')",
    ),
    (
        "ALTER DEFAULT PRIVILEGES FOR ROLE auth_owner GRANT SELECT ON TABLES TO PUBLIC",
        "new tables of auth_owner would give PUBLIC SELECT, expected not",
        FRESH_TABLE + "SELECT NOT has_table_privilege('chat_rw', 'auth.fresh', 'SELECT')",
    ),
    (
        "ALTER DEFAULT PRIVILEGES FOR ROLE auth_owner IN SCHEMA auth GRANT SELECT, DELETE ON TABLES TO inventory_rw",
        "new tables of auth_owner in schema auth would give inventory_rw DELETE, expected not",
        FRESH_TABLE + "SELECT NOT has_table_privilege('inventory_rw', 'auth.fresh', 'DELETE')",
    ),
    (
        "ALTER DEFAULT PRIVILEGES FOR ROLE auth_owner GRANT TRUNCATE ON TABLES TO auth_rw",
        "new tables of auth_owner would give auth_rw TRUNCATE, expected not",
        FRESH_TABLE + "SELECT NOT has_table_privilege('auth_rw', 'auth.fresh', 'TRUNCATE')",
    ),
    (
        "ALTER DEFAULT PRIVILEGES FOR ROLE auth_owner GRANT EXECUTE ON FUNCTIONS TO PUBLIC",
        "new functions of auth_owner would give PUBLIC EXECUTE, expected not",
        "SELECT NOT EXISTS (SELECT FROM pg_default_acl d, aclexplode(d.defaclacl) a"
        " WHERE d.defaclrole = 'auth_owner'::regrole AND a.grantee = 0 AND d.defaclobjtype = 'f')",
    ),
    (
        "ALTER DEFAULT PRIVILEGES FOR ROLE deployer GRANT SELECT ON TABLES TO PUBLIC",
        "new tables of deployer would give PUBLIC SELECT, expected not",
        "SELECT NOT EXISTS (SELECT FROM pg_default_acl WHERE defaclrole = 'deployer'::regrole)",
    ),
    (
        "ALTER TABLE auth.users OWNER TO chat_svc",
        "table auth.users is owned by chat_svc, expected auth_owner",
        ("chat_svc", "ALTER TABLE auth.users ADD COLUMN probe int"),
    ),
    (
        "ALTER TABLE alembic.alembic_version_auth OWNER TO deployer",
        "version table alembic.alembic_version_auth is owned by deployer, expected auth_owner",
        ("deployer", "DELETE FROM alembic.alembic_version_auth"),
    ),
    (
        "ALTER TABLE alembic.gamedb_checksums_auth OWNER TO deployer",
        "checksum table alembic.gamedb_checksums_auth is owned by deployer, expected gamedb_history",
        ("deployer", "DELETE FROM alembic.gamedb_checksums_auth"),
    ),
    (
        "GRANT gamedb_history TO deployer",
        "deployer is a member of gamedb_history, expected not",
        ("deployer", "SET ROLE gamedb_history"),
    ),
    (
        "ALTER FUNCTION alembic.gamedb_record_auth(text, text, text, text, text) OWNER TO auth_owner",
        "function alembic.gamedb_record_auth(text,text,text,text,text) is owned by auth_owner, expected gamedb_history",
        "SELECT proowner::regrole::text = 'gamedb_history' FROM pg_proc WHERE proname = 'gamedb_record_auth'",
    ),
    (
        "GRANT EXECUTE ON FUNCTION alembic.gamedb_record_auth(text, text, text, text, text) TO migrator",
        "migrator has EXECUTE on function alembic.gamedb_record_auth(text,text,text,text,text), expected not",
        ("deployer", "SELECT alembic.gamedb_record_auth('x', 'repaired', 'x', 'x', NULL)"),
    ),
    (
        "GRANT USAGE ON SCHEMA alembic TO auth_rw; GRANT SELECT, UPDATE ON alembic.gamedb_checksums_auth TO auth_rw",
        "auth_rw has UPDATE on checksum table alembic.gamedb_checksums_auth, expected not",
        ("auth_svc", "UPDATE alembic.gamedb_checksums_auth SET checksum = 'accepted by the app'"),
    ),
    (
        "GRANT DELETE ON alembic.gamedb_checksums_auth TO migrator",
        "migrator has DELETE on checksum table alembic.gamedb_checksums_auth, expected not",
        ("deployer", "DELETE FROM alembic.gamedb_checksums_auth"),
    ),
    (
        "DROP TABLE alembic.gamedb_checksums_auth",
        "missing checksum table",
        "SELECT has_table_privilege('migrator', 'alembic.gamedb_checksums_auth', 'SELECT')"
        " AND NOT has_table_privilege('auth_rw', 'alembic.gamedb_checksums_auth', 'SELECT')",
    ),
    (
        "ALTER SCHEMA chat OWNER TO chat_svc",
        "schema chat is owned by chat_svc, expected chat_owner",
        ("chat_svc", "CREATE TABLE chat.mine (i int)"),
    ),
    (
        "; ".join([*FUNCTION, "ALTER FUNCTION auth.probe() OWNER TO deployer"]),
        "function auth.probe() is owned by deployer, expected auth_owner",
        ("deployer", "ALTER FUNCTION auth.probe() RENAME TO probe2"),
    ),
    (
        "ALTER ROLE deployer IN DATABASE {db} RESET lock_timeout",
        "deployer has lock_timeout=unset, expected 2s",
        "SELECT setconfig @> '{lock_timeout=2s}' FROM pg_db_role_setting WHERE setrole = 'deployer'::regrole",
    ),
    (
        "ALTER ROLE auth_svc IN DATABASE {db} SET statement_timeout = 0",
        "auth_svc has statement_timeout=0, expected 5s",
        "SELECT setconfig @> '{statement_timeout=5s}' FROM pg_db_role_setting WHERE setrole = 'auth_svc'::regrole",
    ),
    (
        "ALTER ROLE auth_svc SET idle_in_transaction_session_timeout = 0",
        "auth_svc has idle_in_transaction_session_timeout=0 in every database, expected none",
        "SELECT NOT EXISTS (SELECT FROM pg_db_role_setting WHERE setrole = 'auth_svc'::regrole AND setdatabase = 0)",
    ),
    (
        "ALTER ROLE auth_svc IN DATABASE {db} SET work_mem = '1GB'",
        "auth_svc has work_mem=1GB in this database",
        "SELECT NOT EXISTS (SELECT FROM pg_db_role_setting, unnest(setconfig) c"
        " WHERE setrole = 'auth_svc'::regrole AND c LIKE 'work_mem=%%')",
    ),
    (
        "COMMENT ON ROLE auth_rw IS 'hand made'",
        "auth_rw has comment 'hand made', expected 'gamedb: rw of schema auth'",
        "SELECT shobj_description('auth_rw'::regrole, 'pg_authid') = 'gamedb: rw of schema auth'",
    ),
]


@pytest.mark.parametrize(
    ("drift", "reported", "afterwards"),
    DRIFTS,
    ids=[" ".join(d[0].replace("{db}", "game").split()[:6])[:60] for d in DRIFTS],
)
def test_roles_check_reports_each_drift_and_apply_takes_it_back(gamedb, roles_db, drift, reported, afterwards):
    roles_db.query(drift.format(db=roles_db.name))

    check = gamedb("roles", "check", extra=roles_db.extra)
    assert check.code == 1, check.output
    assert reported in check.stdout, check.stdout

    applied = gamedb("roles", "apply", extra=roles_db.extra)
    if drift.startswith("COMMENT ON ROLE"):  # no longer gamedb's: refused until adopted on purpose
        assert applied.code == 1 and applied.stderr.count("\n") == 1, applied.output
        assert "role auth_rw exists and gamedb did not create it" in applied.stderr
        applied = gamedb("roles", "apply", "--adopt", "auth_rw", extra=roles_db.extra)
    assert applied.code == 0, applied.output
    after = gamedb("roles", "check", extra=roles_db.extra)
    assert after.code == 0, after.stdout
    if isinstance(afterwards, tuple):
        login, statement = afterwards
        assert sqlstate(roles_db.login_uri(login), statement) == "42501"
    else:
        *setup, probe = afterwards.split("; ")
        if setup:
            roles_db.query("; ".join(setup))
        assert roles_db.query(probe) == [(True,)]


def test_roles_login_refuses_an_existing_superuser_and_says_how_to_adopt_it(gamedb, database):
    assert gamedb("roles", "apply").code == 0
    database.query("CREATE ROLE gamedb_root SUPERUSER LOGIN")

    result = gamedb("roles", "login", "gamedb_root", "--schema", "auth")

    assert result.code == 1 and result.stdout == "" and result.stderr.count("\n") == 1, result.output
    assert "role gamedb_root exists and gamedb did not create it (it is a SUPERUSER)" in result.stderr
    assert "gamedb roles login gamedb_root --schema auth --adopt" in result.stderr
    assert database.query("SELECT rolsuper FROM pg_roles WHERE rolname = 'gamedb_root'") == [(True,)]
    assert database.query("SELECT count(*) FROM pg_auth_members WHERE member = 'gamedb_root'::regrole") == [(0,)]


def test_roles_login_refuses_a_human_login_and_adopts_it_only_when_told(gamedb, database):
    assert gamedb("roles", "apply").code == 0
    database.query("CREATE ROLE alice LOGIN")

    refused = gamedb("roles", "login", "alice", "--migrator")
    adopted = gamedb("roles", "login", "alice", "--migrator", "--adopt")

    assert refused.code == 1 and "role alice exists and gamedb did not create it" in refused.stderr
    assert "gamedb roles login alice --migrator --adopt" in refused.stderr
    assert adopted.code == 0, adopted.output
    assert database.query("SELECT shobj_description('alice'::regrole, 'pg_authid')") == [("gamedb: deployer login",)]
    assert gamedb("roles", "check").code == 0


@pytest.mark.parametrize(
    ("existing", "why"),
    [
        ("CREATE ROLE auth_owner LOGIN PASSWORD 'x'", "its attributes are not the model's"),
        ("CREATE ROLE auth_rw SUPERUSER", "it is a SUPERUSER"),
        ("CREATE ROLE migrator NOLOGIN NOINHERIT; COMMENT ON ROLE migrator IS 'the DBA team'", "its comment is"),
    ],
)
def test_roles_apply_refuses_a_model_role_gamedb_did_not_create_until_adopted(gamedb, database, existing, why):
    database.query(existing)
    role = existing.split()[2]
    before = database.query("SELECT rolcanlogin, rolsuper FROM pg_roles WHERE rolname = %s", (role,))

    refused = gamedb("roles", "apply")

    assert refused.code == 1 and refused.stderr.count("\n") == 1, refused.output
    assert f"role {role} exists and gamedb did not create it ({why}" in refused.stderr
    assert f"gamedb roles apply --adopt {role}" in refused.stderr
    assert database.query("SELECT rolcanlogin, rolsuper FROM pg_roles WHERE rolname = %s", (role,)) == before
    assert database.query("SELECT count(*) FROM pg_namespace WHERE nspname = 'alembic'") == [(0,)]
    assert gamedb("roles", "apply", "--adopt", role).code == 0
    assert database.query("SELECT rolcanlogin, rolsuper FROM pg_roles WHERE rolname = %s", (role,)) == [(False, False)]
    assert gamedb("roles", "check").code == 0


def test_roles_made_by_an_earlier_gamedb_without_a_marker_are_adopted_when_they_match_the_model(gamedb, database):
    assert gamedb("roles", "apply").code == 0
    assert gamedb("roles", "login", "auth_svc", "--schema", "auth").code == 0
    for role in ("migrator", "auth_owner", "auth_rw", "inventory_owner", "inventory_rw", "auth_svc"):
        database.query(f"COMMENT ON ROLE {role} IS NULL")  # what gamedb before the marker left

    assert gamedb("roles", "login", "auth_svc", "--schema", "auth").code == 0
    applied = gamedb("roles", "apply")

    assert applied.code == 0, applied.output
    assert database.query("SELECT shobj_description('auth_rw'::regrole, 'pg_authid')") == [
        ("gamedb: rw of schema auth",)
    ]
    assert gamedb("roles", "check").code == 0


def test_status_check_all_and_upgrade_all_work_as_the_deployer_who_still_cannot_touch_data(gamedb, database):
    assert gamedb("roles", "apply").code == 0
    assert gamedb("roles", "login", "deployer", "--migrator").code == 0
    deployer_url = database.url.replace("postgresql+psycopg://postgres", "postgresql+psycopg://deployer", 1)
    for command in (["upgrade-all"], ["status", "--check"], ["check-all"], ["upgrade-all"]):
        result = run_cli(command, url=deployer_url)
        assert result.code == 0, (command, result.output)
    assert "at head" in run_cli(["status"], url=deployer_url).stdout
    deployer = database.login_uri("deployer")
    for statement in (
        "SELECT * FROM auth.users",
        "INSERT INTO auth.users (login, email, password_hash) VALUES ('x', 'x', 'x')",
        "SELECT * FROM inventory.items",
        "CREATE TABLE auth.mine (i int)",
        "CREATE TABLE public.mine (i int)",
        "CREATE TABLE alembic.mine (i int)",
        "CREATE SCHEMA mine",
        "UPDATE alembic.alembic_version_auth SET version_num = version_num",
    ):
        assert sqlstate(deployer, statement) == "42501", statement


def test_two_roles_apply_at_once_both_succeed(database):
    """They change rows every schema shares (role migrator, the database's grants, schema alembic):
    without taking turns one failed with 23505 or "tuple concurrently updated" (XX000)."""
    from conftest import spawn_cli

    runs = [spawn_cli(["roles", "apply"], database.url) for _ in range(2)]
    for run in runs:
        out, err = run.communicate(timeout=120)
        assert run.returncode == 0, out + err
    assert run_cli(["roles", "check"], url=database.url).code == 0
