"""A service written the way teams write models (tests/material/league: 14 tables, enums declared every
way, volatile defaults, CITEXT, a custom type, an expression index on its own function, circular
foreign keys) goes through the whole workflow as generated: autogenerate, upgrade, check, evolve,
stairway, downgrade base. A second service with an enum type of the same name stays intact throughout.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa
from comparison_modes import comparison  # noqa: F401 - the cold/warm fixture

from conftest import REPO, apply_with_psql, run_cli
from gamedb.scaffold.files import ServiceLayout, register_in_place
from gamedb.server import service_engine
from gamedb.testing import SCHEMA_CATALOG, ThrowawayDatabase

MATERIAL = Path(__file__).parent / "material" / "league"


LOBBY_MODELS = """

import enum

from sqlalchemy.orm import Mapped, mapped_column


class Visibility(enum.Enum):
    open = "open"
    closed = "closed"


class Room(Base):
    __tablename__ = "rooms"
    id: Mapped[int] = mapped_column(primary_key=True)
    visibility: Mapped[Visibility]
"""
LOBBY_UP = [
    "CREATE TYPE lobby.visibility AS ENUM ('open', 'closed')",
    "CREATE TABLE lobby.rooms (id serial PRIMARY KEY, visibility lobby.visibility NOT NULL)",
]
LOBBY_DOWN = ["DROP TABLE lobby.rooms", "DROP TYPE lobby.visibility"]

ENUMS = "SELECT n.nspname, t.typname FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace WHERE t.typtype = 'e'"
OUTSIDE = """
SELECT 'type ' || n.nspname || '.' || t.typname FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
WHERE n.nspname IN ('public', 'alembic') AND t.typtype = 'e'
UNION ALL SELECT 'function ' || p.oid::regprocedure::text FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
WHERE n.nspname IN ('public', 'extensions') AND p.proname = 'normalize_handle'
UNION ALL SELECT 'relation ' || c.oid::regclass::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = 'public'
ORDER BY 1
"""


@pytest.fixture
def league(tmp_path: Path) -> ServiceLayout:
    """A copy of the league service, discoverable, with an empty versions directory."""
    layout = ServiceLayout("league", tmp_path / "services" / "league")
    shutil.copytree(MATERIAL, layout.root)
    layout.versions_dir.mkdir()
    register_in_place(layout)
    return layout


@pytest.fixture
def lobby(fleet) -> list[Path]:
    """A second service whose enum type is also called `visibility`."""
    paths = fleet({"lobby": [("lobby1", [], []), ("lobby2", LOBBY_UP, LOBBY_DOWN)]})
    models = paths[0] / "game_lobby" / "models.py"
    models.write_text(models.read_text() + LOBBY_MODELS)
    return paths


@pytest.fixture
def cli(database: ThrowawayDatabase, league: ServiceLayout, lobby: list[Path]):
    def run(*args: str, **env: str):
        return run_cli(list(args), url=database.url, python_path=[league.src_dir, *lobby], **env)

    return run


def ok(result):
    assert result.code == 0, result.output
    return result


def revision_file(layout: ServiceLayout, slug: str) -> Path:
    (found,) = layout.versions_dir.glob(f"*_{slug}.py")
    return found


def edit(path: Path, *replacements: tuple[str, str]) -> None:
    text = path.read_text()
    for old, new in replacements:
        assert old in text, f"{old!r} not in {path.name}"
        text = text.replace(old, new, 1)
    path.write_text(text)


def catalog(database: ThrowawayDatabase, schema: str) -> list[tuple]:
    return database.query(SCHEMA_CATALOG, {"schema": schema})


def init_and_tables(cli, league: ServiceLayout) -> Path:
    """The service's first two revisions, as a team makes them: init, then autogenerate."""
    ok(cli("revision", "-x", "schema=league", "-m", "init league"))
    ok(cli("-x", "schema=league", "upgrade", "head"))
    ok(cli("revision", "-x", "schema=league", "--autogenerate", "-m", "tables"))
    return revision_file(league, "tables")


