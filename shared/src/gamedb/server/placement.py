"""Which server each schema lives on: `[tool.gamedb.placement]` in the root pyproject.toml.

    [tool.gamedb.placement]
    inventory = "hot"        # schema = server name; unlisted schemas are on server "default"

Server `default` is GAMEDB_URL (or the embedded server); server NAME is the environment variable
`GAMEDB_URL_<NAME upper-cased>`, so secrets stay out of the repo. The file is the one place a
schema's server is written down: every command, `migrations/env.py` and `service_engine` route by it,
and `gamedb move` rewrites its line.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import URL

from gamedb.errors import InvalidPlacement
from gamedb.project import Project
from gamedb.server.urls import URL_ENV, parse_url, resolve_url

DEFAULT_SERVER = "default"
PYPROJECT = "pyproject.toml"
TABLE_HEADER = "[tool.gamedb.placement]"
SERVER_NAME_PATTERN = re.compile(r"[a-z][a-z0-9_]{0,39}")


@dataclass(frozen=True)
class Route:
    """Where one schema lives: the server's name and URL."""

    server: str
    url: URL


def url_variable(server: str) -> str:
    """The environment variable holding server `server`'s URL (GAMEDB_URL for `default`)."""
    return URL_ENV if server == DEFAULT_SERVER else f"{URL_ENV}_{server.upper()}"


def validate_server_name(name: object) -> str:
    if not isinstance(name, str) or not SERVER_NAME_PATTERN.fullmatch(name):
        raise InvalidPlacement(
            f"invalid server name {name!r}: must match ^[a-z][a-z0-9_]{{0,39}}$ (it becomes {URL_ENV}_<NAME>)"
        )
    return name


def read_placement(project: Project, known: Iterable[str] | None = None) -> dict[str, str]:
    """schema -> server name for every schema the file lists (validated); unlisted ones are on `default`.

    With `known` (every installed schema, never only those a command works on), a listed schema no
    installed service declares is refused: a typo would otherwise leave the real schema on `default`
    and send its migrations to the wrong server.
    """
    path = project.root / PYPROJECT
    if not path.is_file():
        return {}
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise InvalidPlacement(f"{PYPROJECT} can't be read: {exc}") from None
    table = data.get("tool", {}).get("gamedb", {}).get("placement", {})
    if not isinstance(table, dict):
        raise InvalidPlacement(f'{TABLE_HEADER} in {PYPROJECT} must be a table of schema = "server" lines')
    known_names = set(known) if known is not None else None
    placement: dict[str, str] = {}
    for schema, server in table.items():
        if not isinstance(server, str):
            raise InvalidPlacement(f"{TABLE_HEADER} {schema} = {server!r}: the server must be a quoted name")
        validate_server_name(server)
        if known_names is not None and schema not in known_names:
            raise InvalidPlacement(
                f"{TABLE_HEADER} places {schema!r} on {server!r}, but no installed service declares that schema"
            )
        placement[schema] = server
    return placement


def server_url(project: Project, server: str) -> URL:
    """The URL of server `server`: GAMEDB_URL (or the embedded server) for `default`, else GAMEDB_URL_<NAME>."""
    if server == DEFAULT_SERVER:
        return resolve_url(project)
    variable = url_variable(validate_server_name(server))
    raw = os.environ.get(variable, "").strip()
    if not raw:
        raise InvalidPlacement(f"server {server!r} has no URL: set {variable} (e.g. postgresql://user@host:5432/game)")
    return parse_url(raw, source=variable)


def installed_schema_names() -> list[str]:
    """Every schema an installed service declares: what a placement line is checked against."""
    from gamedb.discovery import discover_schemas

    return list(discover_schemas())


def route_schemas(project: Project, names: Iterable[str]) -> dict[str, Route]:
    """schema -> Route for each of `names`; each server's URL is resolved once.

    The placement table is checked against every installed schema, not against `names`: a command on
    one schema must not fail because the table (rightly) places another.
    """
    names = list(names)
    placement = read_placement(project, installed_schema_names())
    urls: dict[str, URL] = {}
    routes = {}
    for name in names:
        server = placement.get(name, DEFAULT_SERVER)
        if server not in urls:
            urls[server] = server_url(project, server)
        routes[name] = Route(server, urls[server])
    return routes


