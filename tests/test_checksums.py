"""Checksums of applied revisions: an applied revision edited afterwards is refused by every command
that reads or moves the history, until the file is restored or the change is accepted on purpose."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import apply_with_psql, run_cli
from gamedb.migrate.checksums import file_checksum

MODELS = """

from sqlalchemy import Integer
from sqlalchemy.orm import Mapped, mapped_column


class Message(Base):
    __tablename__ = "messages"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)


class Note(Base):
    __tablename__ = "notes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
"""
MESSAGES = "CREATE TABLE chat.messages (id integer NOT NULL, CONSTRAINT pk_messages PRIMARY KEY (id))"
NOTES = "CREATE TABLE chat.notes (id integer NOT NULL, CONSTRAINT pk_notes PRIMARY KEY (id))"
CHAT = {
    "chat": [
        ("chat1", [], []),
        ("chat2", [MESSAGES], ["DROP TABLE chat.messages"]),
        ("chat3", [NOTES], ["DROP TABLE chat.notes"]),
    ]
}
# each revision's latest row in the record (which is append-only: gamedb.migrate.history)
ROWS = (
    "SELECT revision, checksum, file, reason FROM (SELECT DISTINCT ON (revision) * FROM alembic.gamedb_checksums_chat"
    " WHERE revision <> '' ORDER BY revision, seq DESC) latest ORDER BY 1"
)
APPLIED_ROWS = ROWS.replace("latest ORDER BY 1", "latest WHERE reason NOT IN ('downgraded', 'stamped down') ORDER BY 1")
EVERYTHING = """
SELECT (SELECT array_agg(version_num ORDER BY 1) FROM alembic.alembic_version_chat),
       (SELECT array_agg(row(revision, checksum, file, reason, recorded_at)::text ORDER BY 1)
        FROM alembic.gamedb_checksums_chat),
       (SELECT array_agg(c.relname::text ORDER BY 1) FROM pg_class c WHERE c.relnamespace = 'chat'::regnamespace)
