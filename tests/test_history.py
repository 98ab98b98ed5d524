"""History no one can rewrite: every path verifies the record first, the record is append-only and
written only through its function, a superuser's edits break its chain, and what a revision runs is
what is hashed (issue 19, items 1-4)."""

from __future__ import annotations

import json
from pathlib import Path

import psycopg
import pytest
from test_checksums import CHAT, COMMENT_EDIT, EVERYTHING, MODELS, REAL_EDIT, edit, old_form, refusal, revision_file
from test_move_attacks import Pair, add_service, one_error
from test_move_attacks import servers as servers

from conftest import apply_with_psql, run_cli
from gamedb.migrate.checksums import file_checksum, normalized_text

HISTORY = "SELECT seq, revision, reason, checksum FROM alembic.gamedb_checksums_chat ORDER BY seq"  # the whole record


@pytest.fixture
def chat(gamedb, fleet):
    extra = fleet(CHAT)
    models = extra[0] / "game_chat" / "models.py"
    models.write_text(models.read_text() + MODELS)
    assert gamedb("upgrade-all", extra=extra).code == 0
    return extra


def deployer_setup(gamedb, database, extra: list[Path]) -> str:
    for args in (
        ["roles", "apply"],
        ["roles", "login", "chat_svc", "--schema", "chat"],
        ["roles", "login", "deployer", "--migrator"],
    ):
        result = gamedb(*args, extra=extra)
        assert result.code == 0, result.output
    return database.url.replace("postgresql+psycopg://postgres", "postgresql+psycopg://deployer", 1)


# --- item 1: every path verifies the history first ----------------------------------------------


@pytest.mark.parametrize("target", ["chat3", "chat1"], ids=["stamp up to the same head", "stamp down"])
def test_stamp_refuses_an_edited_applied_revision_and_changes_nothing(chat, gamedb, database, target):
    edit(revision_file(chat, "chat2"), REAL_EDIT)
    before = database.query(EVERYTHING)

    result = gamedb("-x", "schema=chat", "stamp", target, extra=chat)

    assert (result.code, result.stderr) == (1, refusal(chat)), result.output
    assert database.query(EVERYTHING) == before


def test_current_refuses_an_edited_applied_revision(chat, gamedb):
    edit(revision_file(chat, "chat2"), COMMENT_EDIT)

    result = gamedb("-x", "schema=chat", "current", extra=chat)

    assert (result.code, result.stderr) == (1, refusal(chat))


def test_a_downgrade_plan_stops_where_it_is_applied_when_a_revision_it_undoes_was_edited(chat, gamedb, database, psql):
    # the plan is written from the files (no database needed); psql applies it to a database whose record
    # says chat3 ran with another file
    path = revision_file(chat, "chat3")
    edit(path, ("DROP TABLE chat.notes", "DELETE FROM chat.messages"))
    before = database.query(EVERYTHING)

    plan = gamedb("-x", "schema=chat", "downgrade", "chat3:chat2", "--sql", extra=chat)
    assert plan.code == 0, plan.output
    applied = apply_with_psql(psql, database, plan.stdout, single_transaction=True)

    assert applied.returncode != 0
    assert (
        f"schema chat: revision chat3 was edited after it was recorded: {path} differs from the checksum recorded "
        "for it; restore the file, or accept the change with gamedb repair-checksums -x schema=chat chat3"
    ) in applied.stderr
    assert database.query(EVERYTHING) == before


def test_an_upgrade_plan_applied_to_a_database_with_an_edited_history_stops_before_it_runs(
    chat, gamedb, database, psql
):
    edit(revision_file(chat, "chat2"), REAL_EDIT)
    plan = gamedb("-x", "schema=chat", "upgrade", "chat1:head", "--sql", extra=chat)
    assert plan.code == 0, plan.output
    before = database.query(EVERYTHING)

    applied = apply_with_psql(psql, database, plan.stdout)

    assert applied.returncode != 0 and "revision chat2 was edited after it was recorded" in applied.stderr
    assert "ERROR:  relation" not in applied.stderr  # stopped before chat2's CREATE TABLE ran again
    assert database.query(EVERYTHING) == before


