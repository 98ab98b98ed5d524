"""`gamedb lint`: squawk over the SQL each schema's revisions would run, adoptable gradually
(lint-ignore markers, a baseline, --since), each finding naming schema, revision and file."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from conftest import REPO, Result, run_cli

BLOCKING_INDEX = "require-concurrent-index-creation"
TYPE_CHANGE = "changing-column-type"
CHAT = [
    ("chat1", [], []),
    ("chat2", ["CREATE TABLE chat.t (id bigint PRIMARY KEY, x text)"], ["DROP TABLE chat.t"]),
    # on a live table: blocks writes; and a type change that rewrites the table
    ("chat3", ["CREATE INDEX ix_t_x ON chat.t (x)", "ALTER TABLE chat.t ALTER COLUMN x TYPE varchar(20)"], []),
    ("chat4", ["CREATE INDEX ix_t_x2 ON chat.t (x)"], ["DROP INDEX chat.ix_t_x2"]),  # the same risk, later
]
GUILD = [
    ("guild1", [], []),
    ("guild2", ["CREATE TABLE guild.g (id bigint PRIMARY KEY, x text)"], []),
    ("guild3", ["CREATE INDEX ix_g_x ON guild.g (x)"], []),
]


def versions(project: Path, schema: str) -> Path:
    return project / "services" / schema / "src" / f"game_{schema}" / "versions"


def revision_path(project: Path, schema: str, revision: str) -> Path:
    return versions(project, schema) / f"{revision}_step_{revision}.py"


def shown(schema: str, revision: str) -> str:
    return f"services/{schema}/src/game_{schema}/versions/{revision}_step_{revision}.py"


def add_marker(path: Path, marker: str) -> int:
    """Put the comment at the top of upgrade(); return its line number."""
    text = path.read_text().replace("def upgrade() -> None:\n", f"def upgrade() -> None:\n    {marker}\n", 1)
    path.write_text(text)
    return text.splitlines().index(f"    {marker}") + 1


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A monorepo root of its own (alembic.ini, migrations/, the repo's .squawk.toml); the scratch
    services of `fleet` live under its services/ folder."""
    shutil.copy(REPO / "alembic.ini", tmp_path / "alembic.ini")
    shutil.copy(REPO / ".squawk.toml", tmp_path / ".squawk.toml")
    (tmp_path / "migrations").symlink_to(REPO / "migrations")
    return tmp_path


@pytest.fixture
def lint(project: Path, database, fleet):
    """`gamedb lint ARGS` run from the scratch project over the chat and guild services."""
    extra = fleet({"chat": CHAT, "guild": GUILD})

    def run(*args: str) -> Result:
        return run_cli(["lint", *args], url=database.url, python_path=extra, cwd=project)

    return run


def findings(result: Result) -> list[str]:
    return [line for line in result.stdout.splitlines() if not line.startswith("gamedb lint:")]


def test_a_finding_names_schema_revision_and_the_revision_file_not_a_temporary_path(lint):
    result = lint("-x", "schema=chat")

    assert result.code == 1
    prefix = f"{shown('chat', 'chat3')}: schema chat, revision chat3: {BLOCKING_INDEX}: During normal index creation"
    assert [line for line in findings(result) if line.startswith(prefix)] == [
        f"{prefix}, table updates are blocked, but reads are still allowed."
        " Use `concurrently` to avoid blocking writes. SQL: CREATE INDEX ix_t_x ON chat.t (x);"
    ]
    assert ".sql" not in result.stdout and "gamedb-lint-" not in result.stdout
    assert {line.split(": ")[2] for line in findings(result)} == {BLOCKING_INDEX, TYPE_CHANGE}
    assert "guild" not in result.stdout
    assert result.stdout.splitlines()[-1] == "gamedb lint: 3 findings in 2 revisions (4 revisions of 1 schema linted)"


def test_json_findings_carry_schema_revision_file_and_rule(lint):
    result = lint("-x", "schema=chat", "--json")

    report = json.loads(result.stdout)
    assert result.code == 1
    assert [(f["schema"], f["revision"], f["file"], f["rule"]) for f in report["findings"]] == [
        ("chat", "chat3", shown("chat", "chat3"), BLOCKING_INDEX),
        ("chat", "chat3", shown("chat", "chat3"), TYPE_CHANGE),
        ("chat", "chat4", shown("chat", "chat4"), BLOCKING_INDEX),
    ]
    assert report["revisions_linted"] == 4


