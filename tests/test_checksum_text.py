"""The text a revision's checksum is taken of (gamedb.migrate.checksums.normalized_text) is the same
whichever way it is found: the parser answers whether a file is Python where no line has whitespace to
strip, the tokenizer everywhere else, and a checksum recorded by either must equal the other's."""

from __future__ import annotations

import io
import tokenize
from pathlib import Path

import alembic
import psycopg
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import REPO
from gamedb.migrate.checksums import normalized_text


def tokenized_text(data: bytes) -> bytes:
    """normalized_text as it was first written, for text with no trailing whitespace on any line: the
    tokenizer decides whether it is Python, and Python's last newlines go."""
    decoded = data.decode("utf-8-sig")
    lines = decoded.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    assert all(line == line.rstrip(" \t\f\v") for line in lines), "only text without trailing whitespace"
    source = "\n".join(lines)
    try:
        for _ in tokenize.generate_tokens(io.StringIO(source).readline):
            pass
    except (tokenize.TokenError, SyntaxError):
        return source.encode("utf-8")
    return source.rstrip("\n").encode("utf-8")


def variants(data: bytes) -> list[bytes]:
    """The file, and what editors, git and mistakes make of it."""
    return [
        data,
        data.replace(b"\n", b"\r\n"),
        b"\xef\xbb\xbf" + data,
        data + b"\n\n\n",
        data.rstrip(b"\n"),
        data + b'\nx = """never closed\n',  # neither parses nor tokenizes
        data + b"\nx = (1,\n",  # an open bracket at the end
        data + b"\nif True:\n        a = 1\n    b = 2\n",  # a dedent to no level: the tokenizer refuses it too
        data + b"\nx = = 1\n",  # tokenizes, doesn't parse
        data + b"\nx = '\\d'\n",  # an invalid escape: a SyntaxWarning, still Python
    ]


def python_files() -> list[Path]:
    roots = [REPO / "services", REPO / "migrations", REPO / "tests" / "material", Path(alembic.__file__).parent]
    roots.append(Path(psycopg.__file__).parent)
    return sorted(path for root in roots for path in root.rglob("*.py") if "__pycache__" not in path.parts)


def without_trailing_whitespace(data: bytes) -> bytes:
    return b"\n".join(line.rstrip(b" \t\f\v") for line in data.split(b"\n"))


def test_every_python_file_at_hand_normalizes_as_the_tokenizer_alone_had_it():
    files = python_files()
    assert len(files) > 150  # services' revisions, the corpus, alembic's and psycopg's own sources
    for path in files:
        data = without_trailing_whitespace(path.read_bytes())
        assert normalized_text(data) == tokenized_text(data), path


def test_the_projects_files_as_editors_git_and_mistakes_leave_them_normalize_as_the_tokenizer_alone_had_them():
    # revisions, models, the public corpus's smaller files (each variant costs a whole file's tokenizing)
    files = [path for path in python_files() if REPO in path.parents and path.read_bytes().count(b"\n") < 300]
    assert len(files) > 20
    for path in files:
        for data in variants(without_trailing_whitespace(path.read_bytes())):
            assert normalized_text(data) == tokenized_text(data), f"{path} ({data[-40:]!r})"


FRAGMENTS = [
    "x = 1",
    "def f():",
    "    return 2",
    "    pass",
    "class C:",
    '"""doc',
    'line"""',
    "'''",
    "s = '''a",
    "b'''",
    "y = (",
    ")",
    "z = [1,",
    "2]",
    "\\",
    "f'{x}'",
    "if x:",
    "  a = 1",
    "        b = 2",
    "# comment",
    "",
    "\t",
    "x = = 1",
    "'unterminated",
    "@decorator",
    "lambda: 0",
]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(FRAGMENTS), max_size=12), st.sampled_from(["\n", "\r\n"]), st.integers(0, 3))
def test_drawn_line_soups_normalize_as_the_tokenizer_alone_had_them(lines, ending, blank_lines_after):
    data = (ending.join(lines) + ending * blank_lines_after).encode()
    data = without_trailing_whitespace(data.replace(b"\t", b"")) if b"\t" in data else data
    assert normalized_text(data) == tokenized_text(data)