def test_move_refuses_a_schema_whose_applied_revision_was_edited_and_the_target_gets_nothing(
    servers: Pair, scratch_service
):
    add_service(
        servers,
        scratch_service,
        "chat",
        ["CREATE TABLE chat.msgs (id int PRIMARY KEY)"],
    )
    for args in (["upgrade-all"], ["roles", "apply"]):
        result = servers.run(*args)
        assert result.code == 0, result.output
    servers.source.query("INSERT INTO chat.msgs SELECT generate_series(1, 102)")
    path = servers.python_path[-1] / "game_chat" / "versions" / "a2_tables.py"
    text = path.read_text()
    assert "def downgrade() -> None:\n" in text
    path.write_text(
        text.replace(
            "def downgrade() -> None:\n", "def downgrade() -> None:\n    op.execute('DELETE FROM chat.msgs')\n", 1
        )
    )

    result = servers.run("move", "chat", "--to", "hot")

    assert one_error(result) == (
        f"gamedb: error: schema 'chat': applied revision a2 was edited after it was applied: {path} differs from the "
        "checksum recorded for it; restore the file, or accept the change with "
        "gamedb repair-checksums -x schema=chat a2"
    )
    assert servers.target.query(
        "SELECT to_regnamespace('chat')::text, to_regclass('alembic.gamedb_checksums_chat')::text"
    ) == [(None, None)]
    assert servers.source.query("SELECT count(*) FROM chat.msgs") == [(102,)]
    assert "chat" not in servers.placement()
    assert servers.leftovers("chat") == []


# --- item 2: append-only -------------------------------------------------------------------------


def test_a_downgrade_and_a_stamp_down_mark_rows_unapplied_and_keep_them(chat, gamedb, database):
    before = database.query(HISTORY)

    assert gamedb("-x", "schema=chat", "downgrade", "-1", extra=chat).code == 0
    assert gamedb("-x", "schema=chat", "stamp", "chat1", extra=chat).code == 0

    after = database.query(HISTORY)
    assert after[: len(before)] == before  # nothing removed or changed
    assert [row[1:3] for row in after[len(before) :]] == [("chat3", "downgraded"), ("chat2", "stamped down")]
    assert [row[0] for row in after] == list(range(1, len(after) + 1))


def test_two_stamps_do_not_erase_an_edit_and_the_later_stamp_is_refused(chat, gamedb, database):
    # the issue's attack: stamp below the revision, edit it, stamp past it again
    assert gamedb("-x", "schema=chat", "stamp", "chat2", extra=chat).code == 0
    path = revision_file(chat, "chat3")
    edit(path, ("DROP TABLE chat.notes", "DELETE FROM chat.messages"))
    before = database.query(EVERYTHING)

    stamped = gamedb("-x", "schema=chat", "stamp", "chat3", extra=chat)
    status = gamedb("status", "--check", extra=chat)
    upgraded = gamedb("upgrade-all", extra=chat)

    message = (
        f"gamedb: error: schema 'chat': revision chat3 was edited after it was recorded (applied once, now "
        f"un-applied): {path} differs from the checksum recorded for it; restore the file, or accept the change "
        "with gamedb repair-checksums -x schema=chat chat3\n"
    )
    assert (stamped.code, stamped.stderr) == (1, message)
    assert (status.code, status.stderr) == (1, message)
    assert (upgraded.code, upgraded.stderr) == (1, message)
    assert database.query(EVERYTHING) == before
    assert "first seen" not in {row[2] for row in database.query(HISTORY)}


def test_an_edit_accepted_on_purpose_after_a_downgrade_is_recorded_as_repaired_and_then_runs(chat, gamedb, database):
    assert gamedb("-x", "schema=chat", "downgrade", "chat2", extra=chat).code == 0
    path = revision_file(chat, "chat3")
    edit(path, COMMENT_EDIT)
    assert gamedb("-x", "schema=chat", "upgrade", "head", extra=chat).code == 1

    repaired = gamedb("repair-checksums", "-x", "schema=chat", "chat3", extra=chat)
    upgraded = gamedb("-x", "schema=chat", "upgrade", "head", extra=chat)

    assert repaired.code == 0 and upgraded.code == 0, repaired.output + upgraded.output
    reasons = [(rev, reason) for _, rev, reason, _ in database.query(HISTORY) if rev == "chat3"]
    assert reasons == [("chat3", "applied"), ("chat3", "downgraded"), ("chat3", "repaired"), ("chat3", "applied")]


# --- item 3: no managed login can change a row; a superuser's change is evident ------------------