def test_a_marker_silences_one_rule_in_one_revision_only(lint, project):
    add_marker(revision_path(project, "chat", "chat3"), f"# gamedb: lint-ignore {BLOCKING_INDEX} -- t is empty here")

    result = lint("-x", "schema=chat")

    assert result.code == 1
    assert [line.split(": ")[1:3] for line in findings(result)] == [
        ["schema chat, revision chat3", TYPE_CHANGE],  # the other rule of the same revision
        ["schema chat, revision chat4", BLOCKING_INDEX],  # the same rule in another revision
    ]
    assert "gamedb lint: 1 finding silenced by lint-ignore markers" in result.stdout


def test_several_markers_silence_several_rules_of_a_revision(lint, project):
    path = revision_path(project, "chat", "chat3")
    add_marker(path, f"# gamedb: lint-ignore {BLOCKING_INDEX} -- t is empty here")
    add_marker(path, f"#gamedb: lint-ignore {TYPE_CHANGE} --  nobody reads x yet")

    result = lint("-x", "schema=chat")

    assert [line.split(": ")[1:3] for line in findings(result)] == [["schema chat, revision chat4", BLOCKING_INDEX]]


@pytest.mark.parametrize(
    ("marker", "problem"),
    [
        (f"# gamedb: lint-ignore {BLOCKING_INDEX}", f"lint-ignore {BLOCKING_INDEX} has no reason"),
        (f"# gamedb: lint-ignore {BLOCKING_INDEX} --   ", f"lint-ignore {BLOCKING_INDEX} has no reason"),
        ("# gamedb: lint-ignore -- because", "lint-ignore names no rule"),
        (
            f"# gamedb: lint-ignroe {BLOCKING_INDEX} -- typo",
            f"malformed gamedb marker 'lint-ignroe {BLOCKING_INDEX} -- typo'",
        ),
        ("# gamedb: lint-ignore require-concurrent-index -- close", "lint-ignore require-concurrent-index: squawk"),
    ],
)
def test_a_bad_marker_is_one_error_line_naming_schema_revision_file_and_line(lint, project, marker, problem):
    line = add_marker(revision_path(project, "chat", "chat4"), marker)

    result = lint("-x", "schema=chat")

    assert result.code == 2
    assert result.stdout == ""
    assert result.stderr.startswith(
        f"gamedb: error: {shown('chat', 'chat4')}:{line}: schema chat, revision chat4: {problem}"
    )
    assert len(result.stderr.strip().splitlines()) == 1


def test_a_gamedb_word_in_a_string_is_not_a_marker(lint, project):
    path = revision_path(project, "chat", "chat2")
    path.write_text(path.read_text().replace("pass\n", "op.execute('SELECT 1 -- # gamedb: lint-ignore x')\n", 1))

    result = lint("-x", "schema=chat")

    assert result.code == 1, result.output  # the chat3/chat4 findings, no marker error


def test_after_writing_the_baseline_lint_is_clean_and_says_how_much_it_suppressed(lint, project):
    written = lint("--baseline")
    path = revision_path(project, "chat", "chat3")
    path.write_text(path.read_text().replace("def upgrade", "# moved down by an unrelated edit\n\n\ndef upgrade"))
    path.rename(path.with_name("chat3_renamed.py"))
    later = lint()

    assert written.code == 0, written.output
    assert written.stdout.splitlines() == [
        "gamedb lint: wrote 4 findings in 3 revisions to .gamedb-lint-baseline.json (11 revisions of 4 schemas linted)"
    ]
    assert (project / ".gamedb-lint-baseline.json").read_text() == (
        "{\n"
        '  "gamedb_lint_baseline": 1,\n'
        '  "findings": [\n'
        f'    {{"schema": "chat", "revision": "chat3", "rule": "{TYPE_CHANGE}", "count": 1}},\n'
        f'    {{"schema": "chat", "revision": "chat3", "rule": "{BLOCKING_INDEX}", "count": 1}},\n'
        f'    {{"schema": "chat", "revision": "chat4", "rule": "{BLOCKING_INDEX}", "count": 1}},\n'
        f'    {{"schema": "guild", "revision": "guild3", "rule": "{BLOCKING_INDEX}", "count": 1}}\n'
        "  ]\n"
        "}\n"
    )
    assert later.code == 0, later.output
    assert later.stdout.splitlines() == [
        "gamedb lint: no new findings (11 revisions of 4 schemas linted)",
        "gamedb lint: 4 baselined findings suppressed (.gamedb-lint-baseline.json)",
    ]


