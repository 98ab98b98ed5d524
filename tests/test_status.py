"""status and check-all: what a deploy or CI gate reads before and after upgrade-all."""

from __future__ import annotations

import json

import pytest
from comparison_modes import comparison  # noqa: F401 - the cold/warm fixture

MESSAGES_MODEL = """

from sqlalchemy import Integer
from sqlalchemy.orm import Mapped, mapped_column


class Message(Base):
    __tablename__ = "messages"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
"""
MESSAGES_TABLE = "CREATE TABLE chat.messages (id integer NOT NULL, CONSTRAINT pk_messages PRIMARY KEY (id))"


def chat_service(fleet, scratch_models=True):
    """A chat service whose models and revisions agree: one table, messages."""
    extra = fleet({"chat": [("chat1", [], []), ("chat2", [MESSAGES_TABLE], ["DROP TABLE chat.messages"])]})
    models = extra[0] / "game_chat" / "models.py"
    models.write_text(models.read_text() + MESSAGES_MODEL)
    return extra, models


def test_status_check_exits_1_while_a_revision_is_pending_and_0_when_clean(gamedb, database, fleet):
    extra, _ = chat_service(fleet)

    pending = gamedb("status", "--check", extra=extra)

    assert pending.code == 1
    assert "2 pending" in pending.stdout
    assert gamedb("upgrade-all", extra=extra).code == 0
    clean = gamedb("status", "--check", extra=extra)
    assert clean.code == 0, clean.output
    assert [line.split()[-2:] for line in clean.stdout.splitlines()[1:]] == [["at", "head"]] * 3


@pytest.mark.usefixtures("comparison")
def test_status_json_names_current_head_pending_and_drift(gamedb, database, fleet):
    extra, _ = chat_service(fleet)
    assert gamedb("-x", "schema=chat", "upgrade", "chat1", extra=extra).code == 0

    result = gamedb("status", "--json", extra=extra)

    rows = {row["schema"]: row for row in json.loads(result.stdout)["schemas"]}
    assert rows["chat"] == {
        "schema": "chat",
        "server": "default",
        "version_table": "alembic.alembic_version_chat",
        "current": ["chat1"],
        "heads": ["chat2"],
        "pending": ["chat2"],
        "drift": None,
        "problem": None,
        "checksums_not_recorded": [],
        "state": "1 pending",
    }
    assert rows["auth"]["current"] == [] and rows["auth"]["state"] == "2 pending"


def test_status_reports_schemas_and_version_tables_no_service_declares(gamedb, database):
    assert gamedb("upgrade-all").code == 0
    database.query("CREATE SCHEMA legacy")
    database.query("CREATE TABLE alembic.alembic_version_legacy (version_num varchar(32) PRIMARY KEY)")

    result = gamedb("status", "--json")

    status = json.loads(result.stdout)
    assert status["undeclared_schemas"] == ["legacy"]
    assert status["orphan_version_tables"] == ["alembic_version_legacy"]
    assert status["clean"] is True
    text = gamedb("status")
    assert "schemas no service declares: legacy" in text.stdout
    assert "version tables no service declares: alembic_version_legacy" in text.stdout


@pytest.mark.usefixtures("comparison")
def test_check_all_exits_1_after_a_model_change_with_no_revision(gamedb, database, fleet):
    extra, models = chat_service(fleet)
    assert gamedb("upgrade-all", extra=extra).code == 0
    assert gamedb("check-all", extra=extra).code == 0
    models.write_text(
        models.read_text().replace(
            "    id: Mapped[int] = mapped_column(Integer, primary_key=True)",
            "    id: Mapped[int] = mapped_column(Integer, primary_key=True)\n    body: Mapped[str | None]",
        )
    )

    result = gamedb("check-all", extra=extra)

    assert result.code == 1
    assert "chat: column chat.messages.body is in the models, not in the database" in result.stderr
    assert "check-all failed: chat need a revision" in result.stderr
    assert "auth" not in result.stderr and "inventory" not in result.stderr


def test_check_all_fails_while_revisions_are_pending(gamedb, database):
    result = gamedb("check-all")

    assert result.code == 1
    assert "auth: 2 revision(s) not applied; run upgrade-all first" in result.stderr