@pytest.mark.parametrize("as_role", ["deployer itself", "SET ROLE chat_owner", "SET ROLE migrator"])
@pytest.mark.parametrize(
    "statement",
    [
        "DELETE FROM alembic.gamedb_checksums_chat WHERE revision = 'chat3'",
        "UPDATE alembic.gamedb_checksums_chat SET checksum = 'x'",
        "TRUNCATE alembic.gamedb_checksums_chat",
        "INSERT INTO alembic.gamedb_checksums_chat SELECT * FROM alembic.gamedb_checksums_chat LIMIT 1",
        "ALTER TABLE alembic.gamedb_checksums_chat DISABLE TRIGGER ALL",
        "DROP TABLE alembic.gamedb_checksums_chat",
        "COMMENT ON TABLE alembic.gamedb_checksums_chat IS NULL",
        "SET ROLE gamedb_history",
        "CREATE OR REPLACE FUNCTION alembic.gamedb_record_chat(text, text, text, text, text) RETURNS void"
        " LANGUAGE sql AS 'SELECT 1'",
    ],
)
def test_no_managed_login_can_change_or_delete_a_recorded_row(gamedb, fleet, database, as_role, statement):
    extra = fleet(CHAT)
    deployer_url = deployer_setup(gamedb, database, extra)
    assert run_cli(["upgrade-all"], url=deployer_url, python_path=extra).code == 0
    before = database.query(HISTORY)

    for login in ("deployer", "chat_svc"):
        with psycopg.connect(database.login_uri(login), autocommit=True) as conn:
            if as_role != "deployer itself" and login == "deployer":
                conn.execute(as_role)
            with pytest.raises(psycopg.Error) as denied:
                conn.execute(statement)
        assert denied.value.sqlstate == "42501", (login, statement, denied.value)
    assert database.query(HISTORY) == before
    assert database.query(
        "SELECT relowner::regrole::text,"
        " (SELECT count(*) FROM pg_auth_members WHERE roleid = 'gamedb_history'::regrole)"
        " FROM pg_class WHERE oid = 'alembic.gamedb_checksums_chat'::regclass"
    ) == [("gamedb_history", 0)]


def test_the_deployer_attack_of_the_issue_is_refused_and_the_record_stays(gamedb, fleet, database):
    extra = fleet(CHAT)
    deployer_url = deployer_setup(gamedb, database, extra)
    assert run_cli(["upgrade-all"], url=deployer_url, python_path=extra).code == 0
    with psycopg.connect(database.login_uri("deployer"), autocommit=True) as conn:
        conn.execute("SET ROLE chat_owner")
        with pytest.raises(psycopg.Error) as denied:
            conn.execute("DELETE FROM alembic.gamedb_checksums_chat WHERE revision = 'chat3'")
    assert denied.value.sqlstate == "42501"
    edit(revision_file(extra, "chat3"), COMMENT_EDIT)

    upgraded = run_cli(["upgrade-all"], url=deployer_url, python_path=extra)
    status = run_cli(["status", "--check"], url=deployer_url, python_path=extra)

    assert upgraded.code == 1 and status.code == 1
    assert status.stderr == refusal(extra, "chat3")
    assert gamedb("roles", "check", extra=extra).code == 0
    assert database.query(
        "SELECT DISTINCT recorded_by, recorded_as FROM alembic.gamedb_checksums_chat WHERE revision <> ''"
    ) == [("deployer", "chat_owner")]


@pytest.mark.parametrize(
    ("tamper", "problem"),
    [
        (
            "DELETE FROM alembic.gamedb_checksums_chat WHERE revision = 'chat3'",
            "ends at row 3 but its head names row 4: rows were deleted or changed (truncated chain)",
        ),
        (
            "DELETE FROM alembic.gamedb_checksums_chat WHERE revision = 'chat2'",
            "was altered: row 4 does not chain to the row before it (broken chain)",
        ),
        (
            "UPDATE alembic.gamedb_checksums_chat SET checksum = 'sha256:0' WHERE revision = 'chat2'",
            "was altered: row 3 does not chain to the row before it (broken chain)",
        ),
        ("TRUNCATE alembic.gamedb_checksums_chat", "is empty: its rows were deleted (truncated)"),
        (
            "DELETE FROM alembic.gamedb_checksums_chat WHERE seq = 1",
            "lost its first rows (truncated): it starts at row 2",
        ),
    ],
    ids=["last row deleted", "a middle row deleted", "a row changed", "truncated", "first row deleted"],
)
def test_a_superuser_who_alters_the_record_is_named_by_status_and_nothing_is_first_seen(
    chat, gamedb, database, tamper, problem
):
    database.query(tamper)
    before = database.query(EVERYTHING)

    for args in (
        ["status"],
        ["status", "--no-drift", "--check"],
        ["check-all"],
        ["-x", "schema=chat", "check"],
        ["upgrade-all"],
        ["-x", "schema=chat", "upgrade", "head"],
        ["-x", "schema=chat", "stamp", "chat1"],
        ["repair-checksums", "-x", "schema=chat", "chat2"],
    ):
        result = gamedb(*args, extra=chat)
        if args[0] == "repair-checksums":  # a refusal of repair-checksums is exit 2 and says nothing changed
            assert result.code == 2 and problem in result.stderr and "nothing changed" in result.stderr, result.output
            continue
        assert result.code == 1, (args, result.output)
        first_line = f"gamedb: error: schema 'chat': its history alembic.gamedb_checksums_chat {problem}; nothing was"
        assert result.stderr.startswith(first_line + " run or recorded") and result.stderr.count("\n") == 1, args
    assert database.query(EVERYTHING) == before