def test_a_finding_the_baseline_does_not_hold_is_reported(lint, project):
    lint("--baseline")
    path = revision_path(project, "guild", "guild3")
    added = "ON guild.g (x)')\n    op.execute('CREATE INDEX ix_g_id ON guild.g (id)')\n"
    path.write_text(path.read_text().replace("ON guild.g (x)')\n", added))

    result = lint()

    assert result.code == 1
    assert [line.split(": ")[1:3] for line in findings(result)] == [["schema guild, revision guild3", BLOCKING_INDEX]]
    assert "SQL: CREATE INDEX ix_g_id ON guild.g (id);" in result.stdout  # the baseline held one of two
    assert "gamedb lint: 1 new finding in 1 revision (11 revisions of 4 schemas linted)" in result.stdout
    assert "gamedb lint: 4 baselined findings suppressed (.gamedb-lint-baseline.json)" in result.stdout


def test_a_baseline_written_for_one_schema_keeps_the_other_schemas_entries(lint, project):
    lint("--baseline")
    add_marker(revision_path(project, "chat", "chat4"), f"# gamedb: lint-ignore {BLOCKING_INDEX} -- empty table")

    rewritten = lint("-x", "schema=chat", "--baseline")
    result = lint("--json")

    entries = json.loads((project / ".gamedb-lint-baseline.json").read_text())["findings"]
    assert rewritten.code == 0, rewritten.output
    assert [(e["schema"], e["revision"]) for e in entries] == [
        ("chat", "chat3"),
        ("chat", "chat3"),
        ("guild", "guild3"),
    ]
    assert json.loads(result.stdout)["findings"] == []


def test_a_baseline_entry_no_finding_matches_any_more_is_named_as_stale(lint, project):
    lint("--baseline")
    add_marker(revision_path(project, "chat", "chat4"), f"# gamedb: lint-ignore {BLOCKING_INDEX} -- empty table")

    result = lint()

    assert result.code == 0, result.output
    assert result.stdout.splitlines() == [
        "gamedb lint: no new findings (11 revisions of 4 schemas linted)",
        "gamedb lint: 3 baselined findings suppressed (.gamedb-lint-baseline.json)",
        "gamedb lint: 1 baseline entry no longer found (fixed? gamedb lint --baseline rewrites the file)",
        "gamedb lint: 1 finding silenced by lint-ignore markers",
    ]


def test_a_baseline_file_named_on_the_command_line_is_read_instead_of_the_default(lint, project):
    lint("--baseline", "elsewhere.json")

    default = lint()
    named = lint("--baseline-file", "elsewhere.json")

    assert not (project / ".gamedb-lint-baseline.json").exists()
    assert default.code == 1
    assert named.code == 0, named.output
    assert "gamedb lint: 4 baselined findings suppressed (elsewhere.json)" in named.stdout


def test_no_baseline_reports_every_finding(lint):
    lint("--baseline")

    result = lint("--no-baseline")

    assert result.code == 1
    assert len(findings(result)) == 4


def test_since_lints_only_the_revisions_after_rev_in_revs_schema(lint):
    result = lint("--since", "chat3")

    assert result.code == 1
    assert [line.split(": ")[1:3] for line in findings(result)] == [["schema chat, revision chat4", BLOCKING_INDEX]]
    assert result.stdout.splitlines()[-1] == "gamedb lint: 1 finding in 1 revision (1 revision of 1 schema linted)"


def test_since_takes_a_unique_prefix_of_a_revision_id(gamedb):
    result = gamedb("lint", "--since", "accb90")  # auth's init revision

    assert result.code == 0, result.output
    assert result.stdout == "gamedb lint: no findings (1 revision of 1 schema linted)\n"


