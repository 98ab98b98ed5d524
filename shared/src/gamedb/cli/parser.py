"""gamedb's argument parser: its own commands, each declared by the module that runs it, on Alembic's
own parser when the line names an Alembic command. Imports no Alembic for gamedb's commands and
`--help` (see tests/test_cli_startup.py)."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from importlib.metadata import version
from typing import TYPE_CHECKING, Any

from gamedb.cli import fleet, lint, roles, scaffolding, schema_upkeep, servers
from gamedb.cli.arguments import subcommand

if TYPE_CHECKING:
    from argparse import Namespace

    from gamedb.discovery import SchemaInfo
    from gamedb.project import Project

# Alembic's commands, known without importing Alembic (tests keep this equal to Alembic's parser).
ALEMBIC_COMMANDS = (
    "branches",
    "check",
    "current",
    "downgrade",
    "edit",
    "ensure_version",
    "heads",
    "history",
    "init",
    "list_templates",
    "merge",
    "revision",
    "show",
    "stamp",
    "upgrade",
)
GAMEDB_COMMANDS = (
    "schemas",
    "status",
    "upgrade-all",
    "check-all",
    "roles",
    "lint",
    "new-service",
    "server",
    "move",
    "repair-checksums",
    "plan",
    "report",
    "partitions",
    "squash",
)


# What a gamedb command's `gamedb_cmd` default is: the handler that runs it.
Handler = Callable[["Namespace", "Project", "dict[str, SchemaInfo]"], int]


def build_parser(args: list[str]) -> argparse.ArgumentParser:
    """gamedb's commands, on Alembic's own parser when the line names an Alembic command (or a typo)."""
    command = subcommand(args)
    if command is None or command in GAMEDB_COMMANDS:
        parser = argparse.ArgumentParser(
            prog="gamedb",
            description="Schema-per-service PostgreSQL with Alembic.",
            epilog=f"Alembic commands (gamedb COMMAND --help): {', '.join(ALEMBIC_COMMANDS)}",
        )
        parser.add_argument(
            "--version", action="version", version=f"gamedb {version('gamedb')} (alembic {version('alembic')})"
        )
        parser.add_argument("-c", "--config", action="append", help="Alternate config file (alembic.ini)")
        parser.add_argument("-n", "--name", default="alembic", help="Name of the section in the .ini file")
        parser.add_argument("-x", action="append", help="-x schema=NAME: the schema a command works on")
        parser.add_argument("--raiseerr", action="store_true", help="Raise a full stack trace on error")
        parser.add_argument("-q", "--quiet", action="store_true", help="Do not log to std output.")
        sub = parser.add_subparsers()
    else:
        from alembic.config import CommandLine

        cli = CommandLine(prog="gamedb")
        parser, sub = cli.parser, cli.subparsers
    parser.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    parser.add_argument(
        "-v", "--verbose", action="store_true", help="show Alembic's progress and comparison notes, and tracebacks"
    )
    add_gamedb_commands(sub)
    describe_commands(sub)
    return parser


# What each command's --help says about -x schema=NAME (the commands not named here need it).
SCOPE_HINTS = {
    **dict.fromkeys(
        ("heads", "history", "branches", "show"),
        "Without -x it reads every schema's revisions; with -x schema=NAME only that schema's.",
    ),
    **dict.fromkeys(("init", "list_templates"), "Takes no -x (not about a schema)."),
    "revision": "Needs -x schema=NAME (before or after the command): the file lands in that schema's versions "
    "directory; a schema's first revision gets the branch label NAME itself.",
    **dict.fromkeys(
        ("schemas", "status", "upgrade-all", "check-all"), "Works on every schema (and server); takes no -x."
    ),
    "roles": "Works on every schema; takes no -x (apply and sql take --schema NAME, login --schema NAME).",
    "lint": "With -x schema=NAME only that schema's revisions; without, every schema's.",
    "new-service": "Takes no -x: the new schema's name is the argument.",
    "server": "Takes no -x.",
    "move": "Takes no -x: the schema is the argument.",
    "repair-checksums": "Needs -x schema=NAME.",
}
# gamedb's own meaning where it replaces Alembic's command of that name
SUMMARIES = {"check": "Compare the schema's models with its database: one line per difference, exit 1 on any"}
SCOPED_HINT = "Needs -x schema=NAME (before or after the command): works on that schema only, on its server."


def describe_commands(sub: Any) -> None:
    """Every command's --help starts with what it does and whether it needs -x schema=NAME (Alembic's
    own commands say nothing about -x, and argparse shows a subcommand's help only in the list)."""
    helps = {action.dest: action.help for action in sub._choices_actions}
    for name, command in sub.choices.items():
        summary = (SUMMARIES.get(name) or helps.get(name) or "").strip()
        if summary and not summary.endswith("."):
            summary += "."
        command.description = f"{summary} {SCOPE_HINTS.get(name, SCOPED_HINT)}".strip()


def add_gamedb_commands(sub: Any) -> None:
    """gamedb's own subcommands on a parser's subparsers, in the order --help lists them."""
    fleet.add_commands(sub)  # schemas, status, upgrade-all, plan, report, check-all
    roles.add_commands(sub)
    lint.add_commands(sub)
    scaffolding.add_commands(sub)  # new-service
    servers.add_move_command(sub)
    schema_upkeep.add_commands(sub)  # repair-checksums, partitions, squash
    servers.add_server_command(sub)