"""


@pytest.fixture
def chat(gamedb, fleet):
    """Service chat (chat1..chat3, models matching) with every schema upgraded; returns its paths."""
    extra = fleet(CHAT)
    models = extra[0] / "game_chat" / "models.py"
    models.write_text(models.read_text() + MODELS)
    upgraded = gamedb("upgrade-all", extra=extra)
    assert upgraded.code == 0, upgraded.output
    return extra


def versions(extra: list[Path]) -> Path:
    return extra[0] / "game_chat" / "versions"


def revision_file(extra: list[Path], revision: str) -> Path:
    return versions(extra) / f"{revision}_step_{revision}.py"


def expected_rows(extra: list[Path], reason: str = "applied") -> list[tuple[str, str, str, str]]:
    return [
        (rev, file_checksum(revision_file(extra, rev)), revision_file(extra, rev).name, reason)
        for rev in ("chat1", "chat2", "chat3")
    ]


def test_each_applied_revision_gets_the_checksum_of_its_file_next_to_its_version_row(chat, database):
    assert database.query(ROWS) == expected_rows(chat)
    who = database.query("SELECT DISTINCT recorded_by, recorded_as FROM alembic.gamedb_checksums_chat")
    assert who == [("postgres", "postgres")]
    assert database.query("SELECT count(*) FROM alembic.gamedb_checksums_auth WHERE revision <> ''") == [(2,)]
    assert file_checksum(revision_file(chat, "chat1")).startswith("sha256:")


REAL_EDIT = ("CONSTRAINT pk_messages PRIMARY KEY (id))", "body text, CONSTRAINT pk_messages PRIMARY KEY (id))")
COMMENT_EDIT = ("def upgrade() -> None:\n", "def upgrade() -> None:\n    # fixed a typo\n")


def edit(path: Path, change: tuple[str, str]) -> None:
    old, new = change
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new, 1))


def refusal(extra: list[Path], revision: str = "chat2") -> str:
    path = revision_file(extra, revision)
    return (
        f"gamedb: error: schema 'chat': applied revision {revision} was edited after it was applied: {path} "
        f"differs from the checksum recorded for it; restore the file, or accept the change with "
        f"gamedb repair-checksums -x schema=chat {revision}\n"
    )


COMMANDS = {
    "status": ["status"],
    "status --no-drift": ["status", "--no-drift"],
    "check": ["-x", "schema=chat", "check"],
    "check-all": ["check-all"],
    "upgrade-all": ["upgrade-all"],
    "upgrade": ["-x", "schema=chat", "upgrade", "head"],
    "downgrade": ["-x", "schema=chat", "downgrade", "-1"],
}


@pytest.mark.parametrize("command", COMMANDS, ids=list(COMMANDS))
@pytest.mark.parametrize("change", [REAL_EDIT, COMMENT_EDIT], ids=["sql change", "comment only"])
def test_a_command_refuses_an_edited_applied_revision_with_one_line_and_changes_nothing(
    chat, gamedb, fleet, database, command, change
):
    edit(revision_file(chat, "chat2"), change)
    # a revision waits to be applied: a run that did not refuse would apply it
    pending = revision_file(chat, "chat3").with_name("chat4_step_chat4.py")
    pending.write_text(
        revision_file(chat, "chat3")
        .read_text()
        .replace("'chat3'", "'chat4'")
        .replace("'chat2'", "'chat3'")
        .replace(NOTES, "CREATE TABLE chat.later (id int)")
        .replace("DROP TABLE chat.notes", "DROP TABLE chat.later")
    )
    before = database.query(EVERYTHING)

    result = gamedb(*COMMANDS[command], extra=chat)

    assert (result.code, result.stderr, result.stdout) == (1, refusal(chat), "")
    assert database.query(EVERYTHING) == before


def test_whitespace_that_editors_and_git_change_is_not_an_edit(chat, gamedb):
    path = revision_file(chat, "chat2")
    lines = path.read_text().splitlines()
    path.write_bytes(("\ufeff" + "   \r\n".join(lines) + "\r\n\r\n\n").encode())  # BOM, CRLF, trailing blanks

    status = gamedb("status", "--check", extra=chat)

    assert status.code == 0, status.output
    assert gamedb("-x", "schema=chat", "upgrade", "head", extra=chat).code == 0


def test_indentation_is_not_whitespace_the_normalization_ignores(chat, gamedb):
    path = revision_file(chat, "chat2")
    path.write_text(path.read_text().replace("    op.execute(", "    op.execute (", 1))

    result = gamedb("status", extra=chat)

    assert (result.code, result.stderr) == (1, refusal(chat))


@pytest.mark.parametrize("revision", ["chat2", "chat3"], ids=["below the head", "the head itself"])
@pytest.mark.parametrize("command", ["status", "check-all", "upgrade-all", "upgrade"])
def test_an_applied_revision_whose_file_is_gone_is_refused(chat, gamedb, database, revision, command):
    path = revision_file(chat, revision)
    path.unlink()
    before = database.query(EVERYTHING)

    result = gamedb(*COMMANDS[command], extra=chat)

    assert result.code == 1, result.output
    message = f"applied revision {revision} has no file: {path} is gone; restore it"
    if command == "upgrade" and revision == "chat2":  # Alembic can't load a cut graph: refused before connecting
        message = f"revision chat2 has no file in {path.parent}, yet another revision revises it; restore it"
    assert result.stderr == f"gamedb: error: schema 'chat': {message}\n"
    assert database.query(EVERYTHING) == before


def test_repair_checksums_accepts_an_intended_edit_and_records_who_and_when(chat, gamedb, database):
    path = revision_file(chat, "chat2")
    old = file_checksum(path)
    edit(path, COMMENT_EDIT)
    assert gamedb("check-all", extra=chat).code == 1

    repaired = gamedb("repair-checksums", "-x", "schema=chat", "chat2", extra=chat)

    assert repaired.code == 0, repaired.output
    when = database.query(
        "SELECT recorded_at::text FROM alembic.gamedb_checksums_chat WHERE revision = 'chat2' ORDER BY seq DESC LIMIT 1"
    )
    assert repaired.stdout == (
        f"chat: accepted chat2 ({path.name}) as {file_checksum(path)}, by postgres at {when[0][0]}\n"
    )
    assert database.query(
        "SELECT checksum, reason, recorded_by, recorded_as, replaced_checksum, recorded_at > now() - interval '1 hour'"
        " FROM alembic.gamedb_checksums_chat WHERE revision = 'chat2' ORDER BY seq"
    ) == [
        (old, "applied", "postgres", "postgres", None, True),  # the record keeps what it replaced
        (file_checksum(path), "repaired", "postgres", "postgres", old, True),
    ]
    for command in (["status", "--check"], ["check-all"], ["-x", "schema=chat", "check"], ["upgrade-all"]):
        result = gamedb(*command, extra=chat)
        assert result.code == 0, (command, result.output)
    again = gamedb("repair-checksums", "-x", "schema=chat", "chat2", extra=chat)
    assert again.stdout == f"chat: chat2 ({path.name}) already matches its recorded checksum; nothing changed\n"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["-x", "schema=chat", "chat9"], "schema 'chat': 'chat9' is not an applied revision"),
        (["-x", "schema=chat", "chat"], "schema 'chat': 'chat' matches 3 applied revisions"),
        (["chat2"], "`gamedb repair-checksums` works on one schema: add -x schema=NAME"),
        (["-x", "schema=nope", "chat2"], "unknown schema 'nope'"),
        (["-x", "schema=chat", "chat2", "chat9"], "schema 'chat': 'chat9' is not an applied revision"),
    ],
)
def test_repair_checksums_refuses_what_it_cannot_accept_and_changes_nothing(chat, gamedb, database, args, message):
    edit(revision_file(chat, "chat2"), REAL_EDIT)
    before = database.query(EVERYTHING)

    result = gamedb("repair-checksums", *args, extra=chat)

    assert result.code == 2, result.output
    assert result.stderr.startswith(f"gamedb: error: {message}") and result.stderr.count("\n") == 1, result.stderr
    assert database.query(EVERYTHING) == before


def test_repair_checksums_cannot_accept_a_file_that_is_gone(chat, gamedb):
    revision_file(chat, "chat3").unlink()

    result = gamedb("repair-checksums", "-x", "schema=chat", "chat3", extra=chat)

    assert result.code == 2
    assert result.stderr == (
        "gamedb: error: schema 'chat': applied revision chat3 has no file to accept; restore it; nothing changed\n"
    )


OLD_FORM = (  # the checksum table as gamedb made it before its record was append-only (95b7b63)
    "DROP TABLE alembic.gamedb_checksums_chat; DROP FUNCTION alembic.gamedb_record_chat;"
    "CREATE TABLE alembic.gamedb_checksums_chat (revision VARCHAR(32) NOT NULL, checksum TEXT NOT NULL,"
    " file TEXT NOT NULL, reason TEXT NOT NULL, recorded_at TIMESTAMPTZ NOT NULL DEFAULT now(),"
    " recorded_by TEXT NOT NULL DEFAULT session_user, recorded_as TEXT NOT NULL DEFAULT current_user,"
    " replaced_checksum TEXT, CONSTRAINT gamedb_checksums_chat_pkey PRIMARY KEY (revision))"
)


def old_form(database, extra: list[Path], revisions: tuple[str, ...] = ()) -> None:
    """Replace chat's record with an old-form table holding rows for `revisions` (as they were applied)."""
    database.query(OLD_FORM)
    for rev in revisions:
        path = revision_file(extra, rev)
        database.query(
            "INSERT INTO alembic.gamedb_checksums_chat (revision, checksum, file, reason)"
            " VALUES (%s, %s, %s, 'applied')",
            (rev, file_checksum(path), path.name),
        )