def test_two_version_rows_one_below_the_other_are_broken_for_status_and_upgrade_all_alike(gamedb, database, fleet):
    extra, _ = chat_service(fleet)
    assert gamedb("upgrade-all", extra=extra).code == 0
    database.query("INSERT INTO alembic.alembic_version_chat VALUES ('chat1')")

    status = gamedb("status", "--check", extra=extra)
    as_json = json.loads(gamedb("status", "--json", extra=extra).stdout)
    upgrade = gamedb("upgrade-all", extra=extra)

    problem = "2 version rows (chat1, chat2) and chat1 is below another; delete the stale row by hand"
    assert status.code == 1
    assert [line.split(None, 5)[-1] for line in status.stdout.splitlines() if line.startswith("chat ")] == [
        f"broken: {problem}"
    ]
    rows = {row["schema"]: row for row in as_json["schemas"]}
    assert rows["chat"]["problem"] == problem and as_json["clean"] is False
    assert upgrade.code == 1
    failed = f"FAILED chat before any revision ran (schema left at chat1,chat2): version table {problem}"
    assert failed in upgrade.stderr
    assert database.version_rows("chat") == ["chat1", "chat2"]


@pytest.mark.usefixtures("comparison")
def test_status_without_drift_reads_the_catalog_in_one_request_and_still_sees_pending_orphans_and_strangers(
    gamedb, database, fleet, monkeypatch
):
    import psycopg
    from sqlalchemy import create_engine, make_url

    from gamedb.discovery import discover_schemas
    from gamedb.fleet import database_status, read_catalog, upgrade_order
    from gamedb.project import find_project

    extra, models = chat_service(fleet)
    assert gamedb("upgrade-all", extra=extra).code == 0
    models.write_text(models.read_text() + "    body: Mapped[str] = mapped_column()\n")  # drift, not compared
    database.query("CREATE SCHEMA stranger")
    database.query("CREATE TABLE alembic.alembic_version_gone (version_num varchar(32) PRIMARY KEY)")
    database.query("DELETE FROM alembic.alembic_version_auth")
    for path in extra:
        monkeypatch.syspath_prepend(str(path))
    schemas = discover_schemas()
    engine = create_engine(make_url(database.url))
    requests = []
    execute = psycopg.Cursor.execute

    def counted(cursor, query, *args, **kwargs):
        requests.append(query)
        return execute(cursor, query, *args, **kwargs)

    try:
        with engine.connect() as conn:
            monkeypatch.setattr(psycopg.Cursor, "execute", counted)
            catalog = read_catalog(conn, upgrade_order(schemas))
            monkeypatch.undo()
    finally:
        engine.dispose()
    status = database_status(find_project(), schemas, make_url(database.url), compare_models=False)

    assert len(requests) == 1, requests
    assert catalog.versions == {"auth": [], "chat": ["chat2"], "inventory": database.version_rows("inventory")}
    assert {row.schema: (row.current, row.drift, row.state) for row in status.schemas} == {
        "auth": ([], None, "2 pending"),
        "chat": (["chat2"], None, "at head"),
        "inventory": (database.version_rows("inventory"), None, "at head"),
    }
    assert status.undeclared_schemas == ["stranger"]
    assert status.orphan_version_tables == ["alembic_version_gone"]
    no_drift = gamedb("status", "--no-drift", "--check", extra=extra)
    assert no_drift.code == 1 and "2 pending" in no_drift.stdout  # auth
    assert "drift chat: column chat.messages.body" in gamedb("status", extra=extra).stdout


@pytest.mark.usefixtures("comparison")
def test_check_all_over_many_schemas_compares_them_in_workers_and_finds_each_drift(gamedb, database, fleet):
    from gamedb.fleet.status import PARALLEL_FROM

    names = [f"w{i}" for i in range(PARALLEL_FROM + 2)]  # enough schemas for the forked workers
    extra = fleet(
        {n: [(f"{n}1", [], []), (f"{n}2", [f"CREATE TABLE {n}.t (id integer PRIMARY KEY)"], [])] for n in names}
    )
    for path, name in zip(extra, names, strict=True):
        models = path / f"game_{name}" / "models.py"
        models.write_text(
            models.read_text()
            + "\n\nfrom sqlalchemy import Integer\nfrom sqlalchemy.orm import Mapped, mapped_column\n\n\n"
            + "class T(Base):\n    __tablename__ = 't'\n"
            + "    id: Mapped[int] = mapped_column(Integer, primary_key=True)\n"
        )
    assert gamedb("upgrade-all", extra=extra).code == 0
    assert gamedb("check-all", extra=extra).code == 0
    database.query("ALTER TABLE w3.t ADD COLUMN note text")
    database.query("ALTER TABLE w8.t RENAME TO old_t")

    result = gamedb("check-all", extra=extra)

    assert result.code == 1
    assert [line for line in result.stderr.splitlines() if not line.startswith("check-all failed")] == [
        "w3: column w3.t.note is in the database, not in the models",
        "w8: table w8.t is in the models, not in the database",
        "w8: table w8.old_t is in the database, not in the models",
    ]