def test_since_given_per_schema_lints_each_schemas_new_revisions(lint):
    result = lint("--since", "chat4", "--since", "guild2")

    assert [line.split(": ")[1:3] for line in findings(result)] == [["schema guild, revision guild3", BLOCKING_INDEX]]
    assert result.stdout.splitlines()[-1] == "gamedb lint: 1 finding in 1 revision (1 revision of 2 schemas linted)"


def test_since_the_head_lints_nothing_and_passes(lint):
    result = lint("--since", "chat4")

    assert result.code == 0, result.output
    assert result.stdout == "gamedb lint: no findings (0 revisions of 1 schema linted)\n"


@pytest.mark.parametrize(
    ("args", "error"),
    [
        (
            ["--since", "chat9"],
            "--since 'chat9': no revision of the linted schemas (auth, chat, guild, inventory) has that id",
        ),
        (
            ["-x", "schema=chat", "--since", "guild2"],
            "--since 'guild2': no revision of the linted schemas (chat) has that id",
        ),
        (["--since", "chat3", "--since", "chat2"], "--since given twice for schema chat: chat3 and chat2"),
        (["--since", "chat"], "--since 'chat' is ambiguous: chat chat1, chat chat2, chat chat3, chat chat4"),
        (["--since", "chat3", "--baseline"], "--baseline records every revision's findings: drop --since"),
        (
            ["--baseline", "no/such/dir/b.json"],
            "lint baseline no/such/dir/b.json: cannot write it (No such file or directory)",
        ),
        (["--exclude", "no-such-rule"], "squawk failed: error: invalid value 'no-such-rule' for '--exclude <rule>'"),
    ],
)
def test_bad_lint_input_is_one_error_line(lint, project, args, error):
    result = lint(*args)

    assert result.code == 2
    assert result.stderr.startswith(f"gamedb: error: {error}")
    assert len(result.stderr.strip().splitlines()) == 1
    assert not (project / ".gamedb-lint-baseline.json").exists()


@pytest.mark.parametrize(
    ("content", "error"),
    [
        ("{not json", "not valid JSON (Expecting property name enclosed in double quotes: line 1 column 2 (char 1))"),
        (
            '{"findings": []}',
            'not a gamedb lint baseline (no "gamedb_lint_baseline": 1 and "findings" list);'
            " gamedb lint --baseline rewrites it",
        ),
        ('{"gamedb_lint_baseline": 1, "findings": [{"schema": "chat"}]}', "finding 1 lacks schema, revision or rule"),
        (
            '{"gamedb_lint_baseline": 1, "findings": [{"schema": "c", "revision": "r", "rule": "x", "count": 0}]}',
            "finding 1 has no positive count",
        ),
    ],
)
def test_an_unusable_baseline_is_one_error_line(lint, project, content, error):
    (project / ".gamedb-lint-baseline.json").write_text(content)

    result = lint()

    assert result.code == 2
    assert result.stdout == ""
    assert result.stderr == f"gamedb: error: lint baseline .gamedb-lint-baseline.json: {error}\n"
    assert len(result.stderr.strip().splitlines()) == 1


def test_a_missing_baseline_file_named_on_the_command_line_is_one_error_line(lint, project):
    result = lint("--baseline-file", "nowhere.json")

    assert result.code == 2
    assert result.stderr == "gamedb: error: lint baseline nowhere.json: cannot read it (No such file or directory)\n"


def test_a_baseline_that_is_a_directory_is_one_error_line(lint, project):
    (project / ".gamedb-lint-baseline.json").mkdir()

    result = lint()

    assert result.code == 2
    assert result.stderr == "gamedb: error: lint baseline .gamedb-lint-baseline.json: cannot read it (Is a directory)\n"


def test_lint_leaves_alembics_own_version_table_out(gamedb):
    result = gamedb("-x", "schema=auth", "lint", "--exclude", "prefer-bigint-over-int")

    assert "alembic_version" not in result.stdout
    assert result.stdout.count("prefer-text-field") == 3  # login, email, token_hash; not version_num


def test_lint_alone_passes_the_repos_services_under_the_repos_squawk_toml(gamedb):
    result = gamedb("lint")

    assert result.code == 0, result.output
    assert result.stdout == "gamedb lint: no findings (4 revisions of 2 schemas linted)\n"