@pytest.mark.parametrize("before_the_feature", ["an old-form table without rows", "no table"])
def test_revisions_applied_before_checksums_existed_are_recorded_on_the_next_run_without_a_refusal(
    chat, gamedb, database, before_the_feature
):
    if before_the_feature == "no table":
        database.query("DROP TABLE alembic.gamedb_checksums_chat")
    else:
        old_form(database, chat)
    note = "chat: checksums not yet recorded for 3 applied revision(s); the next upgrade of the schema records them\n"

    status = gamedb("status", "--check", extra=chat)
    as_json = json.loads(gamedb("status", "--json", extra=chat).stdout)
    check = gamedb("-x", "schema=chat", "check", extra=chat)
    check_all = gamedb("check-all", extra=chat)

    assert status.code == 0 and note in status.stdout, status.output
    rows = {row["schema"]: row for row in as_json["schemas"]}
    assert rows["chat"]["checksums_not_recorded"] == ["chat1", "chat2", "chat3"]
    assert rows["auth"]["checksums_not_recorded"] == []
    assert check.code == 0 and check.stderr == note, check.output
    assert check_all.code == 0 and check_all.stderr == note, check_all.output

    upgraded = gamedb("upgrade-all", extra=chat)

    assert upgraded.code == 0 and upgraded.stdout == "3 schemas at head (nothing to do)\n", upgraded.output
    assert database.query(ROWS) == expected_rows(chat, reason="first seen")
    assert "not yet recorded" not in gamedb("status", extra=chat).output
    edit(revision_file(chat, "chat2"), REAL_EDIT)
    assert gamedb("status", extra=chat).stderr == refusal(chat)


