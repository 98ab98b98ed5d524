"""`gamedb plan`: what upgrade-all would do now, from each schema's current revision on the live fleet:
SQL with the online prelude, squawk's findings, the lock each statement takes; `--sql-dir` scripts that
psql applies to the same result as upgrade-all."""

from __future__ import annotations

import json
import subprocess

import pytest

from conftest import run_cli
from gamedb.review.locks import statement_locks
from gamedb.testing import ThrowawayDatabase
from gamedb.testing.checks import SCHEMA_CATALOG

CHAT = [
    ("chat1", [], []),
    ("chat2", ["CREATE TABLE chat.t (id bigint PRIMARY KEY, x text)"], ["DROP TABLE chat.t"]),
    # on a live table: a blocking index build and a column added under ACCESS EXCLUSIVE
    ("chat3", ["CREATE INDEX ix_t_x ON chat.t (x)", "ALTER TABLE chat.t ADD COLUMN y int"], []),
    ("chat4", ["CREATE TABLE chat.u (id bigint PRIMARY KEY REFERENCES chat.t (id))"], ["DROP TABLE chat.u"]),
]
GUILD = [("guild1", [], []), ("guild2", ["CREATE TABLE guild.g (id bigint PRIMARY KEY)"], ["DROP TABLE guild.g"])]

INDEXES = "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = %s ORDER BY 1"
CHECKSUMS = "SELECT revision, checksum, file, reason FROM alembic.{} ORDER BY 1"


def plan(db, extra, *args):
    return run_cli(["plan", *args], url=db.url, python_path=extra)


def upgrade(db, extra, *args):
    result = run_cli(list(args), url=db.url, python_path=extra)
    assert result.code == 0, result.output
    return result


@pytest.fixture
def chat_fleet(fleet):
    return fleet({"chat": CHAT, "guild": GUILD}, depends_on={"guild": ["chat"]})


def test_plan_starts_from_each_schemas_current_revision_with_sql_locks_and_findings(database, chat_fleet):
    upgrade(database, chat_fleet, "-x", "schema=chat", "upgrade", "chat2")

    result = plan(database, chat_fleet)

    assert result.code == 0, result.output
    out = result.stdout
    assert "chat (server default): chat2 -> chat4" in out
    assert "guild (server default): base -> guild2" in out
    assert out.index("chat (server default)") < out.index("guild (server default)")  # depends_on order
    assert "revision chat1" not in out and "revision chat2" not in out  # applied: not in the plan
    assert "revision chat3" in out and "revision chat4" in out
    assert "CREATE INDEX ix_t_x ON chat.t (x);" in out
    assert "SHARE on chat.t: CREATE INDEX ix_t_x ON chat.t (x)" in out
    assert "ACCESS EXCLUSIVE on chat.t: ALTER TABLE chat.t ADD COLUMN y int" in out
    assert "strongest lock: ACCESS EXCLUSIVE on chat.t" in out
    assert "SHARE ROW EXCLUSIVE on chat.t: CREATE TABLE chat.u" in out  # the referenced table
    assert "require-concurrent-index-creation" in out.split("revision chat3")[1].split("revision chat4")[0]
    assert "alembic_version_chat" not in out  # bookkeeping is not the team's SQL
    assert database.version_rows("chat") == ["chat2"]  # plan changes nothing
    assert database.version_rows("guild") is None


def test_nothing_pending_is_nothing_to_do_and_exit_0(database, chat_fleet):
    upgrade(database, chat_fleet, "upgrade-all")

    result = plan(database, chat_fleet)

    assert result.code == 0, result.output
    assert result.stdout.startswith("nothing to do: 4 schema(s) at head")


