"""`gamedb squash`: a long history replaced through a middle revision, proven equal, and the databases
that were at, past and before that revision when it happened."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from conftest import apply_with_psql, run_cli, versions_files
from gamedb.squash.catalog import catalog_snapshot
from gamedb.testing import ThrowawayDatabase

S = "sq"
# enums gaining values (one before another), a renamed column, data steps, a sequence with settings,
# a view, a function with a trigger, a policy, comments, a grant; then a concurrent index and more
HISTORY = [
    ("sq1", [], []),
    (
        "sq2",
        [
            "CREATE TYPE sq.mood AS ENUM ('calm')",
            "CREATE TABLE sq.players (id serial PRIMARY KEY, name text NOT NULL, mood sq.mood DEFAULT 'calm')",
            # ' :here' in the database (\\072 is ':'); pg_dump writes it out, and op.execute must not take it
            # for a bind parameter
            "COMMENT ON TABLE sq.players IS E'who plays \\072here, a:b'",
        ],
        ["DROP TABLE sq.players", "DROP TYPE sq.mood"],
    ),
    (
        "sq3",
        ["ALTER TYPE sq.mood ADD VALUE 'angry'", "ALTER TYPE sq.mood ADD VALUE 'bored' BEFORE 'calm'"],
        [],  # PostgreSQL can't drop enum values: a stairway would see it; this history is a squash's input
    ),
    (
        "sq4",
        [
            "ALTER TABLE sq.players RENAME COLUMN name TO handle",
            "CREATE SEQUENCE sq.tickets AS bigint INCREMENT BY 5 START WITH 100 CACHE 3",
            "COMMENT ON COLUMN sq.players.handle IS 'unique per game'",
            "ALTER TABLE sq.players ADD COLUMN nick extensions.citext",  # a declared extension's type
        ],
        [
            "ALTER TABLE sq.players DROP COLUMN nick",
            "DROP SEQUENCE sq.tickets",
            "ALTER TABLE sq.players RENAME COLUMN handle TO name",
        ],
    ),
    (
        "sq5",
        [
            "INSERT INTO sq.players (handle, mood) VALUES ('seed-admin', 'bored'), ('seed-bot', 'angry')",
            "UPDATE sq.players SET handle = upper(handle) WHERE handle = 'seed-bot'",
            "SELECT nextval('sq.tickets')",
            "CREATE VIEW sq.calm_players AS SELECT id, handle FROM sq.players WHERE mood = 'calm'",
            "CREATE FUNCTION sq.touch() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN NEW.handle := trim(NEW.handle); "
            "RETURN NEW; END; $$",
            "CREATE TRIGGER players_touch BEFORE INSERT ON sq.players FOR EACH ROW EXECUTE FUNCTION sq.touch()",
            "ALTER TABLE sq.players ENABLE ROW LEVEL SECURITY",
            "CREATE POLICY own_rows ON sq.players USING (handle = current_user)",
            "DO $$ BEGIN IF EXISTS (SELECT FROM pg_roles WHERE rolname = 'sq_rw') THEN "
            "REVOKE DELETE ON sq.players FROM sq_rw; END IF; END $$",
        ],
        [
            "DROP POLICY own_rows ON sq.players",
            "ALTER TABLE sq.players DISABLE ROW LEVEL SECURITY",
            "DROP TRIGGER players_touch ON sq.players",
            "DROP FUNCTION sq.touch()",
            "DROP VIEW sq.calm_players",
            "DELETE FROM sq.players WHERE handle LIKE 'seed-%' OR handle = 'SEED-BOT'",
        ],
    ),
    ("sq6", [], []),  # replaced below by a concurrent index build
    (
        "sq7",
        ["ALTER TYPE sq.mood ADD VALUE 'sleepy'", "ALTER TABLE sq.players ADD COLUMN level int NOT NULL DEFAULT 1"],
        ["ALTER TABLE sq.players DROP COLUMN level"],
    ),
    (
        "sq8",
        ["CREATE TABLE sq.items (id int PRIMARY KEY, owner int REFERENCES sq.players (id))"],
        ["DROP TABLE sq.items"],
    ),
]
CONCURRENT = """
def upgrade() -> None:
    with op.get_context().autocommit_block():
        op.create_index("players_handle", "players", ["handle"], schema="sq",
                        postgresql_concurrently=True, if_not_exists=True)