def test_a_scoped_upgrade_records_the_missing_rows_too(chat, gamedb, database):
    old_form(database, chat, ("chat3",))

    upgraded = gamedb("-x", "schema=chat", "upgrade", "head", extra=chat)

    assert upgraded.code == 0, upgraded.output
    assert [row[::3] for row in database.query(ROWS)] == [
        ("chat1", "first seen"),
        ("chat2", "first seen"),
        ("chat3", "applied"),
    ]


def test_a_downgrade_marks_the_revision_it_undoes_downgraded_and_the_upgrade_applied_again(chat, gamedb, database):
    down = gamedb("-x", "schema=chat", "downgrade", "-1", extra=chat)

    assert down.code == 0, down.output
    assert database.query(APPLIED_ROWS) == expected_rows(chat)[:2]
    assert [row[::3] for row in database.query(ROWS)][2] == ("chat3", "downgraded")
    assert gamedb("-x", "schema=chat", "downgrade", "base", extra=chat).code == 0
    assert database.query(APPLIED_ROWS) == []
    assert gamedb("-x", "schema=chat", "upgrade", "head", extra=chat).code == 0
    assert database.query(ROWS) == expected_rows(chat)
    assert database.query("SELECT count(*) FROM alembic.gamedb_checksums_chat") == [(1 + 3 + 3 + 3,)]


def test_the_sql_plan_writes_the_checksums_and_psql_gives_the_rows_an_online_run_gives(gamedb, fleet, database, psql):
    extra = fleet(CHAT)
    online = database.query  # rows of an online run, for comparison after the offline one
    assert gamedb("-x", "schema=chat", "upgrade", "head", extra=extra).code == 0
    online_rows = online(ROWS)
    online("DROP SCHEMA chat CASCADE; DROP TABLE alembic.alembic_version_chat, alembic.gamedb_checksums_chat")

    scoped = gamedb("-x", "schema=chat", "upgrade", "head", "--sql", extra=extra)
    plan = gamedb("upgrade-all", "--sql", extra=extra)

    assert scoped.code == 0 and plan.code == 0, scoped.output + plan.output
    assert scoped.stdout.count('SELECT "alembic"."gamedb_record_chat"(\'chat') == 3
    for schema, revisions in (("auth", 2), ("chat", 3)):
        assert plan.stdout.count(f'SELECT "alembic"."gamedb_record_{schema}"(') == revisions
    applied = apply_with_psql(psql, database, scoped.stdout, single_transaction=True)
    assert applied.returncode == 0, applied.stderr
    assert database.query(ROWS) == online_rows == expected_rows(extra)
    assert gamedb("status", "--check", "--no-drift", extra=extra).output.count("not yet recorded") == 0


def test_the_sql_plan_of_a_downgrade_marks_the_rows_downgraded(gamedb, fleet):
    extra = fleet(CHAT)

    plan = gamedb("-x", "schema=chat", "downgrade", "chat3:chat1", "--sql", extra=extra)

    assert plan.code == 0, plan.output
    marks = [line for line in plan.stdout.splitlines() if line.startswith('SELECT "alembic"."gamedb_record_chat"')]
    assert [line.split("(")[1].split(", ")[:2] for line in marks] == [
        ["'chat3'", "'downgraded'"],
        ["'chat2'", "'downgraded'"],
    ]


def test_the_checksum_table_is_closed_to_the_app_role_and_repair_records_the_deployer(gamedb, fleet, database):
    import psycopg

    extra = fleet(CHAT)
    for args in (
        ["roles", "apply"],
        ["roles", "login", "chat_svc", "--schema", "chat"],
        ["roles", "login", "deployer", "--migrator"],
    ):
        assert gamedb(*args, extra=extra).code == 0
    deployer_url = database.url.replace("postgresql+psycopg://postgres", "postgresql+psycopg://deployer", 1)
    assert run_cli(["upgrade-all"], url=deployer_url, python_path=extra).code == 0
    assert database.query(
        "SELECT relowner::regrole::text FROM pg_class WHERE oid = 'alembic.gamedb_checksums_chat'::regclass"
    ) == [("gamedb_history",)]
    assert database.query(
        "SELECT DISTINCT recorded_by, recorded_as FROM alembic.gamedb_checksums_chat WHERE revision <> ''"
    ) == [("deployer", "chat_owner")]

    for statement in (
        "SELECT * FROM alembic.gamedb_checksums_chat",
        "INSERT INTO alembic.gamedb_checksums_chat (revision, checksum, file, reason) VALUES ('x', 'x', 'x', 'x')",
        "UPDATE alembic.gamedb_checksums_chat SET checksum = 'x'",
        "DELETE FROM alembic.gamedb_checksums_chat",
    ):
        with psycopg.connect(database.login_uri("chat_svc"), autocommit=True) as conn:
            with pytest.raises(psycopg.Error) as denied:
                conn.execute(statement)
        assert denied.value.sqlstate == "42501", statement
    for statement in (
        "UPDATE alembic.gamedb_checksums_chat SET checksum = 'x'",
        "DELETE FROM alembic.gamedb_checksums_chat",
    ):
        with psycopg.connect(database.login_uri("deployer"), autocommit=True) as conn:
            with pytest.raises(psycopg.Error) as denied:
                conn.execute(statement)
        assert denied.value.sqlstate == "42501", statement

    edit(revision_file(extra, "chat2"), COMMENT_EDIT)
    assert run_cli(["status"], url=deployer_url, python_path=extra).stderr == refusal(extra)
    repaired = run_cli(["repair-checksums", "-x", "schema=chat", "chat2"], url=deployer_url, python_path=extra)
    assert repaired.code == 0, repaired.output
    assert database.query(
        "SELECT reason, recorded_by, recorded_as FROM alembic.gamedb_checksums_chat WHERE revision = 'chat2'"
        " ORDER BY seq DESC LIMIT 1"
    ) == [("repaired", "deployer", "chat_owner")]
    assert run_cli(["status", "--check", "--no-drift"], url=deployer_url, python_path=extra).code == 0
    assert gamedb("roles", "check", extra=extra).code == 0