def test_markdown_has_a_heading_per_schema_sql_in_fences_and_findings_as_a_list(database, chat_fleet):
    upgrade(database, chat_fleet, "-x", "schema=chat", "upgrade", "chat2")

    result = plan(database, chat_fleet, "--format", "markdown")

    assert result.code == 0, result.output
    lines = result.stdout.splitlines()
    assert "### chat (server `default`): `chat2` -> `chat4`" in lines
    assert "#### revision `chat3` (" in result.stdout
    chat3 = result.stdout.split("#### revision `chat3`")[1].split("#### revision `chat4`")[0]
    assert "```sql\nCREATE INDEX ix_t_x ON chat.t (x);\n\nALTER TABLE chat.t ADD COLUMN y int;\n```" in chat3
    assert "- **require-concurrent-index-creation**:" in chat3
    assert "Strongest lock: **ACCESS EXCLUSIVE on chat.t**" in chat3


def test_json_lists_schemas_revisions_locks_and_findings(database, chat_fleet):
    upgrade(database, chat_fleet, "-x", "schema=chat", "upgrade", "chat3")

    result = plan(database, chat_fleet, "--format", "json")

    assert result.code == 0, result.output
    data = json.loads(result.stdout)
    chat = next(s for s in data["schemas"] if s["schema"] == "chat")
    assert (chat["current"], chat["heads"]) == (["chat3"], ["chat4"])
    assert [r["revision"] for r in chat["revisions"]] == ["chat4"]
    assert chat["revisions"][0]["strongest_lock"] == "SHARE ROW EXCLUSIVE on chat.t"
    assert {s["schema"] for s in data["schemas"]} == {"auth", "inventory", "chat", "guild"}


def test_sql_dir_applied_with_psql_equals_upgrade_all(database, admin_uri, chat_fleet, psql, tmp_path):
    twin = ThrowawayDatabase(admin_uri)
    try:
        for db in (database, twin):  # the same starting point: chat part-way, the rest at base
            upgrade(db, chat_fleet, "-x", "schema=chat", "upgrade", "chat2")

        written = plan(database, chat_fleet, "--sql-dir", str(tmp_path / "plans"))
        assert written.code == 0, written.output
        script = tmp_path / "plans" / "default.sql"
        applied = subprocess.run(
            [psql, "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", database.libpq, "-f", str(script)],
            capture_output=True,
            text=True,
        )
        assert applied.returncode == 0, applied.stderr
        upgrade(twin, chat_fleet, "upgrade-all")

        for schema in ("auth", "inventory", "chat", "guild"):
            for query in (SCHEMA_CATALOG, INDEXES):
                params = {"schema": schema} if query is SCHEMA_CATALOG else (schema,)
                assert database.query(query, params) == twin.query(query, params), (schema, query)
            assert database.version_rows(schema) == twin.version_rows(schema)
            checksums = CHECKSUMS.format(f"gamedb_checksums_{schema}")
            assert database.query(checksums) == twin.query(checksums) != []
        assert plan(database, chat_fleet).stdout.startswith("nothing to do")
        again = upgrade(database, chat_fleet, "upgrade-all")
        assert "(nothing to do)" in again.stdout
    finally:
        twin.drop()


def test_sql_dir_records_checksums_of_applied_revisions_that_have_none(database, chat_fleet, psql, tmp_path):
    upgrade(database, chat_fleet, "-x", "schema=chat", "upgrade", "chat2")
    database.query("DELETE FROM alembic.gamedb_checksums_chat")  # applied before gamedb kept checksums

    written = plan(database, chat_fleet, "--sql-dir", str(tmp_path))
    assert written.code == 0, written.output
    assert "records checksums of 2 applied revision(s) first" in written.stdout
    applied = subprocess.run(
        [psql, "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", database.libpq, "-f", str(tmp_path / "default.sql")],
        capture_output=True,
        text=True,
    )

    assert applied.returncode == 0, applied.stderr
    rows = database.query(CHECKSUMS.format("gamedb_checksums_chat"))
    assert [(r[0], r[3]) for r in rows] == [
        ("chat1", "first seen"),
        ("chat2", "first seen"),
        ("chat3", "applied"),
        ("chat4", "applied"),
    ]