def schema_route(project: Project, schema: str) -> Route:
    """The server of one schema."""
    return route_schemas(project, [schema])[schema]


def by_server(routes: Mapping[str, Route]) -> dict[str, list[str]]:
    """server name -> its schemas, in the order of `routes` (the default server first)."""
    groups: dict[str, list[str]] = {}
    for schema, route in sorted(routes.items(), key=lambda item: item[1].server != DEFAULT_SERVER):
        groups.setdefault(route.server, []).append(schema)
    return groups


def servers_of(project: Project, names: Iterable[str], known: Iterable[str]) -> dict[str, list[str]]:
    """server name -> those of `names` the file places on it, in the order of `names`; no URL is read
    (for SQL printed for a DBA). `known`: every installed schema, as for read_placement."""
    placement = read_placement(project, known=known)
    groups: dict[str, list[str]] = {}
    for name in names:
        groups.setdefault(placement.get(name, DEFAULT_SERVER), []).append(name)
    return groups


def write_placement(project: Project, schema: str, server: str) -> Path:
    """Record that `schema` lives on `server`: set (or add, or for `default` remove) its key.

    The file is edited as TOML (tomlkit keeps every other key, comment, quoting and layout as it
    was), whatever form the table takes: `[tool.gamedb.placement]`, quoted keys, an inline table,
    dotted keys. Returns the file written.
    """
    validate_server_name(server)
    with _rewriting(project.root):
        return _rewrite(project, schema, server)


@contextmanager
def _rewriting(directory: Path) -> Iterator[None]:
    """One rewrite of the placement at a time (two moves of different schemas finishing together
    would each write the file they read, and one line would be lost): an exclusive flock on the
    project directory, which leaves no file behind. Where flock doesn't exist, no lock."""
    try:
        import fcntl
    except ImportError:  # not POSIX
        yield
        return
    fd = os.open(directory, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock


def _rewrite(project: Project, schema: str, server: str) -> Path:
    import tomlkit
    from tomlkit.exceptions import TOMLKitError

    path = project.root / PYPROJECT
    text = path.read_text(encoding="utf-8") if path.is_file() else ""
    if text and not text.endswith("\n"):
        text += "\n"
    try:
        document = tomlkit.parse(text)
        placement = _placement_table(document, create=server != DEFAULT_SERVER)
        if placement is not None:
            if server != DEFAULT_SERVER:
                placement[schema] = server
            elif schema in placement:
                del placement[schema]
        new_text = tomlkit.dumps(document)
    except (TOMLKitError, TypeError, ValueError) as exc:
        raise InvalidPlacement(f"{PYPROJECT} can't be rewritten: {exc}") from None
    path = path.resolve()  # a symlinked pyproject.toml: rewrite the file it points to, keep the link
    tmp = path.with_suffix(".toml.gamedb-tmp")
    tmp.write_text(new_text, encoding="utf-8")
    os.replace(tmp, path)  # a reader sees the old file or the new one, never half of it
    if read_placement(project).get(schema, DEFAULT_SERVER) != server:  # the edit must read back as meant
        raise InvalidPlacement(f"could not record {schema} = {server!r} in {path}: edit {TABLE_HEADER} by hand")
    return path


def _placement_table(document: Any, *, create: bool) -> Any:
    """The `tool.gamedb.placement` table of a tomlkit document (made when missing and `create`), else None."""
    import tomlkit

    node = document
    for depth, key in enumerate(("tool", "gamedb", "placement")):
        child = node.get(key)
        if child is None:
            if not create:
                return None
            if depth == 0 and document.body and not tomlkit.dumps(document).endswith("\n\n"):
                document.add(tomlkit.nl())  # a blank line before the new table, as a person would write it
            child = tomlkit.table(is_super_table=key != "placement")
            node[key] = child
            child = node[key]
        if not isinstance(child, Mapping):
            raise InvalidPlacement(f"{TABLE_HEADER} in {PYPROJECT}: {key!r} is not a table")
        node = child
    return node
