"""The seed document's workflow, typed as written with `gamedb` in place of `alembic`."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from conftest import REPO, versions_files
from gamedb.discovery import discover_schemas

SCHEMAS = discover_schemas()
AUTH_DIR = SCHEMAS["auth"].versions_dir
INVENTORY_DIR = SCHEMAS["inventory"].versions_dir

MESSAGES_MODEL = """
from sqlalchemy import BigInteger, Identity, String
from sqlalchemy.orm import Mapped, mapped_column


class Message(Base):
    __tablename__ = "messages"

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    body: Mapped[str] = mapped_column(String(2000))
"""


def load_revision(path: Path) -> object:
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def auth_head() -> str:
    (head,) = [m for m in map(load_revision, AUTH_DIR.glob("*.py")) if not _is_parent_of_any(m, AUTH_DIR)]
    return head.revision


def _is_parent_of_any(module: object, directory: Path) -> bool:
    return any(load_revision(p).down_revision == module.revision for p in directory.glob("*.py"))


def test_branch_label_revision_writes_the_init_revision_into_the_new_service(scratch_service, gamedb):
    chat = scratch_service("chat")
    before = versions_files(AUTH_DIR), versions_files(INVENTORY_DIR)

    result = gamedb("revision", "--branch-label", "chat", "-m", "init chat schema", extra=[chat.src_dir])

    assert result.code == 0, result.output
    (created,) = chat.versions_dir.glob("*.py")
    assert created.name.endswith("_init_chat_schema.py")
    revision = load_revision(created)
    assert revision.down_revision is None
    assert revision.branch_labels == ("chat",)
    source = created.read_text()
    assert """op.execute('CREATE SCHEMA IF NOT EXISTS "chat"')""" in source
    assert """op.execute('DROP SCHEMA IF EXISTS "chat" CASCADE')""" in source
    assert (versions_files(AUTH_DIR), versions_files(INVENTORY_DIR)) == before


def test_first_revision_with_x_schema_gets_the_branch_label_by_itself(scratch_service, gamedb):
    chat = scratch_service("chat")

    result = gamedb("revision", "-x", "schema=chat", "-m", "init", extra=[chat.src_dir])

    assert result.code == 0, result.output
    (created,) = chat.versions_dir.glob("*.py")
    assert load_revision(created).branch_labels == ("chat",)


def test_first_revision_refuses_a_branch_label_other_than_the_schema(scratch_service, gamedb):
    chat = scratch_service("chat")

    result = gamedb("revision", "-x", "schema=chat", "--branch-label", "talk", "-m", "init", extra=[chat.src_dir])

    assert result.code != 0
    assert "branch label 'chat'" in result.stderr
    assert list(chat.versions_dir.glob("*.py")) == []


def test_autogenerate_with_x_after_the_subcommand_lands_in_the_service_dir(scratch_service, gamedb, database):
    chat = scratch_service("chat")
    extra = [chat.src_dir]
    assert gamedb("revision", "--branch-label", "chat", "-m", "init chat schema", extra=extra).code == 0
    assert gamedb("-x", "schema=chat", "upgrade", "head", extra=extra).code == 0
    assert gamedb("-x", "schema=auth", "upgrade", "head", extra=extra).code == 0
    database.query("CREATE TABLE public.stray (id int)")
    chat.models_file.write_text(chat.models_file.read_text() + MESSAGES_MODEL)
    before = versions_files(AUTH_DIR), versions_files(INVENTORY_DIR)

    result = gamedb("revision", "-x", "schema=chat", "--autogenerate", "-m", "add messages table", extra=extra)

    assert result.code == 0, result.output
    (created,) = [p for p in chat.versions_dir.glob("*.py") if p.name.endswith("_add_messages_table.py")]
    source = created.read_text()
    assert "op.create_table('messages'" in source
    assert "schema='chat'" in source
    for foreign in ("auth", "inventory", "alembic_version", "stray", "public"):
        assert foreign not in source, f"{foreign} leaked into chat's revision"
    assert (versions_files(AUTH_DIR), versions_files(INVENTORY_DIR)) == before

    assert gamedb("-x", "schema=chat", "upgrade", "head", extra=extra).code == 0
    assert database.tables("chat") == {"messages"}
    assert database.version_rows("chat") == [load_revision(created).revision]
    check = gamedb("-x", "schema=chat", "check", extra=extra)
    assert check.code == 0, check.output


def test_upgrade_head_records_exactly_the_head_in_alembic_version_auth(gamedb, database):
    result = gamedb("-x", "schema=auth", "upgrade", "head")

    assert result.code == 0, result.output
    assert database.version_rows("auth") == [auth_head()]
    assert database.tables("auth") == {"users", "refresh_tokens"}
    assert database.version_rows("inventory") is None
    assert "inventory" not in database.schemas()
    assert database.tables("alembic") == {"alembic_version_auth", "gamedb_checksums_auth"}  # nothing of inventory


def test_downgrade_minus_one_steps_back_one_revision_of_that_schema_only(gamedb, database):
    assert gamedb("-x", "schema=auth", "upgrade", "head").code == 0
    assert gamedb("-x", "schema=inventory", "upgrade", "head").code == 0
    inventory_head = database.version_rows("inventory")

    result = gamedb("-x", "schema=auth", "downgrade", "-1")

    assert result.code == 0, result.output
    init = load_revision(next(AUTH_DIR.glob("*_init_auth_schema.py"))).revision
    assert database.version_rows("auth") == [init]
    assert database.tables("auth") == set()
    assert database.version_rows("inventory") == inventory_head


def test_scoped_heads_shows_only_that_schemas_head(gamedb):
    result = gamedb("-x", "schema=auth", "heads")

    assert result.code == 0, result.output
    assert result.stdout.split() == [auth_head(), "(auth)", "(head)"]


def test_plain_alembic_upgrades_one_branch_into_its_own_version_table(gamedb, database):
    result = gamedb("-x", "schema=auth", "upgrade", "auth@head", module="alembic")

    assert result.code == 0, result.output
    assert database.version_rows("auth") == [auth_head()]
    assert database.version_rows("inventory") is None


def test_plain_alembic_heads_refuses_to_write_another_branch_into_this_version_table(gamedb, database):
    result = gamedb("-x", "schema=auth", "upgrade", "heads", module="alembic")

    assert result.code != 0
    assert "is not in schema 'auth'" in result.output
    assert "inventory" not in database.schemas()
    rows = database.version_rows("auth") or []
    assert all(r in {p.stem.split("_")[3] for p in AUTH_DIR.glob("*.py")} for r in rows)


def test_every_command_runs_from_a_subdirectory_of_the_repo(gamedb):
    from conftest import run_cli

    result = run_cli(["-x", "schema=auth", "heads"], url=None, cwd=REPO / "services" / "auth")

    assert result.code == 0, result.output
    assert "(auth) (head)" in result.stdout