def test_an_edited_applied_revision_is_refused_as_upgrade_all_refuses_it(database, chat_fleet, tmp_path):
    upgrade(database, chat_fleet, "-x", "schema=chat", "upgrade", "chat2")
    path = next((chat_fleet[0] / "game_chat" / "versions").glob("chat2_*.py"))
    path.write_text(path.read_text().replace("x text", "x varchar(10)"))

    result = plan(database, chat_fleet, "--sql-dir", str(tmp_path / "plans"))
    refused = run_cli(["upgrade-all"], url=database.url, python_path=chat_fleet)

    assert result.code == 1 and refused.code == 1
    assert "Traceback" not in result.output
    expected = "gamedb: error: schema 'chat': applied revision chat2 was edited after it was applied"
    assert result.stderr.startswith(expected) and refused.stderr.startswith(expected)
    assert not (tmp_path / "plans").exists()


def test_broken_version_rows_are_refused(database, chat_fleet):
    upgrade(database, chat_fleet, "-x", "schema=chat", "upgrade", "chat3")
    database.query("INSERT INTO alembic.alembic_version_chat VALUES ('chat2')")

    result = plan(database, chat_fleet)

    assert result.code == 1
    assert result.stderr.strip() == (
        "gamedb: error: schema 'chat': version table 2 version rows (chat2, chat3) and chat2 is below another; "
        "delete the stale row by hand (upgrade-all refuses it too)"
    )


def test_a_revision_running_python_through_get_bind_is_named_and_sql_dir_refuses_it(database, fleet, tmp_path):
    extra = fleet({"chat": [*CHAT[:2], ("chat3", ["SELECT 1"], [])]})
    path = next((extra[0] / "game_chat" / "versions").glob("chat3_*.py"))
    path.write_text(
        path.read_text().replace(
            "    op.execute('SELECT 1')",
            "    count = op.get_bind().exec_driver_sql('SELECT count(*) FROM chat.t').scalar()\n"
            "    op.execute(f'COMMENT ON TABLE chat.t IS {str(count)!r}')",
        )
    )
    upgrade(database, extra, "-x", "schema=chat", "upgrade", "chat2")

    shown = plan(database, extra)
    refused = plan(database, extra, "--sql-dir", str(tmp_path / "plans"))

    assert shown.code == 0, shown.output
    assert "runs Python through op.get_bind()" in shown.stdout.split("revision chat3")[1]
    assert refused.code == 1
    assert "revision(s) chat3 run Python through op.get_bind()" in refused.stderr
    assert not (tmp_path / "plans").exists()


def test_plan_takes_no_x_and_refuses_an_unknown_schema(database, chat_fleet):
    assert "takes no -x" in plan(database, chat_fleet, "-x", "schema=chat").stderr
    unknown = plan(database, chat_fleet, "--schema", "nope")
    assert unknown.code == 2 and "unknown schema 'nope'" in unknown.stderr


@pytest.mark.unit
@pytest.mark.parametrize(
    ("sql", "described"),
    [
        ("ALTER TABLE inventory.items ADD COLUMN q int", "ACCESS EXCLUSIVE on inventory.items"),
        ("ALTER TABLE items VALIDATE CONSTRAINT c", "SHARE UPDATE EXCLUSIVE on inventory.items"),
        (
            "ALTER TABLE inventory.items ADD CONSTRAINT f FOREIGN KEY (o) REFERENCES inventory.owners (id) NOT VALID",
            "SHARE ROW EXCLUSIVE on inventory.items, inventory.owners",
        ),
        ("CREATE INDEX CONCURRENTLY ix ON inventory.items (sku)", "SHARE UPDATE EXCLUSIVE on inventory.items"),
        ("CREATE UNIQUE INDEX ix ON inventory.items (sku)", "SHARE on inventory.items"),
        ("DROP TABLE inventory.items", "ACCESS EXCLUSIVE on inventory.items"),
        ("UPDATE inventory.items SET sku = lower(sku)", "ROW EXCLUSIVE on inventory.items"),
        ("CREATE TABLE inventory.t (id int)", "no lock on an existing table"),
        ("CREATE TYPE inventory.e AS ENUM ('a')", "no lock on an existing table"),
        ("ALTER TABLE inventory.items RENAME COLUMN sku TO code", "ACCESS EXCLUSIVE on inventory.items"),
        ("DO $$ BEGIN PERFORM 1; END $$", "unclassified (DO block): gamedb can't tell what it locks"),
    ],
)
def test_each_statement_kind_maps_to_the_lock_postgresql_documents(sql, described):
    (lock,) = statement_locks(sql, "inventory")
    assert lock.describe() == described


