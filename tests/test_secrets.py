"""Secrets never print: every way a URL can carry a password, on every command, good server or broken."""

from __future__ import annotations

from urllib.parse import quote, quote_plus

import pytest
from sqlalchemy import make_url

from conftest import run_cli
from gamedb.errors import InvalidDatabaseUrl
from gamedb.server.urls import libpq_url, mask_url, parse_url, redact

# a space (percent-encoded in a URL, as it must be) and a %: the spellings that broke masking before
SECRET = "gdb s3cret%Pw"
MARK = "s3cret"  # in every spelling of SECRET: raw, %-encoded, +-encoded


def with_secret(url: str, form: str, secret: str = SECRET) -> str:
    """`url` (no password) carrying `secret` in one of the ways a user may write it."""
    plain = make_url(url)._replace(password=None).render_as_string(hide_password=False)  # set() keeps ""
    separator = "&" if "?" in plain else "?"
    if form == "userinfo":
        user = make_url(url).username
        return plain.replace(f"://{user}@", f"://{user}:{quote(secret, safe='')}@", 1)
    if form == "query":
        return f"{plain}{separator}password={quote(secret, safe='')}"
    if form == "query-plus":
        return f"{plain}{separator}password={secret.replace('%', '%25').replace(' ', '+')}"
    if form == "sslpassword":
        return f"{plain}{separator}sslpassword={quote(secret, safe='')}"
    raise AssertionError(form)


FORMS = ["userinfo", "query", "query-plus", "sslpassword"]
COMMANDS = [
    ["server", "url"],
    ["status"],
    ["status", "--json"],
    ["check-all"],
    ["roles", "check"],
    ["roles", "apply"],
    ["roles", "login", "secrets_test_login", "--migrator"],
    ["roles", "login", "postgres", "--migrator"],
    ["-x", "schema=auth", "current"],
    ["-x", "schema=auth", "upgrade", "head"],
    ["upgrade-all", "--jobs", "1"],
    ["-x", "schema=auth", "downgrade", "base"],
]


@pytest.mark.parametrize("form", FORMS)
def test_mask_url_hides_the_password_in_every_spelling(form):
    url = with_secret("postgresql+psycopg://gameadmin@db.example:5432/game", form)

    masked = mask_url(url)

    assert MARK not in masked
    assert "***" in masked
    assert "db.example:5432/game" in masked


@pytest.mark.parametrize(
    "text",
    [
        "host=db.example password=gdbs3cret dbname=game",
        "host=db.example password = 'gdb s3cret' dbname=game",
        "postgresql://gameadmin:gdbs3cret@[::1/game",
        "postgresql://gameadmin:gdb s3cret@db.example:abc/game?password=s3cret2",
        "postgresql://gameadmin@db.example/game?sslpassword=gdbs3cret&password=s3cret",
    ],
)
def test_mask_url_scrubs_keyword_strings_and_urls_that_do_not_parse(text):
    assert MARK not in mask_url(text)


def test_libpq_url_keeps_a_socket_directory_readable_and_leaves_secrets_out():
    url = parse_url("postgresql://postgres:pw12@/game?host=/tmp/pg data&password=gdbs3cret&sslmode=prefer", source="X")

    assert libpq_url(url) == "postgresql://postgres@/game?host=/tmp/pg%20data&sslmode=prefer"


def test_redact_removes_every_spelling_of_the_configured_password(monkeypatch):
    monkeypatch.setenv("GAMEDB_URL", with_secret("postgresql://u@h/game", "userinfo"))

    line = redact(f"boom {SECRET} {quote(SECRET, safe='')} {quote_plus(SECRET)} {SECRET.replace(' ', '+')}")

    assert MARK not in line


@pytest.mark.parametrize(
    "raw",
    [
        "postgresql+psycopg://u:gdbs3cret@h:abc/game",
        "postgresql+psycopg://u:gdbs3cret@[::1/game",
        "postgresql+psycopg://u:gdbs3cret@h:70000/game",
        "postgresql+psycopg://u:gdbs3cret@h/",
        "postgresql+psycopg://u:gdbs3cret@h",
        "host=h password=gdbs3cret",
        "host=h password='gdbs3cret dbname=game",
        "mysql://u:gdbs3cret@h/game",
    ],
)
def test_an_unusable_url_is_refused_without_repeating_it(raw):
    with pytest.raises(InvalidDatabaseUrl) as refused:
        parse_url(raw)

    assert MARK not in str(refused.value)