def test_a_deployer_without_the_table_is_told_an_admin_runs_roles_apply(gamedb, fleet, database):
    extra = fleet(CHAT)
    for args in (["roles", "apply"], ["roles", "login", "deployer", "--migrator"]):
        assert gamedb(*args, extra=extra).code == 0
    database.query("DROP TABLE alembic.gamedb_checksums_chat")  # as a gamedb before checksums left it
    deployer_url = database.url.replace("postgresql+psycopg://postgres", "postgresql+psycopg://deployer", 1)

    result = run_cli(["-x", "schema=chat", "upgrade", "head"], url=deployer_url, python_path=extra)

    assert result.code == 1
    assert result.stderr == (
        "gamedb: error: schema 'chat': its checksum table alembic.gamedb_checksums_chat does not exist and this "
        "login may not create it: an admin runs `gamedb roles apply`\n"
    )
    assert database.version_rows("chat") == []
    check = gamedb("roles", "check", extra=extra)
    assert "missing checksum table" in check.stdout and check.code == 1
    assert gamedb("roles", "apply", extra=extra).code == 0
    assert run_cli(["-x", "schema=chat", "upgrade", "head"], url=deployer_url, python_path=extra).code == 0


def test_a_revision_that_fails_leaves_no_checksum_row_behind(chat, gamedb, database):
    failing = revision_file(chat, "chat3").with_name("chat4_step_chat4.py")
    failing.write_text(
        revision_file(chat, "chat3")
        .read_text()
        .replace("'chat3'", "'chat4'")
        .replace("'chat2'", "'chat3'")
        .replace(NOTES, "SELECT 1/0")
    )

    result = gamedb("-x", "schema=chat", "upgrade", "head", extra=chat)

    assert result.code == 1 and "division by zero" in result.stderr, result.output
    assert database.version_rows("chat") == ["chat3"]
    assert database.query(ROWS) == expected_rows(chat)


def test_a_stamp_records_what_it_stamps(chat, gamedb, database):
    assert gamedb("-x", "schema=chat", "current", extra=chat).code == 0
    assert gamedb("-x", "schema=chat", "downgrade", "base", extra=chat).code == 0

    stamped = gamedb("-x", "schema=chat", "stamp", "head", extra=chat)

    assert stamped.code == 0, stamped.output
    assert [(rev, reason) for rev, _, _, reason in database.query(ROWS)] == [
        ("chat1", "downgraded"),
        ("chat2", "downgraded"),
        ("chat3", "stamped"),
    ]
    assert gamedb("-x", "schema=chat", "upgrade", "head", extra=chat).code == 0
    assert [(rev, reason) for rev, _, _, reason in database.query(ROWS)] == [
        ("chat1", "first seen"),  # applied below the stamped revision: recorded by the next run
        ("chat2", "first seen"),
        ("chat3", "stamped"),
    ]


def test_repair_checksums_takes_a_unique_prefix_of_an_applied_revision(chat, gamedb):
    result = gamedb("repair-checksums", "-x", "schema=auth", "b028", extra=chat)

    assert result.code == 0, result.output
    assert result.stdout.startswith("auth: b02841274dc5 (") and result.stdout.endswith("nothing changed\n")
