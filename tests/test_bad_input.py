"""Bad input: one line naming the problem, a non-zero exit, no traceback, no password, no change."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import make_url

from conftest import REPO, run_cli


def assert_one_line_error(result, *fragments):
    assert result.code != 0, result.output
    assert "Traceback" not in result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("gamedb: error: ")
    for fragment in fragments:
        assert fragment in lines[0]


CATALOG = """
SELECT 'schema ' || nspname || ' ' || coalesce(nspacl::text, '') FROM pg_namespace
UNION ALL SELECT 'relation ' || c.oid::regclass::text || ' ' || c.relkind::text || ' ' || coalesce(c.relacl::text, '')
  FROM pg_class c WHERE c.relnamespace NOT IN ('pg_catalog'::regnamespace, 'information_schema'::regnamespace)
UNION ALL SELECT 'function ' || p.oid::regprocedure::text FROM pg_proc p
  WHERE p.pronamespace NOT IN ('pg_catalog'::regnamespace, 'information_schema'::regnamespace)
UNION ALL SELECT 'type ' || t.oid::regtype::text FROM pg_type t
  WHERE t.typnamespace NOT IN ('pg_catalog'::regnamespace, 'information_schema'::regnamespace)
UNION ALL SELECT 'default acl ' || defaclrole::regrole::text || ' ' || defaclacl::text FROM pg_default_acl
UNION ALL SELECT 'database acl ' || coalesce(datacl::text, '') FROM pg_database WHERE datname = current_database()
"""


def catalog_snapshot(database) -> list[str]:
    """What the database holds: schemas, relations, functions, types and their privileges."""
    return sorted(row[0] for row in database.query(CATALOG))


@pytest.fixture
def untouched(database):
    """Asserts after the test that the database still holds exactly what it held before."""
    before = catalog_snapshot(database)
    yield database
    assert catalog_snapshot(database) == before


def test_missing_schema_argument_names_the_known_schemas(gamedb, untouched):
    result = gamedb("upgrade", "head")

    assert_one_line_error(result, "-x schema=NAME", "known schemas: auth, inventory")
    assert result.code == 2


def test_unknown_schema_names_the_known_schemas(gamedb, untouched):
    result = gamedb("-x", "schema=billing", "upgrade", "head")

    assert_one_line_error(result, "unknown schema 'billing'", "known schemas: auth, inventory")


def test_schema_value_carrying_sql_runs_nothing(gamedb, untouched):
    result = gamedb("-x", "schema=auth; drop schema public cascade", "upgrade", "head")

    assert_one_line_error(result, "unknown schema 'auth; drop schema public cascade'")
    assert "public" in untouched.schemas()


def test_unknown_revision_is_named(gamedb, untouched):
    result = gamedb("-x", "schema=auth", "upgrade", "deadbeef42")

    assert_one_line_error(result, "deadbeef42")
    assert result.code == 1


def test_revision_of_another_schema_is_unknown_in_a_scoped_command(gamedb, untouched):
    result = gamedb("-x", "schema=auth", "upgrade", "inventory@head")

    assert_one_line_error(result, "inventory")


def test_unreachable_server_is_one_line_with_the_password_masked(untouched):
    url = "postgresql+psycopg://gameadmin:s3cret-Pa55@127.0.0.1:1/game"

    result = run_cli(["-x", "schema=auth", "upgrade", "head"], url=url)

    assert_one_line_error(result, "cannot connect to postgresql+psycopg://gameadmin:***@127.0.0.1:1/game")
    assert "s3cret-Pa55" not in result.output


def test_wrong_password_is_one_line_with_the_password_masked(database, untouched):
    from sqlalchemy import make_url

    url = make_url(database.url).set(username="no_such_role", password="s3cret-Pa55").render_as_string(False)
    result = run_cli(["status"], url=url)

    assert_one_line_error(result, "cannot connect to", "***")
    assert "s3cret-Pa55" not in result.output


def test_gamedb_url_that_is_not_postgresql_is_refused(untouched):
    result = run_cli(["status"], url="mysql://root:pw@localhost/game")

    assert_one_line_error(result, "GAMEDB_URL must point to PostgreSQL")
    assert "pw@" not in result.output


def test_schema_given_twice_is_refused(gamedb, untouched):
    result = gamedb("-x", "schema=auth", "upgrade", "head", "-x", "schema=inventory")

    assert_one_line_error(result, "-x schema given 2 times")


def test_outside_the_monorepo_there_is_a_clear_error(tmp_path, database):
    result = run_cli(["-x", "schema=auth", "upgrade", "head"], url=database.url, cwd=tmp_path)

    assert_one_line_error(result, "no alembic.ini")


def test_debug_shows_the_traceback(gamedb):
    result = gamedb("--debug", "-x", "schema=billing", "upgrade", "head")

    assert result.code != 0
    assert "Traceback" in result.stderr
    assert "UnknownSchema" in result.stderr


# --- the inputs of issue 10, each one line, a non-zero exit and no change ---------------------------

UNUSABLE_URLS = {
    "a port that is not a number": ("postgresql+psycopg://gameadmin:pw@127.0.0.1:abc/game", "port"),
    "an unclosed IPv6 host": ("postgresql+psycopg://gameadmin:pw@[::1/game", "[brackets]"),
    "a port out of range": ("postgresql+psycopg://gameadmin@127.0.0.1:70000/game", "1 to 65535"),
    "no database name": ("postgresql+psycopg://gameadmin@127.0.0.1:5432/", "names no database"),
    "no path at all": ("postgresql+psycopg://gameadmin@127.0.0.1:5432", "names no database"),
    "libpq keyword form without a database": ("host=127.0.0.1 password=pw", "names no database"),
    "libpq keyword form unreadable": ("host=127.0.0.1 password='pw dbname=game", "nor a readable libpq key=value"),
}


@pytest.mark.parametrize("case", sorted(UNUSABLE_URLS))
def test_an_unusable_gamedb_url_is_one_line(case, untouched):
    url, fragment = UNUSABLE_URLS[case]

    result = run_cli(["-x", "schema=auth", "upgrade", "head"], url=url)

    assert_one_line_error(result, "GAMEDB_URL", fragment)


def test_a_url_without_a_database_name_does_not_migrate_database_postgres(database, untouched):
    url = make_url(database.url)._replace(database=None).render_as_string(hide_password=False)

    result = run_cli(["-x", "schema=auth", "upgrade", "head"], url=url)

    assert_one_line_error(result, "names no database")
    assert database.query("SELECT count(*) FROM pg_database WHERE datname = 'postgres'") == [(1,)]


@pytest.mark.parametrize("target", ["head+1", "heads+2", "auth@head+1"])
def test_upgrading_past_the_head_is_one_line(gamedb, untouched, target):
    result = gamedb("-x", "schema=auth", "upgrade", target)

    assert_one_line_error(result, "past the head")


@pytest.mark.parametrize(
    "variable",
    ["GAMEDB_LOCK_WAIT", "GAMEDB_LOCK_RETRIES", "GAMEDB_LOCK_TIMEOUT", "GAMEDB_MIGRATION_STATEMENT_TIMEOUT"],
)
@pytest.mark.parametrize("command", [["-x", "schema=auth", "upgrade", "head"], ["upgrade-all"]])
def test_a_garbage_lock_or_timeout_setting_is_one_line_before_anything_runs(database, untouched, variable, command):
    result = run_cli(command, url=database.url, **{variable: "abc"})

    assert_one_line_error(result, f"{variable}='abc'")
    assert database.version_rows("auth") is None


def test_roles_login_of_a_superuser_as_deployer_is_one_line(gamedb, untouched):
    result = gamedb("roles", "login", "postgres", "--migrator")

    assert_one_line_error(result, "roles login postgres")
    assert result.code == 1


def test_roles_apply_refused_by_the_server_is_one_line(database, untouched):
    database.query("CREATE ROLE bad_input_plain LOGIN")  # no CREATEROLE: every statement is refused
    url = make_url(database.url).set(username="bad_input_plain").render_as_string(hide_password=False)

    result = run_cli(["roles", "apply"], url=url)

    assert_one_line_error(result, "roles apply", "SQLSTATE 42501", "nothing changed")


@pytest.mark.parametrize("command", [["upgrade-all"], ["status"], ["check-all"], ["roles", "apply"], ["schemas"]])
def test_fleet_commands_refuse_x_schema(gamedb, untouched, command):
    result = gamedb("-x", "schema=bogus", *command)

    assert_one_line_error(result, "takes no -x")


def test_an_unknown_x_key_is_refused(gamedb, untouched):
    result = gamedb("-x", "schema=auth", "-x", "dbname=game", "upgrade", "head")

    assert_one_line_error(result, "unknown -x option 'dbname=game'")


def test_a_schema_value_is_not_stripped(gamedb, untouched):
    result = gamedb("-x", "schema= auth", "upgrade", "head")

    assert_one_line_error(result, "unknown schema ' auth'")


def test_lint_takes_x_schema_but_no_other_key(gamedb):
    result = gamedb("lint", "-x", "schema=auth", "-x", "foo=1")

    assert_one_line_error(result, "unknown -x option 'foo=1'")


@pytest.mark.parametrize("rev_id", ["../../x", "a/b", "x" * 33, "a.b", ""])
def test_revision_refuses_a_rev_id_that_is_not_a_revision_id(gamedb, rev_id):
    versions = REPO / "services" / "auth" / "src" / "game_auth" / "versions"
    before = {p.name for p in versions.rglob("*")}

    result = gamedb("revision", "-x", "schema=auth", "--rev-id", rev_id, "-m", "x")

    assert_one_line_error(result, "--rev-id")
    assert {p.name for p in versions.rglob("*")} == before


def test_revision_refuses_another_schemas_branch_label_once_the_schema_has_revisions(gamedb):
    versions = REPO / "services" / "auth" / "src" / "game_auth" / "versions"
    before = {p.name for p in versions.rglob("*")}

    result = gamedb("revision", "-x", "schema=auth", "--branch-label", "inventory", "-m", "x")

    assert_one_line_error(result, "--branch-label 'inventory'", "branch label 'auth'")
    assert {p.name for p in versions.rglob("*")} == before


# --- generated bad arguments, run in this process (none of them may reach the database) ----------

FLEET = [["status"], ["status", "--json"], ["upgrade-all"], ["upgrade-all", "--sql"], ["check-all"], ["schemas"]]
FLEET += [["roles", "apply"], ["roles", "sql"], ["roles", "check"], ["server", "url"]]
BAD_X = ["schema=auth", "schema=bogus", "schema=", "foo=bar", "schema", "Schema=auth", " schema=auth", "schema =auth"]
BAD_KEYS = ["foo=bar", "schema", "Schema=auth", " schema=auth", "schema =auth", "=auth", "schema:auth", "dbname=game"]
BAD_VALUES = ["", " auth", "auth ", "AUTH", "auth;drop", "bogus", "../auth", "auth\n", "pg_catalog", "public"]
BAD_REV_IDS = ["../x", "../../x", "a/b", "/abs", "a\\b", "x" * 33, "a.b", "a-b", "a b", ".", "..", "é", "$(x)", "a\nb"]
BAD_LABELS = ["inventory", "Auth", "auth,inventory", "", " auth", "x/y"]
BAD_TARGETS = ["head+1", "heads+1", "auth@head+3", "nosuchrev", "auth@nosuch", "inventory@head", "deadbeef"]
BAD_DURATIONS = ["abc", "-1", "2 s s", "1e3s", "10 minutes", "1;drop", "nan", "2S", "0x10"]
BAD_NUMBERS = ["abc", "-1", "nan", "inf", "1e400", "1,5", "--1", "0x10"]
BAD_URLS = [
    "postgresql+psycopg://u:pw@h:abc/game",
    "postgresql+psycopg://u:pw@h:/game",
    "postgresql+psycopg://u:pw@h:-1/game",
    "postgresql+psycopg://u:pw@h:65536/game",
    "postgresql+psycopg://u:pw@[::1/game",
    "postgresql+psycopg://u:pw@[::1]:x/game",
    "postgresql+psycopg://u:pw@h/",
    "postgresql+psycopg://u:pw@h",
    "postgresql+psycopg://u@/game?host=a&host=b&port=1&port=2",
    "sqlite:///game.db",
    "mysql://u:pw@h/game",
    "host=h password=pw",
    "://nothing",
    "not a url",
]
SCOPED = [["upgrade", "head"], ["current"], ["heads"], ["history"], ["downgrade", "base"], ["check"]]


def generated_bad_arguments() -> list[tuple[list[str], dict[str, str]]]:
    """(argv, extra environment) pairs, every one of which must be refused before any connection."""
    cases: list[tuple[list[str], dict[str, str]]] = []
    cases += [(["-x", x, *command], {}) for command in FLEET for x in BAD_X]
    cases += [([*command, "-x", x], {}) for command in FLEET[:3] for x in BAD_X[:3]]
    cases += [(["-x", key, *command], {}) for command in SCOPED for key in BAD_KEYS]
    cases += [(["-x", f"schema={value}", *command], {}) for command in SCOPED for value in BAD_VALUES]
    cases += [(["lint", "-x", key], {}) for key in BAD_KEYS]
    cases += [(["revision", "-x", "schema=auth", "--rev-id", rev, "-m", "x"], {}) for rev in BAD_REV_IDS]
    cases += [(["-x", "schema=auth", "merge", "heads", "--rev-id", rev], {}) for rev in BAD_REV_IDS[:4]]
    cases += [(["revision", "-x", "schema=auth", "--branch-label", label, "-m", "x"], {}) for label in BAD_LABELS]
    cases += [(["revision", "-x", "schema=auth", "--version-path", "/tmp", "-m", "x"], {})]
    for target in BAD_TARGETS:
        cases += [(["-x", "schema=auth", verb, target], {}) for verb in ("upgrade", "downgrade")]
        cases += [(["-x", "schema=auth", "upgrade", target, "--sql"], {})]
    for variable in ("GAMEDB_LOCK_TIMEOUT", "GAMEDB_MIGRATION_STATEMENT_TIMEOUT"):
        for value in BAD_DURATIONS:
            cases += [(command, {variable: value}) for command in (["-x", "schema=auth", "upgrade", "head"],)]
            cases += [(["upgrade-all"], {variable: value}), (["upgrade-all", "--sql"], {variable: value})]
    for variable in ("GAMEDB_LOCK_WAIT", "GAMEDB_LOCK_RETRIES"):
        for value in BAD_NUMBERS:
            cases += [
                (["-x", "schema=auth", "upgrade", "head"], {variable: value}),
                (["upgrade-all"], {variable: value}),
            ]
    for url in BAD_URLS:
        commands = [
            ["status"],
            ["check-all"],
            ["upgrade-all"],
            ["roles", "apply"],
            ["roles", "check"],
            ["server", "url"],
        ]
        commands += [["-x", "schema=auth", "upgrade", "head"], ["roles", "login", "x", "--migrator"]]
        cases += [(command, {"GAMEDB_URL": url}) for command in commands]
    cases += [(["upgrade-all", "--jobs", jobs], {}) for jobs in ("0", "-1", "abc", "")]
    cases += [(["roles", "login", name, "--migrator"], {}) for name in ("auth_owner", "migrator", "pg_x", "", "a b")]
    cases += [([command], {}) for command in ("nosuchcommand", "--nosuchoption", "roles", "server")]
    return cases


BAD_ARGUMENTS = generated_bad_arguments()


def test_there_are_a_few_hundred_generated_bad_arguments():
    assert len(BAD_ARGUMENTS) >= 300


def test_no_generated_bad_argument_gets_a_traceback_or_changes_the_database(database, cli_in_process):
    before = catalog_snapshot(database)
    failures = []
    for argv, env in BAD_ARGUMENTS:
        env = dict(env)
        result = cli_in_process(argv, url=env.pop("GAMEDB_URL", database.url), **env)
        lines = result.stderr.strip().splitlines()
        usage_error = result.code == 2 and lines and lines[0].startswith("usage: ")
        one_line = len(lines) == 1 and lines[0].startswith("gamedb: error: ")
        if result.code == 0 or "Traceback" in result.output or not (one_line or usage_error):
            failures.append((argv, env, result.code, result.stderr[-300:]))
    assert failures == []
    assert catalog_snapshot(database) == before
    assert database.version_rows("auth") is None


# --- revision files no command can use (issue 19): one line naming the file and line, nothing run ---

BROKEN_FILES = {
    # name: (how chat3's file, or the versions directory, is broken; what the line says)
    "not utf-8": ("latin-1", "chat3_step_chat3.py, line 2: not UTF-8 (byte 0xe9)"),
    "down_revision into another schema": (
        "down_revision = 'guild1'",
        "down_revision 'guild1' is a revision of schema 'guild'",
    ),
    "revision None": ("revision = None", "chat3_step_chat3.py, line 11: schema 'chat': revision = None"),
    "directory named .py": ("directory", "zz_notes.py: not a file, yet named like a revision file"),
    "dangling symlink": ("symlink", "zz_link.py: a symbolic link to nothing"),
    "duplicate id": ("duplicate", "revision 'chat2' is also declared by"),
    "self-loop": ("down_revision = 'chat3'", "revision 'chat3' revises itself"),
    "another schema's branch label": ("branch_labels = ('guild',)", "carries branch label(s) 'guild'"),
    "a label on a later revision": ("branch_labels = ('chat',)", "only the schema's first revision carries one"),
}
RUN_COMMANDS = [
    ["status"],
    ["status", "--no-drift"],
    ["upgrade-all"],
    ["upgrade-all", "--sql"],
    ["check-all"],
    ["-x", "schema=chat", "upgrade", "head"],
    ["-x", "schema=chat", "downgrade", "base"],
    ["-x", "schema=chat", "stamp", "head"],
    ["-x", "schema=chat", "current"],
    ["-x", "schema=chat", "check"],
    ["-x", "schema=chat", "upgrade", "head", "--sql"],
]


def break_chat3(versions, how: str) -> None:
    chat3 = versions / "chat3_step_chat3.py"
    text = chat3.read_text()
    if how == "latin-1":
        chat3.write_bytes(text.replace("\n", "\n# café\n", 1).encode("latin-1"))
    elif how == "directory":
        (versions / "zz_notes.py").mkdir()
    elif how == "symlink":
        (versions / "zz_link.py").symlink_to(versions / "gone.py")
    elif how == "duplicate":
        copy = (versions / "chat2_step_chat2.py").read_text().replace("SELECT 2", "SELECT 22")
        (versions / "aa_chat2_copy.py").write_text(copy)
    else:  # replace one assignment line
        key = how.split(" =")[0]
        chat3.write_text(re.sub(rf"^{key}\b.*$", how, text, count=1, flags=re.MULTILINE))


@pytest.mark.parametrize("case", list(BROKEN_FILES))
def test_a_broken_revision_file_is_named_by_every_command(database, fleet, case: str) -> None:
    extra = fleet(
        {
            "chat": [(f"chat{i}", [f"SELECT {i}"], []) for i in (1, 2, 3)],
            "guild": [("guild1", [], []), ("guild2", [], [])],
        }
    )
    applied = run_cli(["upgrade-all"], url=database.url, python_path=extra)
    assert applied.code == 0, applied.output
    how, expected = BROKEN_FILES[case]
    versions = extra[0] / "game_chat" / "versions"
    break_chat3(versions, how)
    before = catalog_snapshot(database)
    for command in RUN_COMMANDS:
        result = run_cli(command, url=database.url, python_path=extra)
        assert result.code != 0 and expected in result.stderr, (command, result.output)
        assert_one_line_error(result, expected, str(versions))
        for inside in ("pathlib", "site-packages", "Background on this error", "sqlalche.me"):
            assert inside not in result.output, (command, result.output)
    assert catalog_snapshot(database) == before
    assert database.version_rows("chat") == ["chat3"]


@pytest.mark.parametrize("block", ["transaction", "autocommit block"])
@pytest.mark.parametrize("command", [["upgrade-all"], ["-x", "schema=chat", "upgrade", "head"]])
def test_a_connection_lost_during_a_revision_is_the_failed_report(database, fleet, block, command) -> None:
    """The server ends the migration's session mid-revision (as a restart does): one FAILED line
    naming schema and revision, never SQLAlchemy's "Can't reconnect ... (Background on this error ...)"."""
    import time

    from conftest import spawn_cli

    extra = fleet({"chat": [("chat1", [], []), ("chat2", ["SELECT pg_sleep(60)"], [])]})
    chat2 = extra[0] / "game_chat" / "versions" / "chat2_step_chat2.py"
    if block == "autocommit block":
        chat2.write_text(
            chat2.read_text().replace(
                "    op.execute('SELECT pg_sleep(60)')",
                "    with op.get_context().autocommit_block():\n        op.execute('SELECT pg_sleep(60)')",
            )
        )
    proc = spawn_cli(command, database.url, extra)
    deadline = time.monotonic() + 60
    while not database.query(
        "SELECT 1 FROM pg_stat_activity WHERE application_name = 'gamedb:chat' AND query LIKE '%pg_sleep%'"
    ):
        assert time.monotonic() < deadline and proc.poll() is None, proc.communicate()
        time.sleep(0.1)
    database.query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'gamedb:chat'")
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 1, out + err
    for inside in ("Background on this error", "sqlalche.me", "Traceback", "revision ?"):
        assert inside not in out + err
    lines = [line for line in err.strip().splitlines() if not line.startswith("progress ")]  # upgrade-all's progress
    if command == ["upgrade-all"]:
        assert lines[0].startswith("FAILED chat at revision chat2 (schema left at chat1): "), err
    else:  # after Alembic's "Running upgrade" lines
        assert [line for line in lines if line.startswith("gamedb: ")] == [lines[-1]], err
        assert lines[-1].startswith("gamedb: error: schema 'chat': "), err
    assert database.version_rows("chat") == ["chat1"]