def assert_no_secret(result, command):
    assert MARK not in result.output, (command, result.output)
    assert quote(SECRET, safe="") not in result.output
    assert "Traceback" not in result.output, (command, result.output)


@pytest.mark.parametrize("form", FORMS)
def test_no_command_prints_the_password_on_a_working_server(form, database, cli_in_process):
    url = with_secret(database.url, form)

    for command in COMMANDS:
        result = cli_in_process(command, url=url)

        assert_no_secret(result, command)
        if command[0] not in {"check-all", "roles"}:  # those may find drift or be refused (postgres)
            assert result.code == 0, (command, result.output)
    assert database.version_rows("auth") == []  # the commands did run: upgraded, then downgraded


BROKEN = {
    "refused": "postgresql+psycopg://gameadmin@127.0.0.1:1/game",
    "unknown host": "postgresql+psycopg://gameadmin@no-such-host.invalid:5432/game",
}


@pytest.mark.parametrize("server", sorted(BROKEN))
@pytest.mark.parametrize("form", FORMS)
def test_no_command_prints_the_password_when_the_server_is_unreachable(form, server, cli_in_process):
    url = with_secret(BROKEN[server], form)

    for command in COMMANDS:
        result = cli_in_process(command, url=url)

        assert_no_secret(result, command)
        assert result.code != 0 or command == ["server", "url"]
        if command != ["server", "url"]:
            assert result.stderr.strip().splitlines() == [result.stderr.strip()], (command, result.stderr)
            assert result.stderr.startswith("gamedb: error: cannot connect to"), (command, result.stderr)


def test_wrong_password_on_a_password_server_is_masked(database, cli_in_process):
    # a login that does not exist: refused whatever the server's auth method, with the password sent
    url = with_secret(make_url(database.url).set(username="no_such_login").render_as_string(False), "query")

    for command in (["status"], ["roles", "apply"], ["roles", "login", "x_login", "--migrator"]):
        result = cli_in_process(command, url=url)

        assert result.code != 0
        assert_no_secret(result, command)


def test_password_with_a_space_works_for_roles_apply_and_login_in_a_real_process(database):
    url = with_secret(database.url, "userinfo", "p w-s3cret")

    applied = run_cli(["roles", "apply"], url=url)
    login = run_cli(["roles", "login", "spaced_login", "--migrator"], url=url)

    assert applied.code == 0, applied.output
    assert login.code == 0, login.output
    for result in (applied, login):
        assert MARK not in result.output
        assert "p%20w" not in result.output


@pytest.mark.parametrize("form", FORMS)
def test_server_url_prints_a_line_psql_accepts_without_the_password(form, database, psql):
    import subprocess

    result = run_cli(["server", "url"], url=with_secret(database.url, form))
    assert result.code == 0, result.output
    assert_no_secret(result, ["server", "url"])
    assert "***" not in result.stdout
    [line] = [line for line in result.stdout.splitlines() if line.startswith("connect:")]
    target = line.split("psql ", 1)[1].strip("'")
    assert "password" in result.stdout.splitlines()[-1] and "PGPASSWORD" in result.stdout
    pasted = subprocess.run(
        [psql, "-X", "-At", target, "-c", "SELECT current_database()"], capture_output=True, text=True
    )
    assert pasted.returncode == 0 and pasted.stdout.strip() == database.name, pasted.stderr


def test_libpq_keyword_form_works_and_never_prints_its_password(database):
    url = make_url(database.url)
    keywords = " ".join(
        [f"dbname={url.database}", f"user={url.username}", "password='gdb s3cret'"]
        + [f"{key}={value}" for key, value in url.query.items()]
        + ([f"host={url.host}"] if url.host else [])
        + ([f"port={url.port}"] if url.port else [])
    )
    for command in (["-x", "schema=auth", "upgrade", "head"], ["status", "--no-drift"], ["server", "url"]):
        result = run_cli(command, url=keywords)
        assert result.code == 0, (command, result.output)
        assert_no_secret(result, command)
    assert database.version_rows("auth")
    assert make_url(parse_url(keywords)).database == database.name
