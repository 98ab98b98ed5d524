"""[tool.gamedb.placement]: read, validated, and rewritten one line at a time (no server)."""

from __future__ import annotations

from pathlib import Path

import pytest

from gamedb.errors import InvalidPlacement
from gamedb.project import Project
from gamedb.server.placement import read_placement, server_url, url_variable, write_placement

pytestmark = pytest.mark.unit

BASE = """[project]
name = "x"

[tool.gamedb.placement]
# hot schemas
inventory = "hot"   # moved in 2026

[tool.ruff]
line-length = 120
"""


def project(tmp_path: Path, text: str) -> Project:
    (tmp_path / "pyproject.toml").write_text(text)
    return Project(tmp_path)


def test_read_and_unknown_schema(tmp_path: Path) -> None:
    p = project(tmp_path, BASE)
    assert read_placement(p) == {"inventory": "hot"}
    assert read_placement(p, known=["inventory", "auth"]) == {"inventory": "hot"}
    with pytest.raises(InvalidPlacement, match="places 'inventory' on 'hot', but no installed service declares"):
        read_placement(p, known=["auth"])
    assert read_placement(Project(tmp_path / "nowhere")) == {}


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ('inventory = "Hot"', "invalid server name 'Hot'"),
        ('inventory = "hot-1"', "invalid server name 'hot-1'"),
        ("inventory = 3", "the server must be a quoted name"),
        ('inventory = "hot"\ninventory = "cold"', "can't be read"),
    ],
)
def test_bad_lines_are_one_clear_error(tmp_path: Path, line: str, message: str) -> None:
    p = project(tmp_path, f"[tool.gamedb.placement]\n{line}\n")
    with pytest.raises(InvalidPlacement, match=message):
        read_placement(p)


def test_rewrite_keeps_everything_else(tmp_path: Path) -> None:
    p = project(tmp_path, BASE)
    write_placement(p, "inventory", "cold")
    assert (tmp_path / "pyproject.toml").read_text() == BASE.replace('"hot"   # moved', '"cold"   # moved')
    write_placement(p, "auth", "cold")
    assert read_placement(p) == {"inventory": "cold", "auth": "cold"}
    assert "[tool.ruff]\nline-length = 120\n" in (tmp_path / "pyproject.toml").read_text()
    write_placement(p, "inventory", "default")  # back on default: the line goes
    assert read_placement(p) == {"auth": "cold"}
    assert "inventory" not in (tmp_path / "pyproject.toml").read_text()


def test_write_adds_the_table_when_missing(tmp_path: Path) -> None:
    p = project(tmp_path, '[project]\nname = "x"')
    write_placement(p, "inventory", "hot")
    assert (tmp_path / "pyproject.toml").read_text() == (
        '[project]\nname = "x"\n\n[tool.gamedb.placement]\ninventory = "hot"\n'
    )


def test_server_urls_come_from_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    p = project(tmp_path, BASE)
    assert url_variable("hot") == "GAMEDB_URL_HOT"
    monkeypatch.delenv("GAMEDB_URL_HOT", raising=False)
    with pytest.raises(InvalidPlacement, match="server 'hot' has no URL: set GAMEDB_URL_HOT"):
        server_url(p, "hot")
    monkeypatch.setenv("GAMEDB_URL_HOT", "mysql://u:secretpw@h/db")
    with pytest.raises(Exception, match="GAMEDB_URL_HOT must point to PostgreSQL") as raised:
        server_url(p, "hot")
    assert "secretpw" not in str(raised.value)
    monkeypatch.setenv("GAMEDB_URL_HOT", "postgresql://u:secretpw@h:5433/game")
    assert server_url(p, "hot").port == 5433


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # the case: a quoted key for the schema being moved (a line-based edit left both lines)
        ('[tool.gamedb.placement]\n"auth" = "default"  # on the shared server\n', '"auth" = "hot"  # on the shared'),
        ("[tool.gamedb.placement]\n'auth' = 'default'\n", "'auth' = \"hot\""),
        ('[tool.gamedb]\nplacement = { inventory = "cold", "auth" = "default" }\n', '"auth" = "hot"'),
        ('[tool]\ngamedb.placement.auth = "default"\n', 'gamedb.placement.auth = "hot"'),
        ('[tool.gamedb.placement]\n# a comment naming auth = "x"\ninventory = "cold"\n', 'auth = "hot"'),
    ],
)
def test_rewrite_handles_any_valid_toml_form(tmp_path: Path, text: str, expected: str) -> None:
    p = project(tmp_path, '[project]\nname = "x"\n\n' + text + "\n[tool.ruff]\nline-length = 120\n")
    before = read_placement(p)
    write_placement(p, "auth", "hot")
    written = (tmp_path / "pyproject.toml").read_text()
    assert expected in written, written
    assert read_placement(p) == {**before, "auth": "hot"}
    assert written.startswith('[project]\nname = "x"\n') and written.endswith("[tool.ruff]\nline-length = 120\n")
    if "comment" in text:
        assert '# a comment naming auth = "x"' in written
    write_placement(p, "auth", "default")  # back on default: the key goes, the rest stays
    assert read_placement(p) == {k: v for k, v in before.items() if k != "auth"}
    assert 'auth = "hot"' not in (tmp_path / "pyproject.toml").read_text()


def test_a_placement_that_is_not_a_table_is_refused_and_the_file_kept(tmp_path: Path) -> None:
    p = project(tmp_path, '[tool.gamedb]\nplacement = "hot"\n')
    with pytest.raises(InvalidPlacement, match="'placement' is not a table"):
        write_placement(p, "auth", "hot")
    assert (tmp_path / "pyproject.toml").read_text() == '[tool.gamedb]\nplacement = "hot"\n'


def test_rewrites_at_once_lose_no_line(tmp_path: Path) -> None:
    """Two moves of different schemas finishing together: each rewrite sees the other's line."""
    import threading

    p = project(tmp_path, BASE)
    names = [f"s{i}" for i in range(12)]
    threads = [threading.Thread(target=write_placement, args=(p, name, "hot")) for name in names]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert read_placement(p) == {"inventory": "hot", **dict.fromkeys(names, "hot")}