def downgrade() -> None:
    with op.get_context().autocommit_block():
        op.drop_index("players_handle", table_name="players", schema="sq",
                      postgresql_concurrently=True, if_exists=True)
"""


@pytest.fixture
def history(fleet) -> tuple[list[Path], Path]:
    """Scratch service `sq` with the eight revisions above; (PYTHONPATH entries, versions dir)."""
    extra = fleet({S: HISTORY})
    versions = extra[0] / "game_sq" / "versions"
    sixth = next(versions.glob("sq6_*.py"))
    source = sixth.read_text()
    sixth.write_text(source[: source.index("\ndef upgrade")] + CONCURRENT)
    schema_py = extra[0] / "game_sq" / "schema.py"
    schema_py.write_text(schema_py.read_text().replace("versions=", 'extensions=("citext",),\n    versions='))
    return extra, versions


def squash(extra, admin_uri, *args):
    return run_cli(["-x", f"schema={S}", "squash", *args], url=None, python_path=extra, GAMEDB_TEST_URL=admin_uri)


def upgrade(db, extra, target="head"):
    return run_cli(["-x", f"schema={S}", "upgrade", target], url=db.url, python_path=extra)


def ok(result):
    assert result.code == 0, result.output
    return result


def test_a_long_history_squashed_at_a_middle_revision(history, admin_uri, psql):
    extra, versions = history
    dbs = {name: ThrowawayDatabase(admin_uri) for name in ("old_fresh", "at", "past", "before", "new_fresh", "offline")}
    try:
        ok(upgrade(dbs["old_fresh"], extra))
        ok(upgrade(dbs["at"], extra, "sq5"))
        ok(upgrade(dbs["past"], extra, "sq7"))
        ok(upgrade(dbs["before"], extra, "sq3"))
        untouched = {p.name: p.read_text() for p in versions.glob("sq[678]_*.py")}

        done = ok(squash(extra, admin_uri, "--through", "sq5", "-m", "squash early history"))

        assert "sq: squashed 5 revisions (sq1 .. sq5) into " in done.stdout
        assert re.search(
            r"proof: fresh databases through both have the same catalog \(\d+ facts\) and rows", done.stdout
        )
        assert "data step carried (as the rows it leaves): sq5_step_sq5.py:" in done.stdout
        (new_file,) = (versions / name for name in versions_files(versions) if "_sq5_" in name)
        assert new_file.name.endswith("_sq5_squash_early_history.py")
        assert versions_files(versions) == {new_file.name, *untouched}
        assert {p.name: p.read_text() for p in versions.glob("sq[678]_*.py")} == untouched
        text = new_file.read_text()
        assert "squashed_revisions: tuple[str, ...] = ('sq1', 'sq2', 'sq3', 'sq4', 'sq5')" in text
        assert "down_revision: str | None = None" in text and "branch_labels: tuple[str, ...] | None = ('sq',)" in text

        # a fresh database through the squashed chain is the one the old chain built, rows included
        ok(upgrade(dbs["new_fresh"], extra))
        old = catalog_snapshot(dbs["old_fresh"].libpq, S, with_rows=True)
        new = catalog_snapshot(dbs["new_fresh"].libpq, S, with_rows=True)
        assert old == new, (sorted(old - new)[:5], sorted(new - old)[:5])
        assert "type mood (e) bored,calm,angry,sleepy" in new
        assert "column players.nick extensions.citext" in new
        comment = dbs["new_fresh"].query("SELECT obj_description('sq.players'::regclass)")
        assert comment == [("who plays :here, a:b",)]
        assert any(line.startswith("index CREATE INDEX players_handle") for line in new)
        assert dbs["new_fresh"].query("SELECT handle, mood::text FROM sq.players ORDER BY id") == [
            ("seed-admin", "bored"),
            ("SEED-BOT", "angry"),
        ]

        # at REV and past it: nothing to re-run, no checksum alarm, and on to the head
        for name, before in (("at", ["sq5"]), ("past", ["sq7"])):
            db = dbs[name]
            assert db.version_rows(S) == before
            ok(upgrade(db, extra))
            assert db.version_rows(S) == ["sq8"]
            status = ok(run_cli(["status", "--no-drift"], url=db.url, python_path=extra))
            assert "edited" not in status.output
            rows = db.query(f"SELECT revision, reason FROM alembic.gamedb_checksums_{S} ORDER BY revision")
            assert ("sq5", "squashed") in rows, rows
            assert catalog_snapshot(db.libpq, S, with_rows=False) == catalog_snapshot(
                dbs["new_fresh"].libpq, S, with_rows=False
            )

        at = dbs["at"]
        table = f"alembic.gamedb_checksums_{S}"
        # the record is an event log: each replaced revision's latest event is `squashed`, naming the
        # squash's file; the kept revision's names the checksum its old file had as the one replaced
        latest = (
            f"SELECT DISTINCT ON (revision) revision, reason, file FROM {table} "
            "WHERE revision <> '' AND revision < 'sq5' ORDER BY revision, seq DESC"
        )
        assert at.query(latest) == [(f"sq{i}", "squashed", new_file.name) for i in range(1, 5)]
        kept = at.query(
            f"SELECT checksum, replaced_checksum FROM {table} WHERE revision = 'sq5' AND reason = 'squashed'"
        )
        assert len(kept) == 1 and kept[0][1] is not None and kept[0][0] != kept[0][1], kept
        assert kept[0][1] == at.query(f"SELECT checksum FROM {table} WHERE revision = 'sq5' ORDER BY seq LIMIT 1")[0][0]
        ok(run_cli(["upgrade-all"], url=at.url, python_path=extra))  # a later run keeps that history
        assert len(at.query(f"SELECT 1 FROM {table} WHERE reason = 'squashed'")) == 5

        # lint: --since REV still names a revision, and the squashed revision itself lints clean
        since = run_cli(["-x", f"schema={S}", "lint", "--since", "sq5", "--no-baseline"], url=None, python_path=extra)
        assert "3 revisions of 1 schema linted" in since.output, since.output
        everything = run_cli(["-x", f"schema={S}", "lint", "--no-baseline"], url=None, python_path=extra)
        assert "revision sq5" not in everything.stdout, everything.output  # one sq7 finding (ADD VALUE) only
        assert "1 finding in 1 revision (4 revisions of 1 schema linted)" in everything.stdout, everything.output

        # the --sql plan of the squashed chain, applied by psql, builds the same schema
        plan = ok(run_cli(["-x", f"schema={S}", "upgrade", "head", "--sql"], url=None, python_path=extra))
        applied = apply_with_psql(psql, dbs["offline"], plan.stdout)
        assert applied.returncode == 0, applied.stderr[-2000:]
        assert catalog_snapshot(dbs["offline"].libpq, S, with_rows=True) == new
        # the plan's guard, run where the plan is applied, takes the replaced revisions' `squashed` events
        # as history: it does not ask for their (removed) files
        guarded = apply_with_psql(psql, dbs["at"], plan.stdout)
        assert "has no file in this plan" not in guarded.stderr, guarded.stderr

        # inside the squashed range: refused with one line naming the revision and what to do
        before_db = dbs["before"]
        refused = upgrade(before_db, extra)
        assert refused.code != 0
        line = refused.stderr.strip()
        assert "\n" not in line and "Traceback" not in line, refused.stderr
        assert "is at revision sq3, which gamedb squash replaced by sq5" in line, line
        assert before_db.version_rows(S) == ["sq3"]
        every = (
            ["status", "--no-drift"],
            ["upgrade-all"],
            ["check-all"],
            ["-x", S, "check"],
            ["-x", S, "downgrade", "base"],
        )
        for args in [[a.replace(S, f"schema={S}") if a == S else a for a in args] for args in every]:
            refused = run_cli(args, url=before_db.url, python_path=extra)
            assert refused.code != 0 and "is at revision sq3, which gamedb squash replaced by sq5" in refused.stderr
        assert before_db.version_rows(S) == ["sq3"]

        # any other edit of the squashed file is still an edit
        new_file.write_text(new_file.read_text() + "# edited\n")
        edited = run_cli(["status", "--no-drift"], url=dbs["at"].url, python_path=extra)
        assert edited.code == 1 and "applied revision sq5 was edited after it was applied" in edited.stderr
    finally:
        for db in dbs.values():
            db.drop()


def test_a_data_step_that_is_not_plain_sql_is_listed_and_refused(history, admin_uri):
    extra, versions = history
    third = next(versions.glob("sq3_*.py"))
    third.write_text(
        third.read_text().replace(
            "def upgrade() -> None:\n",
            "def upgrade() -> None:\n    op.get_bind().exec_driver_sql('SELECT 1')\n",
        )
    )
    before = {p.name: p.read_text() for p in versions.glob("*.py")}

    refused = squash(extra, admin_uri, "--through", "sq5")

    assert refused.code == 2, refused.output
    assert "1 data step(s) in the range are not plain SQL: " in refused.stderr
    assert f"{third.name}:" in refused.stderr and "op.get_bind() code" in refused.stderr
    assert "--drop-data-steps" in refused.stderr
    assert {p.name: p.read_text() for p in versions.glob("*.py")} == before

    dropped = ok(squash(extra, admin_uri, "--through", "sq5", "--drop-data-steps"))

    assert "data step left out: " in dropped.stdout and "and rows" not in dropped.stdout
    (squashed,) = versions.glob("*_sq5_*.py")
    assert f"# data steps left out on purpose (--drop-data-steps):\n#   {third.name}:" in squashed.read_text()


def test_the_squash_refuses_when_the_proof_fails_and_writes_nothing(history, admin_uri, monkeypatch):
    """The proof is the gate: a squashed revision missing one index is named and nothing is written."""
    from gamedb.discovery import discover_schemas
    from gamedb.errors import SquashRefused
    from gamedb.project import find_project
    from gamedb.squash import run as squash_run

    extra, versions = history
    for path in extra:
        monkeypatch.syspath_prepend(str(path))
    third = next(versions.glob("sq3_*.py"))
    third.write_text(
        third.read_text().replace(
            "'bored' BEFORE 'calm'\")",
            "'bored' BEFORE 'calm'\")\n    op.execute(\"CREATE INDEX players_mood ON sq.players (mood)\")",
        )
    )
    real = squash_run.dump_statements
    monkeypatch.setattr(
        squash_run, "dump_statements", lambda dump, owner: [s for s in real(dump, owner) if "players_mood" not in s]
    )
    schemas = discover_schemas()
    before = {p.name: p.read_text() for p in versions.glob("*.py")}

    with pytest.raises(SquashRefused) as refused:
        squash_run.squash_schema(find_project(), schemas, schemas[S], "sq5", admin=admin_uri)

    assert "the squashed revision would not build what sq1..sq5 build; nothing written" in str(refused.value)
    assert "only through the old revisions: index CREATE INDEX players_mood ON sq.players" in str(refused.value)
    assert {p.name: p.read_text() for p in versions.glob("*.py")} == before


@pytest.mark.parametrize(
    ("through", "message"),
    [
        ("sq1", "sq1 is the first revision: nothing to squash"),
        ("nope", "--through 'nope'"),
        ("sq5", "revision sq9 branches off sq3, inside the range; merge it first"),
    ],
)
def test_a_range_that_cannot_be_squashed_is_one_line(history, admin_uri, through, message):
    extra, versions = history
    if through == "sq5":  # a second line of history forks off inside the range
        fork = next(versions.glob("sq4_*.py")).read_text().replace("'sq4'", "'sq9'")
        (versions / "sq9_fork.py").write_text(fork)
    before = versions_files(versions)

    refused = squash(extra, admin_uri, "--through", through)

    assert refused.code == 2 and message in refused.stderr and "Traceback" not in refused.stderr, refused.output
    assert versions_files(versions) == before


def test_a_squashed_history_with_identity_columns_lints_clean(fleet, admin_uri):
    """pg_dump writes an identity column as CREATE TABLE, then ALTER TABLE ... ADD GENERATED: squawk's
    ban-alter-identity on a table the revision itself creates; the squash says so in a marker."""
    extra = fleet(
        {
            "ids": [
                ("ids1", [], []),
                ("ids2", ["CREATE TABLE ids.players (id bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY)"], []),
                ("ids3", ["CREATE TABLE ids.games (id int GENERATED ALWAYS AS IDENTITY PRIMARY KEY)"], []),
            ]
        }
    )
    assert run_cli(["-x", "schema=ids", "lint"], url=None, python_path=extra).code == 0

    ok(
        run_cli(
            ["-x", "schema=ids", "squash", "--through", "ids3"], url=None, python_path=extra, GAMEDB_TEST_URL=admin_uri
        )
    )

    (squashed_file,) = (extra[0] / "game_ids" / "versions").glob("*_ids3_*.py")
    squashed = squashed_file.read_text()
    assert "\n# gamedb: lint-ignore ban-alter-identity -- pg_dump's form of what this revision creates" in squashed
    assert squashed.count("ADD GENERATED") == 2
    linted = run_cli(["-x", "schema=ids", "lint"], url=None, python_path=extra)
    assert linted.code == 0, linted.output