def test_each_server_gets_its_own_script_and_applying_them_brings_the_fleet_to_head(
    database, admin_uri, chat_fleet, psql, tmp_path
):
    import shutil

    from conftest import REPO

    project = tmp_path / "project"
    project.mkdir()
    shutil.copy(REPO / "alembic.ini", project / "alembic.ini")
    (project / "migrations").symlink_to(REPO / "migrations")
    (project / "pyproject.toml").write_text('[tool.gamedb.placement]\nguild = "hot"\n')
    hot = ThrowawayDatabase(admin_uri)
    try:

        def gamedb(*args):
            return run_cli(list(args), url=database.url, python_path=chat_fleet, cwd=project, GAMEDB_URL_HOT=hot.url)

        written = gamedb("plan", "--sql-dir", str(tmp_path / "plans"))
        assert written.code == 0, written.output
        assert "guild (server hot): base -> guild2" in written.stdout
        for server, db in (("default", database), ("hot", hot)):
            script = tmp_path / "plans" / f"{server}.sql"
            applied = subprocess.run(
                [psql, "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", db.libpq, "-f", str(script)],
                capture_output=True,
                text=True,
            )
            assert applied.returncode == 0, applied.stderr
        assert "guild" not in (tmp_path / "plans" / "default.sql").read_text()
        assert hot.version_rows("guild") == ["guild2"] and database.version_rows("guild") is None
        assert database.version_rows("chat") == ["chat4"]
        assert gamedb("plan").stdout.startswith("nothing to do")
        assert gamedb("status", "--check", "--no-drift").code == 0
    finally:
        hot.drop()


def test_sql_dir_marks_revisions_no_longer_applied_as_the_online_run_does(
    database, admin_uri, chat_fleet, psql, tmp_path
):
    twin = ThrowawayDatabase(admin_uri)
    try:
        for db in (database, twin):  # a stale event: a revision recorded applied, no longer applied (file long gone)
            upgrade(db, chat_fleet, "-x", "schema=chat", "upgrade", "chat2")
            db.query("SELECT alembic.gamedb_record_chat('chat0', 'applied', 'sha256:stale', 'gone.py', NULL)")

        assert plan(database, chat_fleet, "--sql-dir", str(tmp_path)).code == 0
        applied = subprocess.run(
            [psql, "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", database.libpq, "-f", str(tmp_path / "default.sql")],
            capture_output=True,
            text=True,
        )
        assert applied.returncode == 0, applied.stderr
        upgrade(twin, chat_fleet, "upgrade-all")

        events = "SELECT revision, checksum, file, reason FROM alembic.gamedb_checksums_chat ORDER BY seq"
        assert database.query(events) == twin.query(events)  # the same events, in the same order
        assert ("chat0", "sha256:stale", "gone.py", "not applied") in database.query(events)
        latest = (
            "SELECT DISTINCT ON (revision) revision, reason FROM alembic.gamedb_checksums_chat "
            "ORDER BY revision, seq DESC"
        )
        assert [r for r, reason in database.query(latest) if reason in ("applied", "first seen")] == [
            "chat1",
            "chat2",
            "chat3",
            "chat4",
        ]
    finally:
        twin.drop()