def test_lint_reports_a_rule_exactly_when_the_projects_squawk_toml_does_not_exclude_it(project, database):
    squawk_toml = project / ".squawk.toml"

    def lint():
        return run_cli(["-x", "schema=auth", "lint"], url=database.url, cwd=project)

    squawk_toml.write_text('excluded_rules = ["prefer-text-field", "prefer-bigint-over-int"]\n')
    excluded = lint()
    squawk_toml.write_text('excluded_rules = ["prefer-bigint-over-int"]\n')
    reported = lint()

    assert excluded.code == 0, excluded.output
    assert "prefer-text-field" not in excluded.stdout
    assert reported.code == 1
    assert reported.stdout.count("prefer-text-field") == 3
    assert "prefer-bigint-over-int" not in reported.stdout


def test_lint_of_an_unknown_schema_is_one_line(gamedb):
    result = gamedb("-x", "schema=billing", "lint")

    assert result.code == 2
    assert result.stderr.strip() == "gamedb: error: unknown schema 'billing' (known schemas: auth, inventory)"


BOARD = [
    ("board1", [], []),
    (
        "board2",
        [
            "CREATE TABLE board.scores (player bigint PRIMARY KEY, points bigint)",
            "CREATE MATERIALIZED VIEW board.top AS SELECT player, points FROM board.scores",
            "CREATE UNIQUE INDEX top_key ON board.top (player)",
            "CREATE MATERIALIZED VIEW board.plain AS SELECT count(*) AS n FROM board.scores",
        ],
        [],
    ),
    # a plain refresh of a view with a unique index: readers wait; of one without: nothing better exists
    ("board3", ["REFRESH MATERIALIZED VIEW board.top", "REFRESH MATERIALIZED VIEW board.plain"], []),
    ("board4", ["REFRESH MATERIALIZED VIEW CONCURRENTLY board.top"], []),
]


def test_an_index_on_a_view_the_same_revision_creates_is_not_asked_for_concurrently(project, database, fleet):
    """squawk's exemption for a table made in the same file, extended to materialized views: what
    autogenerate writes for a `MaterializedView(..., unique_key=...)` lints clean."""
    later = ("board5", ["CREATE UNIQUE INDEX plain_key ON board.plain (n)"], [])  # plain exists before board5
    extra = fleet({"board": [*BOARD, later]})
    result = run_cli(["lint", "-x", "schema=board"], url=database.url, python_path=extra, cwd=project)

    assert result.code == 1, result.output
    assert [line.split(": ")[2] for line in findings(result)] == [
        "gamedb-refresh-without-concurrently",  # board3: top, then plain (which board5 gives a unique index)
        "gamedb-refresh-without-concurrently",
        BLOCKING_INDEX,  # board5: the index on a view an earlier revision made
    ]
    assert findings(result)[2].startswith(f"{shown('board', 'board5')}: schema board, revision board5: ")


def test_a_refresh_without_concurrently_of_a_view_with_a_unique_index_is_flagged(project, database, fleet):
    extra = fleet({"board": BOARD})
    result = run_cli(
        ["lint", "-x", "schema=board", "--exclude", BLOCKING_INDEX], url=database.url, python_path=extra, cwd=project
    )

    assert result.code == 1, result.output
    assert findings(result) == [
        f"{shown('board', 'board3')}: schema board, revision board3: gamedb-refresh-without-concurrently:"
        " REFRESH MATERIALIZED VIEW without CONCURRENTLY blocks every reader of top until it ends."
        " top has a unique index: use REFRESH MATERIALIZED VIEW CONCURRENTLY SQL: REFRESH MATERIALIZED VIEW board.top;"
    ]
    # a marker silences it like a squawk rule
    add_marker(
        revision_path(project, "board", "board3"),
        "# gamedb: lint-ignore gamedb-refresh-without-concurrently -- the board is read by nobody yet",
    )
    silenced = run_cli(
        ["lint", "-x", "schema=board", "--exclude", BLOCKING_INDEX], url=database.url, python_path=extra, cwd=project
    )
    assert silenced.code == 0, silenced.output