def evolve_models(league: ServiceLayout) -> None:
    """A new enum value in the middle, a new column with a new enum, a changed default."""
    edit(
        league.models_file,
        ('    friends = "friends"\n', '    friends = "friends"\n    guild = "guild"\n'),
        (
            "class Match(Base):",
            'class Tier(enum.Enum):\n    bronze = "bronze"\n    gold = "gold"\n\n\nclass Match(Base):',
        ),
        (
            'points: Mapped[int] = mapped_column(server_default=text("10"))',
            'points: Mapped[int] = mapped_column(server_default=text("25"))\n'
            "    tier: Mapped[Tier | None] = mapped_column(Enum(Tier, name='tier'))",
        ),
    )


EVOLVED_DRIFT = [
    "league: column league.achievements.points: default 10 in the database, 25 in the models",
    "league: column league.achievements.tier is in the models, not in the database",
    "league: enum type league.tier (bronze, gold) is in the models, not in the database",
    "league: enum type league.visibility: values guild is in the models, not in the database",
]


@pytest.mark.usefixtures("comparison")
def test_a_realistic_service_round_trips_as_generated(cli, league, database, psql, tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(league.src_dir))  # service_engine discovers league in this process
    ok(cli("-x", "schema=lobby", "upgrade", "head"))
    lobby_before = catalog(database, "lobby")
    outside_before = database.query(OUTSIDE)

    tables = init_and_tables(cli, league)
    text = tables.read_text()
    assert "from gamedb.migrate import enum_ops" in text
    assert text.index("enum_ops.create('league', 'visibility'") < text.index("op.create_table(")
    # the declared function its expression index calls: created before the tables, dropped after them
    assert text.index("CREATE OR REPLACE FUNCTION") < text.index("op.create_table(")
    assert text.rindex("op.drop_table(") < text.index('DROP FUNCTION "league".normalize_handle(h text)')
    # the service's own type is written as the database type it is: the revision imports no app code
    assert "game_league" not in text and "sa.Column('slug', sa.String(length=64)" in text
    assert text.index("op.create_foreign_key(op.f('fk_players_team_id_teams')") > text.rindex("op.create_table(")
    downgrade = text[text.index("def downgrade") :]
    assert downgrade.index("op.drop_constraint(op.f('fk_players_team_id_teams')") < downgrade.index("op.drop_table(")
    assert downgrade.rindex("op.drop_table(") < downgrade.index("enum_ops.drop('league', 'visibility')")

    ok(cli("-x", "schema=league", "upgrade", "head"))

    assert sorted(r for r in database.query(ENUMS) if r[0] != "pg_catalog") == [
        ("league", "match_state"),
        ("league", "player_role"),
        ("league", "playerstatus"),
        ("league", "source"),
        ("league", "visibility"),
        ("lobby", "visibility"),
    ]
    assert database.query("SELECT extnamespace::regnamespace::text FROM pg_extension WHERE extname = 'citext'") == [
        ("extensions",)
    ]
    assert database.query(
        "SELECT pg_get_constraintdef(oid) FROM pg_constraint WHERE conname = 'fk_players_team_id_teams'"
    ) == [("FOREIGN KEY (team_id) REFERENCES league.teams(id) ON DELETE SET NULL",)]
    assert (
        "normalize_handle"
        in database.query("SELECT indexdef FROM pg_indexes WHERE indexname = 'ix_players_normalized_handle'")[0][0]
    )
    check = ok(cli("-x", "schema=league", "check"))
    assert check.stdout == "league: models match the database\n"
    assert "INFO" not in check.output

    # the defaults work as declared (volatile, constant, casts, enums)
    (player,) = database.query(
        "INSERT INTO league.players (handle, email) VALUES ('Ann', 'ann@x') "
        "RETURNING status, visibility, roles, settings, country, source"
    )
    assert player == ("active", "public", "{}", {}, "ZZ", "system")
    database.query("INSERT INTO league.channels (id) VALUES (1), (2)")
    # an app session (service_engine) finds citext's case-insensitive operators in schema extensions
    engine = service_engine("league", database.url)
    try:
        with engine.connect() as conn:
            assert conn.execute(sa.text("SELECT count(*) FROM players WHERE handle = 'ANN'")).scalar() == 1
            assert conn.execute(sa.text("SHOW search_path")).scalar() == "league,extensions"
    finally:
        engine.dispose()

    evolve_models(league)
    drift = cli("-x", "schema=league", "check")
    assert drift.code == 1
    assert sorted(line for line in drift.stderr.splitlines() if line.startswith("league: ")) == EVOLVED_DRIFT
    assert drift.stderr.splitlines()[-1].startswith("gamedb: error: schema 'league': 4 difference(s)")
    assert cli("status", "--check").code == 1
    check_all = cli("check-all")
    assert check_all.code == 1 and "league: enum type league.visibility: values guild" in check_all.stderr

    ok(cli("revision", "-x", "schema=league", "--autogenerate", "-m", "evolve"))
    evolve = revision_file(league, "evolve")
    text = evolve.read_text()
    assert (
        "enum_ops.add_values('league', 'visibility', ['guild'], final=['public', 'friends', 'guild', 'hidden'])" in text
    )
    assert text.index("enum_ops.create('league', 'tier'") < text.index("op.add_column(")
    assert "enum_ops.recreate('league', 'visibility', ['public', 'friends', 'hidden'])" in text
    # the team uses the new value in the same revision, and maps it back in the downgrade
    edit(
        evolve,
        (
            "    op.add_column(",
            "    op.execute(\"UPDATE league.channels SET visibility = 'guild' WHERE id = 1\")\n    op.add_column(",
        ),
        (
            "    # values ['guild'] go",
            "    op.execute(\"UPDATE league.channels SET visibility = 'friends' WHERE id = 1\")\n"
            "    # values ['guild'] go",
        ),
    )
    ok(cli("-x", "schema=league", "upgrade", "head"))
    assert database.query("SELECT id, visibility FROM league.channels ORDER BY id") == [(1, "guild"), (2, "public")]
    assert ok(cli("-x", "schema=league", "check")).stdout == "league: models match the database\n"

    ok(cli("-x", "schema=league", "downgrade", "-1"))
    assert database.query("SELECT enum_range(NULL::league.visibility)::text") == [("{public,friends,hidden}",)]
    assert database.query("SELECT to_regtype('league.tier')") == [(None,)]
    assert database.query("SELECT id, visibility FROM league.channels ORDER BY id") == [(1, "friends"), (2, "public")]
    ok(cli("-x", "schema=league", "upgrade", "head"))

    # gamedb's own harness, stairway included, passes for the service as generated
    harness = run_harness(database, league, tmp_path)
    assert harness.returncode == 0, harness.stdout[-3000:]
    assert "6 passed" in harness.stdout

    # offline: the whole history as one script through psql gives the same catalog
    script = ok(cli("-x", "schema=league", "upgrade", "head", "--sql")).stdout
    other = ThrowawayDatabase(database.admin)
    try:
        applied = apply_with_psql(psql, other, script)
        assert applied.returncode == 0, applied.stderr[-2000:]
        assert catalog(other, "league") == catalog(database, "league")
        assert other.version_rows("league") == database.version_rows("league")
    finally:
        other.drop()

    ok(cli("-x", "schema=league", "downgrade", "base"))
    assert database.schemas() >= {"extensions", "lobby"} and "league" not in database.schemas()
    assert catalog(database, "league") == []
    assert catalog(database, "lobby") == lobby_before
    assert database.query(OUTSIDE) == outside_before
    assert database.query("SELECT count(*) FROM pg_extension WHERE extname = 'citext'") == [(1,)]