def test_an_old_form_table_is_converted_by_the_first_run_keeping_its_rows(chat, gamedb, database):
    old_form(database, chat, ("chat1", "chat2", "chat3"))  # the table as gamedb 95b7b63 made it, with its rows
    edit(revision_file(chat, "chat2"), COMMENT_EDIT)
    assert gamedb("status", extra=chat).stderr == refusal(chat)  # the old rows are compared before conversion
    edit(revision_file(chat, "chat2"), COMMENT_EDIT[::-1])

    upgraded = gamedb("upgrade-all", extra=chat)

    assert upgraded.code == 0, upgraded.output
    assert [row[1:3] for row in database.query(HISTORY)] == [
        ("", "history started"),
        ("chat1", "applied"),
        ("chat2", "applied"),
        ("chat3", "applied"),
    ]
    assert gamedb("status", "--check", "--no-drift", extra=chat).code == 0


def test_roles_apply_converts_an_old_form_table_and_check_knows_the_new_owner(gamedb, fleet, database):
    extra = fleet(CHAT)
    assert gamedb("upgrade-all", extra=extra).code == 0
    old_form(database, extra, ("chat1", "chat2", "chat3"))
    deployer_url = deployer_setup(gamedb, database, extra)  # roles apply converts
    assert database.query(HISTORY)[0][1:3] == ("", "history started")

    check = gamedb("roles", "check", extra=extra)
    assert check.code == 0, check.output
    database.query("ALTER TABLE alembic.gamedb_checksums_chat OWNER TO chat_owner")
    database.query("GRANT EXECUTE ON FUNCTION alembic.gamedb_record_chat(text, text, text, text, text) TO migrator")
    check = gamedb("roles", "check", extra=extra)
    assert (
        "checksum table alembic.gamedb_checksums_chat is owned by chat_owner, expected gamedb_history" in check.stdout
    )
    assert "migrator has EXECUTE on function alembic.gamedb_record_chat" in check.stdout
    assert gamedb("roles", "apply", extra=extra).code == 0
    assert gamedb("roles", "check", extra=extra).code == 0
    assert run_cli(["status", "--check", "--no-drift"], url=deployer_url, python_path=extra).code == 0


# --- item 4: what a revision runs is what is hashed -----------------------------------------------


def test_trailing_spaces_inside_a_multi_line_string_change_the_checksum(tmp_path):
    path = tmp_path / "r.py"
    path.write_text('def upgrade():\n    op.execute("""\n        UPDATE t SET a = \'x\n        y\'\n    """)  \n')
    before = file_checksum(path)
    path.write_text('def upgrade():\n    op.execute("""\n        UPDATE t SET a = \'x   \n        y\'\n    """)  \n')
    assert file_checksum(path) != before
    path.write_text('def upgrade():  \n    op.execute("""\n        UPDATE t SET a = \'x   \n        y\'\n    """)\n')
    assert normalized_text(path.read_bytes()).endswith(b'    """)')
    assert file_checksum(path) != before


def test_an_applied_revision_with_trailing_spaces_added_inside_its_sql_is_refused(chat, gamedb):
    path = revision_file(chat, "chat2")
    source = path.read_text()
    path.write_text(source.replace("op.execute(", 'op.execute("""SELECT 1\n""")\n    op.execute(', 1))
    assert gamedb("repair-checksums", "-x", "schema=chat", "chat2", extra=chat).code == 0
    path.write_text(source.replace("op.execute(", 'op.execute("""SELECT 1   \n""")\n    op.execute(', 1))

    result = gamedb("status", "--no-drift", extra=chat)

    assert (result.code, result.stderr) == (1, refusal(chat))


