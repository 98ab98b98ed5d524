"""The servers: `gamedb move` (a live schema to another server) and `gamedb server` (the embedded one)."""

from __future__ import annotations

import os
import sys
from argparse import Namespace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gamedb.cli.output import relative

if TYPE_CHECKING:
    from gamedb.discovery import SchemaInfo
    from gamedb.project import Project


def add_move_command(sub: Any) -> None:
    """move on gamedb's subparsers."""
    move = sub.add_parser("move", help="Move a live schema to another server (logical replication), then re-place it.")
    move.add_argument("schema", help="the schema to move")
    move.add_argument("--to", required=True, metavar="SERVER", help="the server's name (its URL: GAMEDB_URL_<SERVER>)")
    move.add_argument("--verify", action="store_true", help="compare a checksum of every table's rows too")
    move.add_argument(
        "--drop-source", action="store_true", help="drop the source schema (default: keep it renamed, read-only)"
    )
    move.set_defaults(gamedb_cmd=cmd_move)


def add_server_command(sub: Any) -> None:
    """server on gamedb's subparsers."""
    server = sub.add_parser("server", help="The embedded PostgreSQL (used when GAMEDB_URL is unset).")
    server.add_argument(
        "action",
        choices=["url", "start", "stop"],
        help="url: how to connect; start: start one (and print its URL alone, for GAMEDB_URL_<SERVER>); stop: stop it",
    )
    server.add_argument(
        "data_dir",
        nargs="?",
        metavar="DIR",
        help="start/stop: the server whose data is in DIR (default: the project's own, .gamedb)",
    )
    server.set_defaults(gamedb_cmd=cmd_server)


def cmd_move(options: Namespace, project: Project, schemas: dict[str, SchemaInfo]) -> int:
    """Move the schema, then say what moved, how long it took and what apps must do."""
    from gamedb.move import move_schema

    report = move_schema(
        project, schemas, options.schema, options.to, verify=options.verify, drop_source=options.drop_source
    )
    if report.cutover is None:  # an earlier run's cut-over, finished by this one
        return 0
    cut = report.cutover
    rows = sum(cut.rows.values())
    checked = "row counts and checksums" if cut.verified else "row counts"
    print(
        f"moved {report.schema} from {report.source} to {report.target}: {len(cut.rows)} table(s), {rows} rows "
        f"({checked} equal), {len(cut.sequences)} sequence(s) carried over"
    )
    print(
        f"time: {report.total_seconds:.1f} s in all, initial copy {report.copy_seconds:.1f} s, "
        f"writes paused {cut.write_pause_seconds * 1000:.0f} ms"
    )
    if report.logins:
        print(f"logins recreated on {report.target}: {', '.join(report.logins)}")
    if cut.source_left_as:
        print(f"source kept read-only as schema {cut.source_left_as} on {report.source} (drop it when satisfied)")
    else:
        print(f"source schema dropped on {report.source}")
    print(f"apps: new connections (service_engine({report.schema!r})) go to {report.target}; restart running ones")
    return 0


def cmd_server(options: Namespace, project: Project, schemas: dict[str, SchemaInfo]) -> int:
    """`server url`: how to connect (no secret printed); `server start [DIR]`: start an embedded server and
    print its URL alone; `server stop [DIR]`: stop one."""
    from gamedb.errors import CommandFailed, InvalidOption
    from gamedb.server import embedded
    from gamedb.server.urls import URL_ENV, has_secret, libpq_url, parse_url, resolve_url

    if options.data_dir is not None and options.action == "url":
        raise InvalidOption("server url takes no DIR (it names the project's server)")
    data_dir = project.data_dir if options.data_dir is None else Path(options.data_dir)
    if options.data_dir is not None and (not options.data_dir.strip() or (data_dir.exists() and not data_dir.is_dir())):
        raise InvalidOption(f"server {options.action}: {options.data_dir!r} is not a directory")
    if options.action == "start":  # a server of its own: GAMEDB_URL does not matter
        try:
            uri = embedded.embedded_libpq_uri(data_dir.resolve())
        except OSError as exc:  # the directory can't be made there (a missing or read-only parent)
            raise CommandFailed(f"server start: can't use {str(data_dir)!r}: {exc.strerror}") from None
        url = parse_url(uri, source="the embedded server")._replace(password=None)  # it has none: trust, local
        print(url.render_as_string(hide_password=False))
        return 0
    if options.action == "stop":
        if options.data_dir is None and os.environ.get(URL_ENV):
            print(f"{URL_ENV} is set: there is no embedded server to stop", file=sys.stderr)
            return 1
        stopped = embedded.stop_server(data_dir.resolve())
        print("embedded PostgreSQL stopped" if stopped else "embedded PostgreSQL was not running")
        return 0
    url = resolve_url(project)
    shown = relative(str(project.data_dir), project)
    source = URL_ENV if os.environ.get(URL_ENV) else f"embedded PostgreSQL, data in {shown}"
    print(f"database: {source}")
    print(f"connect:  psql '{libpq_url(url)}'")
    if has_secret(url):  # left out of the line above: psql asks for it, or reads PGPASSWORD / ~/.pgpass
        print(f"password: the one in {URL_ENV}, not printed: psql asks for it (or set PGPASSWORD, or use ~/.pgpass)")
    return 0