def run_harness(database: ThrowawayDatabase, league: ServiceLayout, tmp_path: Path) -> subprocess.CompletedProcess:
    test_file = tmp_path / "test_league_harness.py"
    test_file.write_text("from gamedb.testing import schema_checks\n\nTestLeague = schema_checks('league')\n")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.update(PYTHONPATH=str(league.src_dir), GAMEDB_TEST_URL=database.admin)
    return subprocess.run(
        [sys.executable, "-m", "pytest", str(test_file), "-q", "-p", "no:cacheprovider", "--rootdir", str(tmp_path)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


def test_a_removed_enum_value_still_in_use_fails_the_revision_and_keeps_the_schema(cli, league, database):
    init_and_tables(cli, league)
    ok(cli("-x", "schema=league", "upgrade", "head"))
    database.query("INSERT INTO league.channels (id, visibility) VALUES (1, 'hidden')")
    head = database.version_rows("league")
    edit(league.models_file, ('    hidden = "hidden"\n', ""))

    ok(cli("revision", "-x", "schema=league", "--autogenerate", "-m", "no hidden"))
    text = revision_file(league, "no_hidden").read_text()
    assert "# values ['hidden'] go: rows holding them make this fail (22P02); UPDATE them first" in text
    failed = cli("-x", "schema=league", "upgrade", "head")

    assert failed.code == 1
    assert (
        "gamedb: error: schema 'league': invalid input value for enum visibility: \"hidden\" [SQLSTATE 22P02]"
        in failed.stderr
    )
    assert "Traceback" not in failed.output
    assert database.version_rows("league") == head
    assert database.query("SELECT enum_range(NULL::league.visibility)::text") == [("{public,friends,hidden}",)]

    database.query("UPDATE league.channels SET visibility = 'public'")
    ok(cli("-x", "schema=league", "upgrade", "head"))
    assert database.query("SELECT enum_range(NULL::league.visibility)::text") == [("{public,friends}",)]
    assert database.query(
        "SELECT column_default FROM information_schema.columns WHERE table_schema = 'league'"
        " AND table_name = 'channels' AND column_name = 'visibility'"
    ) == [("'public'::league.visibility",)]
    assert ok(cli("-x", "schema=league", "check")).stdout == "league: models match the database\n"


def test_a_deployer_without_rights_to_create_an_extension_is_told_the_admin_step(cli, league, database):
    init_and_tables(cli, league)  # the revision files, written on a dev database...
    ok(cli("-x", "schema=league", "downgrade", "base"))  # ...which then looks like production: nothing of league
    database.query("DROP TABLE alembic.alembic_version_league")
    database.query("DROP EXTENSION citext")
    ok(cli("roles", "apply", "--schema", "lobby"))  # the model, but not league's extension
    ok(cli("roles", "login", "deployer", "--migrator"))
    as_deployer = database.login_uri("deployer").replace("postgresql://", "postgresql+psycopg://", 1)

    refused = run_cli(["-x", "schema=league", "upgrade", "head"], url=as_deployer, python_path=[league.src_dir])

    assert refused.code == 1
    assert refused.stderr.strip().splitlines()[-1] == (
        "gamedb: error: schema 'league' needs extension(s) citext, not installed: this login may not create "
        "them; an admin runs `gamedb roles apply` (it installs every declared extension)"
    )
    assert database.version_rows("league") is None and "league" not in database.schemas()

    ok(cli("roles", "apply"))
    ok(run_cli(["-x", "schema=league", "upgrade", "head"], url=as_deployer, python_path=[league.src_dir]))
    assert database.query("SELECT tableowner FROM pg_tables WHERE tablename = 'players'") == [("league_owner",)]
    assert ok(cli("roles", "check")).stdout.strip().endswith("roles match the model")


def test_an_error_in_a_revision_file_is_one_line_naming_the_file_and_line(cli, league):
    ok(cli("revision", "-x", "schema=league", "-m", "init league"))
    init = revision_file(league, "init_league")
    edit(init, ("def upgrade() -> None:\n", "def upgrade() -> None:\n    helper_nobody_imported()\n"))
    line = init.read_text().splitlines().index("    helper_nobody_imported()") + 1

    result = cli("-x", "schema=league", "upgrade", "head")

    assert result.code == 1
    assert result.stderr.strip().splitlines()[-1] == (
        f"gamedb: error: {init}, line {line}: NameError: name 'helper_nobody_imported' is not defined "
        "(-v shows the traceback)"
    )
    verbose = cli("-v", "-x", "schema=league", "upgrade", "head")
    assert "Traceback (most recent call last)" in verbose.stderr


def test_a_model_that_does_not_import_is_one_line_naming_the_file(cli, league):
    league.models_file.write_text(league.models_file.read_text() + "\nundefined_helper()\n")
    line = len(league.models_file.read_text().splitlines())

    result = cli("-x", "schema=league", "check")

    assert result.code == 2
    assert result.stderr.strip() == (
        "gamedb: error: distribution game-league, schema 'league': models module 'game_league.models' cannot be "
        f"imported: {league.models_file}, line {line}: NameError: name 'undefined_helper' is not defined"
    )


def test_alembic_comparison_notes_show_only_with_verbose(cli, league):
    init_and_tables(cli, league)
    ok(cli("-x", "schema=league", "upgrade", "head"))

    quiet = ok(cli("revision", "-x", "schema=league", "--autogenerate", "-m", "nothing"))
    revision_file(league, "nothing").unlink()
    noisy = ok(cli("-v", "revision", "-x", "schema=league", "--autogenerate", "-m", "nothing again"))

    assert not re.search(r"^INFO  \[alembic\.(autogenerate|ddl)", quiet.output, re.MULTILINE), quiet.output
    assert "Detected sequence named 'channels_id_seq'" in noisy.output


def test_enums_declared_every_way_land_in_the_service_schema(league):
    code = (
        "from gamedb.discovery import discover_schemas\n"
        "from gamedb.discovery.enums import enum_uses\n"
        "info = discover_schemas()['league']\n"
        "print(sorted({(u.type.schema, u.type.name) for u in enum_uses(info.metadata)}))\n"
        "print(sum(1 for u in enum_uses(info.metadata) if u.type.name == 'visibility'))\n"
    )
    run = subprocess.run(
        [sys.executable, "-c", code],
        env={**os.environ, "PYTHONPATH": str(league.src_dir)},
        capture_output=True,
        text=True,
        check=True,
    )
    assert run.stdout.splitlines() == [
        "[('league', 'match_state'), ('league', 'player_role'), ('league', 'playerstatus'), "
        "('league', 'source'), ('league', 'visibility')]",
        "5",  # the mixin's enum on five tables
    ]


@pytest.mark.parametrize(
    ("column", "error"),
    [
        (
            "mood: Mapped[str] = mapped_column(Enum('a', name='mood', schema='public'))",
            "column league.channels.mood: enum type public.mood is outside schema 'league'; "
            "a service's types live in its own schema",
        ),
        (
            "mood: Mapped[Visibility] = mapped_column(Enum('x', 'y', name='visibility'))",
            "enum type league.visibility has values ['public', 'friends', 'hidden'] on league.players.visibility "
            "but ['x', 'y'] on league.channels.mood",
        ),
    ],
)
def test_a_service_enum_outside_its_schema_or_declared_twice_is_refused(cli, league, database, column, error):
    edit(league.models_file, ("    topic: Mapped[str]", f"    {column}\n    topic: Mapped[str]"))

    result = cli("-x", "schema=league", "upgrade", "head")

    assert result.code == 2
    assert result.stderr.strip() == f"gamedb: error: distribution game-league, schema 'league': {error}"
    assert database.schemas() == {"public"}
