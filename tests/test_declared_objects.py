"""Views, materialized views, functions, triggers, RLS policies and partitioned tables declared next to a
service's models (tests/material/arena, shaped like a game service) go through the whole workflow as
generated: autogenerate from empty, upgrade, check, change each object, downgrade -1, downgrade base.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import psycopg
import pytest
import sqlalchemy as sa
from comparison_modes import comparison  # noqa: F401 - the cold/warm fixture
from sqlalchemy import make_url

from conftest import apply_with_psql, run_cli
from gamedb.scaffold.files import ServiceLayout, register_in_place
from gamedb.server import service_engine
from gamedb.testing import SCHEMA_CATALOG, ThrowawayDatabase

MATERIAL = Path(__file__).parent / "material" / "arena"

DEFINITIONS = """
SELECT 'view ' || c.relname || ': ' || pg_get_viewdef(c.oid) FROM pg_class c
WHERE c.relnamespace = 'arena'::regnamespace AND c.relkind IN ('v', 'm')
UNION ALL SELECT 'function ' || p.proname || ': ' || pg_get_functiondef(p.oid) FROM pg_proc p
WHERE p.pronamespace = 'arena'::regnamespace
UNION ALL SELECT 'trigger ' || t.tgname || ': ' || pg_get_triggerdef(t.oid) FROM pg_trigger t
JOIN pg_class c ON c.oid = t.tgrelid WHERE c.relnamespace = 'arena'::regnamespace AND NOT t.tgisinternal
AND t.tgparentid = 0
UNION ALL SELECT 'policy ' || policyname || ': ' || coalesce(qual, '') FROM pg_policies WHERE schemaname = 'arena'
UNION ALL SELECT 'rls ' || relname || ': ' || relrowsecurity::text FROM pg_class
WHERE relnamespace = 'arena'::regnamespace AND relkind IN ('r', 'p') AND NOT relispartition
ORDER BY 1
"""


@pytest.fixture
def arena(tmp_path: Path) -> ServiceLayout:
    """A copy of the arena service, discoverable, with an empty versions directory."""
    layout = ServiceLayout("arena", tmp_path / "services" / "arena")
    shutil.copytree(MATERIAL, layout.root)
    layout.versions_dir.mkdir()
    register_in_place(layout)
    return layout


@pytest.fixture
def cli(database: ThrowawayDatabase, arena: ServiceLayout):
    def run(*args: str, **env: str):
        return run_cli(list(args), url=database.url, python_path=[arena.src_dir], **env)

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


def generate_and_upgrade(cli, arena: ServiceLayout) -> Path:
    ok(cli("revision", "-x", "schema=arena", "-m", "init arena"))
    ok(cli("-x", "schema=arena", "upgrade", "head"))
    ok(cli("revision", "-x", "schema=arena", "--autogenerate", "-m", "arena objects"))
    ok(cli("-x", "schema=arena", "upgrade", "head"))
    return revision_file(arena, "arena_objects")


CHANGED_DRIFT = [
    "arena: function arena.set_updated_at(): definition in the database differs from the models",
    "arena: policy own_wallet on arena.wallets: definition in the database differs from the models",
    "arena: trigger players_updated_at on arena.players: definition in the database differs from the models",
    "arena: view arena.active_players: definition in the database differs from the models",
]


@pytest.mark.usefixtures("comparison")
def test_a_game_service_with_declared_objects_round_trips_as_generated(cli, arena, database, monkeypatch):
    monkeypatch.syspath_prepend(str(arena.src_dir))  # service_engine discovers arena in this process
    ok(cli("roles", "apply"))  # as in production: migrations run as arena_owner
    revision = generate_and_upgrade(cli, arena)
    text = revision.read_text()
    # the trigger function before the tables, the triggers, views and policy after them
    assert text.index("CREATE OR REPLACE FUNCTION") < text.index("op.create_table(") < text.index("CREATE TRIGGER")
    assert "postgresql_partition_by='RANGE (occurred_at)'" in text
    assert ok(cli("-x", "schema=arena", "check")).stdout == "arena: models match the database\n"

    # partitions made ahead of time are not drift, and carry the parent's index
    made = ok(cli("partitions", "-x", "schema=arena", "--ahead", "2"))
    assert made.stdout.count("created partition arena.match_events_p") == 3, made.output
    assert ok(cli("-x", "schema=arena", "check")).stdout == "arena: models match the database\n"
    ok(cli("upgrade-all"))  # the installed services too, for check-all
    assert ok(cli("check-all")).code == 0
    (partition,) = database.query(
        "SELECT c.relname FROM pg_class c WHERE c.relispartition AND c.relnamespace = 'arena'::regnamespace"
        " AND pg_get_expr(c.relpartbound, c.oid) LIKE '%' || to_char(now(), 'YYYY-MM') || '-01%' || 'TO%'"
    )
    assert database.query(
        "SELECT count(*) FROM pg_indexes WHERE schemaname = 'arena' AND tablename = %s"
        " AND indexdef LIKE '%%(player_id)%%'",
        (partition[0],),
    ) == [(1,)]
    # made as arena_owner: the owner's default privileges give the app role its grants at once
    assert database.query(
        "SELECT relowner::regrole::text, has_table_privilege('arena_rw', oid, 'SELECT, INSERT') FROM pg_class"
        " WHERE relname = %s",
        (partition[0],),
    ) == [("arena_owner", True)]
    # a second run makes only what is missing
    assert ok(cli("partitions", "-x", "schema=arena", "--ahead", "3")).stdout.count("created partition") == 1

    # the app login sees only its own player's wallet through service_engine; the triggers and the view work
    database.query(
        "INSERT INTO arena.players (handle) VALUES ('ann'), ('bob');"
        " INSERT INTO arena.wallets (player_id, coins) VALUES (1, 10), (2, 20);"
        " INSERT INTO arena.match_events (occurred_at, player_id, points) VALUES (now(), 1, 5), (now(), 2, 7);"
    )
    database.query("CALL arena.award(1, 5)")  # a declared procedure
    database.query("SELECT arena.refresh_leaderboard()")
    assert database.query("SELECT player_id, points FROM arena.leaderboard ORDER BY 1") == [(1, 5), (2, 7)]
    before = database.query("SELECT updated_at FROM arena.players WHERE id = 1")[0][0]
    database.query("UPDATE arena.players SET handle = 'ann2' WHERE id = 1")
    assert database.query("SELECT updated_at FROM arena.players WHERE id = 1")[0][0] > before

    login = "arena_app"
    ok(cli("roles", "login", login, "--schema", "arena"))
    engine = service_engine("arena", database.login_uri(login))
    try:
        with engine.connect() as conn:
            assert conn.execute(sa.text("SELECT count(*) FROM wallets")).scalar() == 0  # no player set
            conn.execute(sa.text("SELECT set_config('game.player_id', '2', false)"))
            assert conn.execute(sa.text("SELECT player_id, coins FROM wallets")).all() == [(2, 20)]
            conn.execute(sa.text("UPDATE wallets SET coins = 0"))  # reaches its own row only
            conn.commit()
    finally:
        engine.dispose()
    assert database.query("SELECT player_id, coins FROM arena.wallets ORDER BY 1") == [(1, 15), (2, 0)]

    # a deployer's check-all compares as arena_owner; an object made by hand by another role is named
    ok(cli("roles", "login", "deployer", "--migrator"))
    deployer = make_url(database.login_uri("deployer")).set(drivername="postgresql+psycopg").render_as_string(False)
    assert run_cli(["check-all"], url=deployer, python_path=[arena.src_dir]).code == 0
    database.query(
        "CREATE FUNCTION arena.audit() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NEW; END $$;"
        " CREATE TRIGGER audit AFTER UPDATE ON arena.wallets FOR EACH ROW EXECUTE FUNCTION arena.audit()"
    )
    by_deployer = run_cli(["check-all"], url=deployer, python_path=[arena.src_dir])
    assert by_deployer.code == 1
    assert sorted(line for line in by_deployer.stderr.splitlines() if line.startswith("arena: ")) == [
        "arena: function arena.audit() is in the database, not in the models",
        "arena: trigger audit on arena.wallets is in the database, not in the models",
    ]
    database.query("DROP TRIGGER audit ON arena.wallets; DROP FUNCTION arena.audit()")

    # change each object: view column, function body, trigger timing, policy predicate
    definitions_before = database.query(DEFINITIONS)
    edit(
        arena.models_file,
        ("SELECT id, handle FROM players", "SELECT id, handle, team_id FROM players"),
        ("NEW.updated_at := now();", "NEW.updated_at := clock_timestamp();"),
        (
            'Trigger("players_updated_at", "players", "BEFORE UPDATE"',
            'Trigger("players_updated_at", "players", "BEFORE INSERT OR UPDATE"',
        ),
        (
            "player_id = current_setting('game.player_id', true)::bigint",
            "player_id = current_setting('game.player_id', true)::bigint AND coins >= 0",
        ),
    )
    drift = cli("-x", "schema=arena", "check")
    assert drift.code == 1
    assert sorted(line for line in drift.stderr.splitlines() if line.startswith("arena: ")) == CHANGED_DRIFT
    assert cli("check-all").code == 1

    ok(cli("revision", "-x", "schema=arena", "--autogenerate", "-m", "change objects"))
    ok(cli("-x", "schema=arena", "upgrade", "head"))
    assert ok(cli("-x", "schema=arena", "check")).stdout == "arena: models match the database\n"
    changed = database.query(DEFINITIONS)
    assert changed != definitions_before

    ok(cli("-x", "schema=arena", "downgrade", "-1"))
    assert database.query(DEFINITIONS) == definitions_before
    ok(cli("-x", "schema=arena", "upgrade", "head"))
    assert database.query(DEFINITIONS) == changed

    ok(cli("-x", "schema=arena", "downgrade", "base"))
    assert "arena" not in database.schemas()
    assert database.query(SCHEMA_CATALOG, {"schema": "arena"}) == []


# Objects made by hand in a service schema that change what the app's SQL does: each is named by
# `check` and `check-all` (exit 1), which passed on main before declared objects existed.
HAND_MADE = [
    (
        [
            "CREATE TABLE public.leaked (login text, password_hash text)",
            "CREATE FUNCTION auth.copy_out() RETURNS trigger LANGUAGE plpgsql AS"
            " $$ BEGIN INSERT INTO public.leaked VALUES (NEW.login, NEW.password_hash); RETURN NEW; END $$",
            "CREATE TRIGGER copy_out AFTER INSERT ON auth.users FOR EACH ROW EXECUTE FUNCTION auth.copy_out()",
        ],
        [
            "auth: function auth.copy_out() is in the database, not in the models",
            "auth: trigger copy_out on auth.users is in the database, not in the models",
        ],
    ),
    (
        ["CREATE RULE swallow AS ON INSERT TO auth.users DO INSTEAD NOTHING"],
        ["auth: rule swallow on auth.users is in the database, not in the models"],
    ),
    (
        ["ALTER TABLE auth.users ENABLE ROW LEVEL SECURITY"],
        ["auth: row level security of table auth.users: enabled in the database, disabled in the models"],
    ),
    (
        ["CREATE POLICY nobody ON auth.refresh_tokens USING (false)"],
        ["auth: policy nobody on auth.refresh_tokens is in the database, not in the models"],
    ),
    (
        ["CREATE VIEW auth.logins AS SELECT login FROM auth.users"],
        ["auth: view auth.logins is in the database, not in the models"],
    ),
]


@pytest.mark.usefixtures("comparison")
@pytest.mark.parametrize(
    ("statements", "lines"),
    HAND_MADE,
    ids=["trigger-to-public", "instead-nothing-rule", "rls-no-policy", "policy-false", "view"],
)
def test_an_object_made_by_hand_in_a_service_schema_fails_check_and_check_all(gamedb, database, statements, lines):
    assert gamedb("upgrade-all").code == 0
    assert gamedb("check-all").code == 0
    for statement in statements:
        database.query(statement)

    check = gamedb("-x", "schema=auth", "check")
    assert check.code == 1
    assert sorted(line for line in check.stderr.splitlines() if line.startswith("auth: ")) == lines
    check_all = gamedb("check-all")
    assert check_all.code == 1
    assert "check-all failed: auth need a revision" in check_all.stderr
    for line in lines:
        assert line in check_all.stderr
    # autogenerate would drop it; nothing of the comparison stayed behind
    assert database.query("SELECT count(*) FROM pg_stat_activity WHERE state = 'idle in transaction'") == [(0,)]


@pytest.mark.usefixtures("comparison")
def test_declared_objects_compare_as_printed_and_fail_as_one_line(cli, arena, database, psql):
    generate_and_upgrade(cli, arena)
    clean = "arena: models match the database\n"
    # offline: the --sql script through psql makes the same objects
    script = ok(cli("-x", "schema=arena", "upgrade", "head", "--sql")).stdout
    other = ThrowawayDatabase(database.admin)
    try:
        applied = apply_with_psql(psql, other, script)
        assert applied.returncode == 0, applied.stderr[-2000:]
        assert other.query(DEFINITIONS) == database.query(DEFINITIONS)
        assert other.query(SCHEMA_CATALOG, {"schema": "arena"}) == database.query(SCHEMA_CATALOG, {"schema": "arena"})
    finally:
        other.drop()
    # a declared trigger disabled by hand no longer does what the models say
    database.query("ALTER TABLE arena.teams DISABLE TRIGGER teams_updated_at")
    disabled = cli("-x", "schema=arena", "check")
    assert disabled.code == 1
    assert "arena: trigger teams_updated_at on arena.teams: definition in the database differs from the models" in (
        disabled.stderr
    )
    database.query("ALTER TABLE arena.teams ENABLE TRIGGER teams_updated_at")
    models = arena.models_file.read_text()

    # spelled differently, printed the same by PostgreSQL: no drift
    edit(
        arena.models_file,
        (
            "SELECT id, handle FROM players WHERE team_id IS NOT NULL",
            "select id,  handle\\n  from players where (team_id is not null)",
        ),
        ("current_setting('game.player_id', true)::bigint", "CAST(current_setting('game.player_id', true) AS bigint)"),
    )
    assert ok(cli("-x", "schema=arena", "check")).stdout == clean
    # a view's options are part of its definition
    database.query("ALTER VIEW arena.active_players RESET (security_invoker)")
    changed = cli("-x", "schema=arena", "check")
    assert changed.code == 1
    assert "arena: view arena.active_players: definition in the database differs from the models" in changed.stderr
    database.query("ALTER VIEW arena.active_players SET (security_invoker = true)")

    # a declared object the server refuses: one line naming it, nothing changed
    arena.models_file.write_text(models.replace("SELECT id, handle FROM players", "SELECT id, nme FROM players"))
    refused = cli("-x", "schema=arena", "check")
    assert refused.code == 1
    assert refused.stderr.strip() == (
        "gamedb: error: schema 'arena': declared view active_players can't be created: column \"nme\" does not exist"
    )
    assert "Traceback" not in refused.output

    # an app transaction holding a table: the comparison gives up after lock_timeout instead of queueing forever
    arena.models_file.write_text(models)
    with psycopg.connect(database.libpq) as holder:
        holder.execute("LOCK TABLE arena.players IN ACCESS SHARE MODE")
        started = time.monotonic()
        waited = cli("-x", "schema=arena", "check", GAMEDB_LOCK_TIMEOUT="500ms")
        assert time.monotonic() - started < 20
    assert waited.code != 0
    assert waited.stderr.strip() == (
        "gamedb: error: comparing declared objects waited longer than lock_timeout (500ms) for a table an open"
        " transaction holds; nothing was changed: try again"
    )
    assert ok(cli("-x", "schema=arena", "check")).stdout == clean


@pytest.mark.usefixtures("comparison")
def test_autogenerate_drops_what_nothing_declares_keeps_partitions_and_its_downgrade_restores_them(
    cli, arena, database
):
    generate_and_upgrade(cli, arena)
    # a partition a revision (or a DBA) made, a rule made by hand, and a view the models stop declaring
    database.query(
        "CREATE TABLE arena.match_events_2020 PARTITION OF arena.match_events"
        " FOR VALUES FROM ('2020-01-01') TO ('2021-01-01');"
        " CREATE RULE swallow AS ON INSERT TO arena.teams DO INSTEAD NOTHING"
    )
    edit(
        arena.models_file,
        ('"active_players", "SELECT id, handle FROM players WHERE team_id IS NOT NULL",', '"gone", "SELECT 1",'),
    )
    before = database.query(DEFINITIONS) + database.query("SELECT definition FROM pg_rules WHERE schemaname = 'arena'")
    drift = cli("-x", "schema=arena", "check")
    assert sorted(line for line in drift.stderr.splitlines() if line.startswith("arena: ")) == [
        "arena: rule swallow on arena.teams is in the database, not in the models",
        "arena: view arena.active_players is in the database, not in the models",
        "arena: view arena.gone is in the models, not in the database",
    ]

    ok(cli("revision", "-x", "schema=arena", "--autogenerate", "-m", "drop strays"))
    text = revision_file(arena, "drop_strays").read_text()
    assert "drop_table" not in text and "match_events_2020" not in text
    ok(cli("-x", "schema=arena", "upgrade", "head"))
    assert ok(cli("-x", "schema=arena", "check")).stdout == "arena: models match the database\n"
    assert database.query("SELECT count(*) FROM pg_rules WHERE schemaname = 'arena'") == [(0,)]
    assert database.query("SELECT to_regclass('arena.match_events_2020') IS NOT NULL") == [(True,)]

    ok(cli("-x", "schema=arena", "downgrade", "-1"))
    after = database.query(DEFINITIONS) + database.query("SELECT definition FROM pg_rules WHERE schemaname = 'arena'")
    assert after == before


def test_partitions_refuses_bad_input_with_one_line(cli, database):
    no_schema = cli("partitions", "--ahead", "2")
    assert no_schema.code == 2
    assert no_schema.stderr.startswith("gamedb: error: `gamedb partitions` works on one schema: add -x schema=NAME")
    negative = cli("partitions", "-x", "schema=arena", "--ahead", "-1")
    assert (negative.code, negative.stderr) == (
        2,
        "gamedb: error: --ahead must be 0 or more (months after the current one)\n",
    )
    unknown = cli("partitions", "-x", "schema=nope")
    assert unknown.code == 2 and "unknown schema 'nope'" in unknown.stderr
    for result in (no_schema, negative, unknown):
        assert "Traceback" not in result.output
    assert "arena" not in database.schemas()