def test_lint_refuses_a_revision_that_imports_its_own_services_code(gamedb, fleet):
    extra = fleet(CHAT)
    package = extra[0] / "game_chat"
    (package / "helper_sql.py").write_text("NOTES = 'CREATE TABLE chat.notes (id int)'\n")
    path = revision_file(extra, "chat3")
    path.write_text(
        path.read_text().replace(
            "from alembic import op\n", "from alembic import op\n\nfrom game_chat import helper_sql\n", 1
        )
    )
    accepted = package.parent / "baseline.json"  # every finding accepted, as a team would on adopting lint
    baseline = gamedb("lint", "-x", "schema=chat", "--baseline", str(accepted), extra=extra)

    result = gamedb("lint", "-x", "schema=chat", "--json", "--baseline-file", str(accepted), extra=extra)

    assert baseline.code == 0, baseline.output
    assert result.code == 1, result.output
    found = [f for f in json.loads(result.stdout)["findings"] if f["rule"] == "gamedb-revision-imports-service-code"]
    assert [(f["revision"], f["message"]) for f in found] == [
        ("chat3", "the revision imports game_chat, code of its own service")
    ]


# --- gamedb squash on the record (issue 24) -----------------------------------------------------


RECORD = "SELECT alembic.gamedb_record_chat(%s, 'squashed', %s, 'squash.py', %s)"


def test_a_squashed_event_is_recorded_only_over_the_revisions_latest_checksum(chat, database):
    before = database.query(HISTORY)
    latest = before[-1][3] if before[-1][1] == "chat2" else [r for r in before if r[1] == "chat2"][-1][3]
    with psycopg.connect(database.libpq, autocommit=True) as conn:
        for revision, checksum, replaced in (
            ("chat2", "sha256:new", None),  # a changed checksum that does not name the one it replaces
            ("chat2", "sha256:new", "sha256:not-the-latest"),  # names another one
            ("chat9", "sha256:new", None),  # a revision the record never saw
        ):
            with pytest.raises(psycopg.Error) as refused:
                conn.execute(RECORD, (revision, checksum, replaced))
            assert refused.value.sqlstate == "GDB02", refused.value
        assert database.query(HISTORY) == before

        conn.execute(RECORD, ("chat2", "sha256:new", latest))  # over its latest checksum: recorded
        conn.execute(RECORD, ("chat1", [r for r in before if r[1] == "chat1"][-1][3], None))  # kept checksum

    after = database.query(HISTORY)
    assert after[: len(before)] == before
    assert [row[1:4] for row in after[len(before) :]] == [
        ("chat2", "squashed", "sha256:new"),
        ("chat1", "squashed", [r for r in before if r[1] == "chat1"][-1][3]),
    ]
    chain = database.query(
        "SELECT min(seq) FILTER (WHERE prev_hash <> coalesce(p, '')) FROM (SELECT seq, prev_hash, "
        "lag(row_hash) OVER (ORDER BY seq) AS p FROM alembic.gamedb_checksums_chat) c"
    )
    assert chain == [(None,)]


def test_a_recording_function_of_an_earlier_gamedb_is_replaced_by_roles_apply_keeping_owner_and_grants(
    gamedb, fleet, database
):
    from gamedb.migrate.history import FUNCTION_VERSION, create_function_sql

    extra = fleet(CHAT)
    deployer_url = deployer_setup(gamedb, database, extra)
    assert run_cli(["upgrade-all"], url=deployer_url, python_path=extra).code == 0
    current = create_function_sql("chat", "gamedb_checksums_chat")
    earlier = current.replace(f"    -- {FUNCTION_VERSION}\n", "").replace(", 'squashed'", "")
    assert earlier != current and FUNCTION_VERSION not in earlier and "'squashed'," not in earlier
    database.query(earlier)  # as an earlier gamedb installed it (before `squashed` was an event)
    grants = "SELECT proowner::regrole::text, proacl::text FROM pg_proc WHERE proname = 'gamedb_record_chat'"
    owner_and_grants = database.query(grants)
    assert owner_and_grants[0][0] == "gamedb_history"

    down = ["-x", "schema=chat", "downgrade", "-1"]
    refused = run_cli(down, url=deployer_url, python_path=extra)  # a run that records: may not replace it
    assert refused.code != 0
    assert database.query("SELECT version_num FROM alembic.alembic_version_chat") == [("chat3",)]
    assert "gamedb_record_chat, is of an earlier gamedb" in refused.stderr, refused.stderr
    assert "roles apply" in refused.stderr and "Traceback" not in refused.stderr

    assert gamedb("roles", "apply", extra=extra).code == 0
    prosrc = database.query("SELECT prosrc FROM pg_proc WHERE proname = 'gamedb_record_chat'")[0][0]
    assert FUNCTION_VERSION in prosrc and "'squashed'" in prosrc
    assert database.query(grants) == owner_and_grants
    assert run_cli(down, url=deployer_url, python_path=extra).code == 0
    assert run_cli(["upgrade-all"], url=deployer_url, python_path=extra).code == 0
    assert run_cli(["status", "--check", "--no-drift"], url=deployer_url, python_path=extra).code == 0
