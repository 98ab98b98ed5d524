"""`gamedb lint`: squawk over the SQL each schema's revisions would run."""

from __future__ import annotations

import shutil

from conftest import REPO, run_cli

RISKY = [
    ("chat1", [], []),
    ("chat2", ["CREATE TABLE chat.t (id bigint PRIMARY KEY, x text)"], ["DROP TABLE chat.t"]),
    ("chat3", ["CREATE INDEX ix_t_x ON chat.t (x)"], ["DROP INDEX chat.ix_t_x"]),  # on a live table: blocks writes
]


def test_lint_flags_a_blocking_index_in_the_schemas_own_file(gamedb, fleet):
    extra = fleet({"chat": RISKY})

    result = gamedb("-x", "schema=chat", "lint", "--reporter", "gcc", extra=extra)

    assert result.code == 1
    assert "chat.chat3.sql:" in result.stdout and "chat.chat2.sql" not in result.stdout
    assert "require-concurrent-index-creation" in result.stdout
    assert "auth." not in result.stdout


def test_lint_leaves_alembics_own_version_table_out(gamedb):
    result = gamedb("-x", "schema=auth", "lint", "--reporter", "gcc", "--exclude", "prefer-bigint-over-int")

    assert "alembic_version" not in result.stdout
    assert result.stdout.count("prefer-text-field") == 3  # login, email, token_hash; not version_num


def test_lint_alone_passes_the_repos_services_under_the_repos_squawk_toml(gamedb):
    result = gamedb("lint")

    assert result.code == 0, result.output


def test_lint_reports_a_rule_exactly_when_the_projects_squawk_toml_does_not_exclude_it(tmp_path, database):
    project = tmp_path / "repo"  # a monorepo root of its own: alembic.ini, migrations/, .squawk.toml
    project.mkdir()
    shutil.copy(REPO / "alembic.ini", project / "alembic.ini")
    (project / "migrations").symlink_to(REPO / "migrations")
    squawk_toml = project / ".squawk.toml"

    def lint():
        return run_cli(["-x", "schema=auth", "lint", "--reporter", "gcc"], url=database.url, cwd=project)

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