def test_a_failure_before_any_revision_names_no_revision_question_mark(database, fleet) -> None:
    """A deployer whose database lost the checksum table: upgrade-all fails before any revision runs."""
    extra = fleet({"chat": [("chat1", [], []), ("chat2", [], [])]})
    admin = [run_cli(args, url=database.url, python_path=extra) for args in (["roles", "apply"], ["upgrade-all"])]
    admin.append(run_cli(["roles", "login", "deployer", "--migrator"], url=database.url, python_path=extra))
    assert all(r.code == 0 for r in admin), [r.output for r in admin]
    database.query("DELETE FROM alembic.gamedb_checksums_chat")
    database.query("DROP TABLE alembic.gamedb_checksums_chat")
    deployer_url = database.url.replace("postgresql+psycopg://postgres", "postgresql+psycopg://deployer", 1)
    result = run_cli(["upgrade-all"], url=deployer_url, python_path=extra)
    assert result.code == 1, result.output
    assert "revision ?" not in result.output
    assert "FAILED chat before any revision ran (schema left at chat2): " in result.stderr, result.stderr
    assert "an admin runs `gamedb roles apply`" in result.stderr


def test_the_readmes_first_revision_command_works_once_then_refuses_before_writing(scratch_service) -> None:
    """`gamedb revision --branch-label chat -m "init chat schema"`: a schema's first revision; run again
    (the schema has its first revision now, as new-service writes one) it is one line and no file."""
    layout = scratch_service("chat")
    extra = [layout.src_dir]
    url = "postgresql+psycopg://nobody@127.0.0.1:1/game"  # writing a revision needs no server
    first = run_cli(["revision", "--branch-label", "chat", "-m", "init chat schema"], url=url, python_path=extra)
    assert first.code == 0, first.output
    [init] = layout.versions_dir.glob("*_init_chat_schema.py")
    assert "branch_labels: str | Sequence[str] | None = ('chat',)" in init.read_text()
    assert "CREATE SCHEMA IF NOT EXISTS" in init.read_text()
    for args in (
        ["revision", "--branch-label", "chat", "-m", "init chat schema"],
        ["revision", "-x", "schema=chat", "--branch-label", "chat", "-m", "init chat schema"],
    ):
        again = run_cli(args, url=url, python_path=extra)
        assert_one_line_error(again, "--branch-label 'chat': schema 'chat' already has its first revision")
        assert list(layout.versions_dir.glob("*.py")) == [init]
    later = run_cli(["revision", "-x", "schema=chat", "-m", "add rooms"], url=url, python_path=extra)
    assert later.code == 0, later.output


@pytest.mark.parametrize(
    ("args", "code", "fragment"),
    [
        (["server", "start", ""], 2, "server start: '' is not a directory"),
        (["server", "stop", " "], 2, "server stop: ' ' is not a directory"),
        (["server", "start", "{file}"], 2, "is not a directory"),
        (["server", "url", "{dir}"], 2, "server url takes no DIR"),
        (["server", "start", "/proc/gamedb-no-such-dir"], 1, "server start: can't use '/proc/gamedb-no-such-dir'"),
    ],
)
def test_a_bad_server_directory_is_one_line_and_starts_nothing(tmp_path, args, code, fragment):
    (tmp_path / "a-file").write_text("x")
    args = [a.format(file=tmp_path / "a-file", dir=tmp_path) for a in args]
    before = sorted(p.name for p in REPO.iterdir())

    result = run_cli(args, url=None)

    assert result.code == code
    assert_one_line_error(result, fragment)
    assert sorted(p.name for p in REPO.iterdir()) == before  # no pgdata made in the working directory
