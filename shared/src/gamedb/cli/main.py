"""`gamedb`'s entry point: one command line parsed, dispatched to its handler, and any error turned
into one line on stderr and an exit code (a traceback only with --debug or -v)."""

from __future__ import annotations

import sys
from argparse import Namespace
from collections.abc import Sequence

from gamedb.cli.alembic_commands import run_alembic_command
from gamedb.cli.arguments import hoist_x_options, schema_from_x
from gamedb.cli.lint import cmd_lint
from gamedb.cli.parser import Handler, build_parser
from gamedb.cli.schema_upkeep import cmd_partitions, cmd_repair_checksums, cmd_squash
from gamedb.errors import GamedbError, InvalidOption, user_code_error

# Alembic, SQLAlchemy and psycopg are imported only by the paths that use them: `gamedb --help`, a
# gamedb command's argument error and `gamedb schemas` never pay for Alembic.


def main(argv: Sequence[str] | None = None) -> None:
    """Console entry point."""
    sys.exit(run(sys.argv[1:] if argv is None else argv))


def run(argv: Sequence[str]) -> int:
    """Run one command line; return its exit code. User errors are one line on stderr."""
    args = hoist_x_options(list(argv))
    debug = bool({"--debug", "-v", "--verbose"} & set(args))
    try:
        return dispatch(args)
    except GamedbError as exc:
        if debug:
            raise
        from gamedb.server.connections import error_line

        print(f"gamedb: error: {error_line(exc)}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("gamedb: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `gamedb ... --sql | head`: the reader left, nothing to report
        sys.stderr.close()
        return 0
    except Exception as exc:  # no input may end in a traceback: a failure in a service's code names its file and line
        if debug:
            raise
        print(f"gamedb: error: {failure_line(exc)}", file=sys.stderr)
        return 1


def failure_line(exc: Exception) -> str:
    """An unexpected exception as one masked line: a database error, a SQLAlchemy error or the service's code."""
    from sqlalchemy.exc import DBAPIError, SQLAlchemyError

    from gamedb.server.connections import db_error_line, error_line
    from gamedb.server.urls import redact

    psycopg_error = getattr(sys.modules.get("psycopg"), "Error", None)
    if isinstance(exc, DBAPIError) or (psycopg_error is not None and isinstance(exc, psycopg_error)):
        return f"database: {db_error_line(exc)}"
    if isinstance(exc, SQLAlchemyError):
        return error_line(exc)
    return f"{redact(user_code_error(exc))} (-v shows the traceback)"


def dispatch(argv: list[str]) -> int:
    """Parse the line, find the project and its schemas, and hand them to the command's handler."""
    options = build_parser(argv).parse_args(argv)
    if not hasattr(options, "cmd") and not hasattr(options, "gamedb_cmd"):
        print("gamedb: error: no command given (try gamedb --help)", file=sys.stderr)
        return 2
    refuse_x_on_fleet_command(options)
    from gamedb.discovery import discover_schemas
    from gamedb.project import find_project

    project = find_project(ini=options.config[0] if options.config else None)
    schemas = discover_schemas()
    if hasattr(options, "gamedb_cmd"):
        handler: Handler = options.gamedb_cmd
        return handler(options, project, schemas)
    return run_alembic_command(options, project, schemas)


def refuse_x_on_fleet_command(options: Namespace) -> None:
    """Commands over every schema take no -x: silently ignoring `-x schema=S` would act on all of them."""
    handler = getattr(options, "gamedb_cmd", None)
    if (
        handler is None
        or not options.x
        or handler in (cmd_lint, cmd_repair_checksums, cmd_partitions, cmd_squash)  # these take -x
    ):
        return
    schema_from_x(options.x)  # an unknown key gets its own message
    command = handler.__name__.removeprefix("cmd_").replace("_", "-")
    hint = " (roles apply/sql take --schema NAME)" if command == "roles" else ""
    raise InvalidOption(f"`gamedb {command}` works on every schema and takes no -x{hint}")
