"""`gamedb`: every Alembic command scoped to one schema, plus whole-database commands.

This module parses and dispatches; the work is done by the library modules it calls.
"""

from __future__ import annotations

import argparse
import getpass
import json
import os
import sys
from argparse import Namespace
from collections.abc import Callable, Sequence
from importlib.metadata import version
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gamedb.errors import (
    CommandFailed,
    GamedbError,
    InvalidOption,
    MigrationFailed,
    MissingSchemaArgument,
    user_code_error,
)

if TYPE_CHECKING:
    from gamedb.discovery import SchemaInfo
    from gamedb.fleet import DatabaseStatus, UpgradeReport
    from gamedb.project import Project
    from gamedb.server.placement import Route

# Alembic, SQLAlchemy and psycopg are imported only by the paths that use them: `gamedb --help`, a
# gamedb command's argument error and `gamedb schemas` never pay for Alembic.

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
# Top-level options that take a value (to find the subcommand without parsing).
_VALUE_OPTIONS = frozenset({"-c", "--config", "-n", "--name", "-x"})

# Alembic commands that only read revision files: without a schema they cover every service.
UNSCOPED_COMMANDS = frozenset({"init", "list_templates", "heads", "history", "branches", "show"})

Handler = Callable[[Namespace, "Project", "dict[str, SchemaInfo]"], int]


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


def hoist_x_options(argv: list[str]) -> list[str]:
    """Move every `-x VALUE` to the front, so `-x` may follow the subcommand as the seed writes it."""
    hoisted: list[str] = []
    rest: list[str] = []
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg == "--":
            rest.extend(argv[i:])
            break
        if arg == "-x" and i + 1 < len(argv):
            hoisted += ["-x", argv[i + 1]]
            i += 2
            continue
        if arg.startswith("-x") and len(arg) > 2:
            hoisted += ["-x", arg[2:]]
        else:
            rest.append(arg)
        i += 1
    return hoisted + rest


def subcommand(args: list[str]) -> str | None:
    """The command word of a command line (the first argument that is neither an option nor its value)."""
    skip = False
    for arg in args:
        if skip:
            skip = False
        elif arg in _VALUE_OPTIONS:
            skip = True
        elif arg == "--":
            return None
        elif not arg.startswith("-"):
            return arg
    return None


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
    """gamedb's own subcommands on a parser's subparsers."""

    schemas = sub.add_parser("schemas", help="List the schemas the installed services declare.")
    schemas.add_argument("--json", action="store_true", help="one JSON array instead of a table")
    schemas.add_argument(
        "--changed-since",
        metavar="REF",
        help="only the schemas whose service folder changed since git REF (all when shared files changed)",
    )
    schemas.set_defaults(gamedb_cmd=cmd_schemas)

    status = sub.add_parser("status", help="Every schema: current, head, pending revisions, drift; and orphans.")
    status.add_argument("--json", action="store_true", help="one JSON object instead of a table")
    status.add_argument("--check", action="store_true", help="exit 1 when anything is pending or drifting")
    status.add_argument(
        "--no-drift", action="store_true", help="skip comparing models with the database: one query per server"
    )
    status.set_defaults(gamedb_cmd=cmd_status)

    upgrade = sub.add_parser("upgrade-all", help="Upgrade every schema to its head, in depends_on order.")
    upgrade.add_argument("--sql", action="store_true", help="print the SQL plan (from an empty database)")
    upgrade.add_argument("--sql-dir", metavar="DIR", help="write the SQL plan as DIR/<server>.sql, one file per server")
    upgrade.add_argument(
        "--jobs",
        type=int,
        default=max(1, min(4, os.cpu_count() or 1)),
        help="schemas upgraded at once on each server (default: cores, at most 4)",
    )
    upgrade.add_argument(
        "--quiet", dest="no_progress", action="store_true", help="no progress on stderr (live line or plain lines)"
    )
    upgrade.set_defaults(gamedb_cmd=cmd_upgrade_all)

    plan = sub.add_parser(
        "plan", help="What upgrade-all would do now: SQL from each schema's current revision, locks, lint."
    )
    plan.add_argument("--format", choices=["text", "markdown", "json"], default="text", help="how to print it")
    plan.add_argument(
        "--sql-dir", metavar="DIR", help="also write DIR/<server>.sql: the pending revisions, for psql -f"
    )
    plan.add_argument("--schema", action="append", metavar="NAME", help="show only this schema (repeat for more)")
    plan.set_defaults(gamedb_cmd=cmd_plan)

    report = sub.add_parser(
        "report", help="Every schema: state, drift, checksums, roles, lint; --html FILE for a page."
    )
    report.add_argument("--html", metavar="FILE", help="write one self-contained HTML page (picture, table, chains)")
    report.add_argument("--format", choices=["text", "markdown", "json"], default="text", help="how to print it")
    report.add_argument("--schema", action="append", metavar="NAME", help="only this schema (repeat for more)")
    for part in ("drift", "roles", "lint"):
        report.add_argument(f"--no-{part}", action="store_true", help=f"skip the {part} check")
    report.set_defaults(gamedb_cmd=cmd_report)

    check_all = sub.add_parser("check-all", help="Fail when any schema's models differ from the database.")
    check_all.set_defaults(gamedb_cmd=cmd_check_all)

    roles = sub.add_parser("roles", help="Least-privilege roles: owner / migrator / rw, logins, drift.")
    actions = roles.add_subparsers(dest="roles_action", required=True)
    for action, text in (
        ("apply", "create or repair every role, grant and setting (idempotent)"),
        ("sql", "print what apply runs, for a DBA to review"),
    ):
        parser = actions.add_parser(action, help=text, description=f"{text}.")
        parser.add_argument("--schema", help="only this schema (plus the global part)")
        parser.add_argument(
            "--adopt",
            action="append",
            default=[],
            metavar="ROLE",
            help="take over this existing role gamedb did not create",
        )
    drift = "report drift from the model; exit 1 on any"
    check = actions.add_parser("check", help=drift, description=f"{drift[0].upper()}{drift[1:]}.")
    check.add_argument("--json", action="store_true")
    login = actions.add_parser(
        "login",
        help="create or update a login",
        description="Create or update a login: a service's (--schema NAME) or a deployer (--migrator).",
    )
    login.add_argument("name")
    target = login.add_mutually_exclusive_group(required=True)
    target.add_argument("--schema", help="a service login: DML on this schema only, with its timeouts")
    target.add_argument("--migrator", action="store_true", help="a deployer login that may run migrations")
    login.add_argument("--password-env", metavar="VAR", help="take the password from this environment variable")
    login.add_argument("--adopt", action="store_true", help="take over an existing role gamedb did not create")
    roles.set_defaults(gamedb_cmd=cmd_roles)

    lint = sub.add_parser("lint", help="squawk over each schema's migration SQL (-x schema=NAME for one).")
    add_lint_arguments(lint)
    lint.set_defaults(gamedb_cmd=cmd_lint)

    new = sub.add_parser("new-service", help="Create services/NAME: package, models, init revision, tests.")
    new.add_argument("name", help="the schema name (and service folder)")
    new.add_argument("--no-install", action="store_true", help="do not pip install it into this environment")
    new.set_defaults(gamedb_cmd=cmd_new_service)

    move = sub.add_parser("move", help="Move a live schema to another server (logical replication), then re-place it.")
    move.add_argument("schema", help="the schema to move")
    move.add_argument("--to", required=True, metavar="SERVER", help="the server's name (its URL: GAMEDB_URL_<SERVER>)")
    move.add_argument("--verify", action="store_true", help="compare a checksum of every table's rows too")
    move.add_argument(
        "--drop-source", action="store_true", help="drop the source schema (default: keep it renamed, read-only)"
    )
    move.set_defaults(gamedb_cmd=cmd_move)

    repair = sub.add_parser(
        "repair-checksums", help="-x schema=NAME REV...: accept the current file of an applied revision on purpose."
    )
    repair.add_argument("revisions", nargs="+", metavar="REV", help="applied revision id (or a unique prefix)")
    repair.set_defaults(gamedb_cmd=cmd_repair_checksums)

    partitions = sub.add_parser("partitions", help="-x schema=NAME --ahead N: monthly partitions made ahead of time.")
    partitions.add_argument(
        "--ahead", type=int, default=3, metavar="N", help="months after the current one (default 3)"
    )
    partitions.set_defaults(gamedb_cmd=cmd_partitions)

    squash = sub.add_parser(
        "squash",
        help="-x schema=NAME --through REV: replace the revisions up to REV by one with REV's id, proven equal.",
    )
    squash.add_argument("--through", required=True, metavar="REV", help="the last revision squashed (keeps its id)")
    squash.add_argument("-m", "--message", help="the new revision's message")
    squash.add_argument(
        "--drop-data-steps", action="store_true", help="leave out the range's data steps (and the rows they leave)"
    )
    squash.set_defaults(gamedb_cmd=cmd_squash)

    server = sub.add_parser("server", help="The embedded PostgreSQL (used when GAMEDB_URL is unset).")
    server.add_argument("action", choices=["url", "stop"], help="url: how to connect; stop: stop it")
    server.set_defaults(gamedb_cmd=cmd_server)


def dispatch(argv: list[str]) -> int:
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


def schema_from_x(x_args: list[str] | None) -> str | None:
    """The value of `-x schema=NAME`, if given (once), exactly as typed; any other -x is refused."""
    values = []
    for arg in x_args or []:
        key, equals, value = arg.partition("=")
        if key != "schema" or not equals:
            raise InvalidOption(f"unknown -x option {arg!r}: gamedb takes only -x schema=NAME")
        values.append(value)
    if len(values) > 1:
        raise MissingSchemaArgument(f"-x schema given {len(values)} times: {', '.join(map(repr, values))}")
    return values[0] if values else None


def refuse_x_on_fleet_command(options: Namespace) -> None:
    """Commands over every schema take no -x: silently ignoring `-x schema=S` would act on all of them."""
    handler = getattr(options, "gamedb_cmd", None)
    if (
        handler is None
        or not options.x
        or handler
        in (
            cmd_lint,
            cmd_repair_checksums,
            cmd_partitions,
            cmd_squash,
        )
    ):  # these take -x
        return
    schema_from_x(options.x)  # an unknown key gets its own message
    command = handler.__name__.removeprefix("cmd_").replace("_", "-")
    hint = " (roles apply/sql take --schema NAME)" if command == "roles" else ""
    raise InvalidOption(f"`gamedb {command}` works on every schema and takes no -x{hint}")


def run_alembic_command(options: Namespace, project: Project, schemas: dict[str, SchemaInfo]) -> int:
    from alembic.script.revision import RevisionError
    from alembic.util import CommandError
    from sqlalchemy.exc import SQLAlchemyError

    from gamedb.discovery import get_schema
    from gamedb.migrate.config import check_revision_options, check_revision_target, make_config, script_directory
    from gamedb.migrate.environment import init_revision_body
    from gamedb.migrate.run_options import set_run_options
    from gamedb.migrate.session import check_session_settings, retry_lock_timeouts
    from gamedb.server.connections import error_line

    fn, positional, kwarg = options.cmd
    name = fn.__name__
    schema_name = schema_from_x(options.x)
    branch_label = getattr(options, "branch_label", None)
    if schema_name is None and name == "revision" and branch_label in schemas:
        schema_name = branch_label  # the seed's `revision --branch-label chat`: the label is the schema
    schema: SchemaInfo | None = None
    if schema_name is not None:
        schema = get_schema(schema_name, schemas)
    elif name not in UNSCOPED_COMMANDS:
        raise MissingSchemaArgument(
            f"`gamedb {name}` works on one schema: add -x schema=NAME "
            f"(known schemas: {', '.join(schemas) or 'none installed'})"
        )
    if name == "check" and schema is not None:
        return check_schema(project, schema)
    config = make_config(project, schemas, schema, cmd_opts=options)
    set_run_options(config, verbose=bool(options.verbose))
    kwargs = {k: getattr(options, k, None) for k in kwarg}
    if schema is not None and name in {"upgrade", "downgrade"}:
        check_session_settings()
        check_revision_target(script_directory(config), schema, options.revision)
    check_revision_options(schema, kwargs)  # before any file is written
    if name == "revision" and schema is not None:
        heads = script_directory(config).get_heads()
        if not heads:
            kwargs["branch_label"] = schema.name
            set_run_options(config, init_revision=init_revision_body(schema))
        elif kwargs.get("branch_label"):  # Alembic would write the file, then refuse the second label
            raise InvalidOption(
                f"--branch-label {kwargs['branch_label']!r}: schema {schema.name!r} already has its first revision, "
                f"which carries its branch label; a later revision takes none: gamedb revision -x "
                f'schema={schema.name} -m "..."'
            )

    def call() -> None:
        fn(config, *[getattr(options, k, None) for k in positional], **kwargs)

    try:
        if name in {"upgrade", "downgrade"} and not getattr(options, "sql", False):
            retry_lock_timeouts(call)
        else:
            call()
    except (CommandError, RevisionError) as exc:
        raise CommandFailed(error_line(exc)) from None
    except SQLAlchemyError as exc:  # a DBAPIError, or what a connection lost in an autocommit block leaves
        where = f"schema {schema.name!r}: " if schema else ""
        raise MigrationFailed(f"{where}{error_line(exc)}") from None
    return 0


def cmd_schemas(options: Namespace, project: Project, schemas: dict[str, SchemaInfo]) -> int:
    from gamedb.discovery import load_all_models
    from gamedb.discovery.changes import changed_schemas
    from gamedb.server.placement import DEFAULT_SERVER, read_placement

    load_all_models(schemas)
    placement = read_placement(project, known=schemas)
    if options.changed_since is not None:
        schemas = {name: schemas[name] for name in changed_schemas(project, schemas, options.changed_since)}
    rows = [
        {
            "name": s.name,
            "server": placement.get(s.name, DEFAULT_SERVER),
            "distribution": s.distribution,
            "version_table": f"{s.version_table_schema}.{s.version_table}",
            "versions_dir": str(s.versions_dir),
            "depends_on": list(s.depends_on),
        }
        for s in schemas.values()
    ]
    if options.json:
        print(json.dumps(rows, indent=2))
        return 0
    print_table(
        ["schema", "server", "distribution", "version table", "depends on", "versions dir"],
        [
            [
                r["name"],
                r["server"],
                r["distribution"],
                r["version_table"],
                ",".join(r["depends_on"]) or "-",
                _relative(r["versions_dir"], project),
            ]
            for r in rows
        ],
    )
    return 0


def cmd_status(options: Namespace, project: Project, schemas: dict[str, SchemaInfo]) -> int:
    from gamedb.fleet import database_status

    status = database_status(project, schemas, routes(project, schemas), compare_models=not options.no_drift)
    if options.json:
        print(json.dumps(status_json(status), indent=2))
    else:
        print_status(status)
    return 1 if options.check and not status.clean else 0


def status_json(status: DatabaseStatus) -> dict[str, object]:
    return {
        "servers": status.servers,
        "schemas": [row.as_json() for row in status.schemas],
        "undeclared_schemas": status.undeclared_schemas,
        "orphan_version_tables": status.orphan_version_tables,
        "clean": status.clean,
    }


def print_status(status: DatabaseStatus) -> None:
    print_table(
        ["schema", "server", "version table", "current", "head", "state"],
        [
            [
                r.schema,
                r.server,
                f"alembic.{r.version_table}",
                ",".join(r.current) or "-",
                ",".join(r.heads) or "-",
                r.state,
            ]
            for r in status.schemas
        ],
    )
    for row in status.schemas:
        for line in row.drift or []:
            print(f"drift {row.schema}: {line}")
    if status.undeclared_schemas:
        print(f"schemas no service declares: {', '.join(status.undeclared_schemas)}")
    if status.orphan_version_tables:
        print(f"version tables no service declares: {', '.join(status.orphan_version_tables)}")
    print_unrecorded(status, file=sys.stdout)


def print_unrecorded(status: DatabaseStatus, file: Any) -> None:
    """Applied revisions without a checksum row yet: reported, not refused (see gamedb.migrate.checksums)."""
    for row in status.schemas:
        if row.unrecorded:
            print(
                f"{row.schema}: checksums not yet recorded for {len(row.unrecorded)} applied revision(s); "
                "the next upgrade of the schema records them",
                file=file,
            )


def check_schema(project: Project, schema: SchemaInfo) -> int:
    """`gamedb -x schema=S check`: the schema's models against the database, as readable lines."""
    from gamedb.fleet import database_status

    status = database_status(project, {schema.name: schema}, routes(project, {schema.name: schema}))
    print_findings(status, fix=f"run gamedb -x schema={schema.name} upgrade head first")
    row = status.schemas[0]
    if row.clean:
        print(f"{schema.name}: models match the database")
        return 0
    if row.pending:
        raise CommandFailed(f"schema {schema.name!r} is not at head: its models can't be compared yet")
    raise CommandFailed(
        f"schema {schema.name!r}: {len(row.drift or [])} difference(s) between models and database: "
        f'gamedb revision -x schema={schema.name} --autogenerate -m "..." writes them'
    )


def print_findings(status: DatabaseStatus, fix: str = "run upgrade-all first") -> None:
    """Pending revisions and drift of every schema, one line each, on stderr."""
    for row in status.schemas:
        if row.pending:
            print(f"{row.schema}: {len(row.pending)} revision(s) not applied; {fix}", file=sys.stderr)
        for line in row.drift or []:
            print(f"{row.schema}: {line}", file=sys.stderr)
    print_unrecorded(status, file=sys.stderr)


def cmd_check_all(options: Namespace, project: Project, schemas: dict[str, SchemaInfo]) -> int:
    from gamedb.fleet import database_status

    status = database_status(project, schemas, routes(project, schemas))
    print_findings(status)
    if status.clean:
        print(f"{len(status.schemas)} schemas: models match the database")
        return 0
    dirty = [r.schema for r in status.schemas if not r.clean]
    print(f"check-all failed: {', '.join(dirty)} need a revision (or an upgrade)", file=sys.stderr)
    return 1


def cmd_upgrade_all(options: Namespace, project: Project, schemas: dict[str, SchemaInfo]) -> int:
    from gamedb.fleet import upgrade_all

    if options.sql or options.sql_dir:
        return write_plans(options, project, schemas)
    if options.jobs < 1:
        raise GamedbError("--jobs must be 1 or more")
    from gamedb.fleet.progress import Progress

    quiet = options.no_progress or options.quiet
    report = upgrade_all(
        project, schemas, routes(project, schemas), jobs=options.jobs, progress=None if quiet else Progress()
    )
    print_upgrade_report(report)
    if report.was_interrupted:
        print("gamedb: interrupted", file=sys.stderr)
        return 130
    return 0 if report.ok else 1


def cmd_plan(options: Namespace, project: Project, schemas: dict[str, SchemaInfo]) -> int:
    from gamedb.discovery import get_schema
    from gamedb.review.plan import read_plan, sql_files
    from gamedb.review.render import render_json, render_markdown, render_text

    only = {get_schema(name, schemas).name for name in options.schema} if options.schema else None
    directory = Path(options.sql_dir) if options.sql_dir else None
    if directory is not None and directory.exists() and not directory.is_dir():
        raise InvalidOption(f"--sql-dir {options.sql_dir} exists and is not a directory")
    plan = read_plan(project, schemas, routes(project, schemas), only=only)
    if directory is not None:
        files = sql_files(plan)  # refuses before anything is written
        directory.mkdir(parents=True, exist_ok=True)
        for server, text in files.items():
            (directory / f"{server}.sql").write_text(text, encoding="utf-8")
    render = {"text": render_text, "markdown": render_markdown, "json": render_json}[options.format]
    print(render(plan).rstrip("\n"))
    if directory is not None and options.format != "json":
        for server in sorted(plan.servers):
            print(f"wrote {directory / f'{server}.sql'}", file=sys.stderr)
    return 0


def cmd_report(options: Namespace, project: Project, schemas: dict[str, SchemaInfo]) -> int:
    from gamedb.discovery import get_schema
    from gamedb.review.html import render_html
    from gamedb.review.render import report_json, report_markdown, report_text
    from gamedb.review.report import collect_report

    only = {get_schema(name, schemas).name for name in options.schema} if options.schema else None
    target = Path(options.html) if options.html else None
    if target is not None and (target.is_dir() or not target.parent.is_dir()):
        raise InvalidOption(f"--html {options.html}: not a file in an existing directory")
    report = collect_report(
        project,
        schemas,
        routes(project, schemas),
        only=only,
        drift=not options.no_drift,
        roles=not options.no_roles,
        lint=not options.no_lint,
    )
    if target is not None:
        target.write_text(render_html(report), encoding="utf-8")
        print(f"wrote {target}: {len(report.schemas)} schemas (open it in a browser: {target.resolve().as_uri()})")
        return 0
    render = {"text": report_text, "markdown": report_markdown, "json": report_json}[options.format]
    print(render(report).rstrip("\n"))
    return 0


def routes(project: Project, schemas: dict[str, SchemaInfo]) -> dict[str, Route]:
    """Each schema's server by [tool.gamedb.placement] (one line naming a server without a URL)."""
    from gamedb.server.placement import route_schemas

    return route_schemas(project, schemas)


def write_plans(options: Namespace, project: Project, schemas: dict[str, SchemaInfo]) -> int:
    """`upgrade-all --sql`: the plan on stdout, or with --sql-dir one file per server (needed for several)."""
    from gamedb.fleet import write_upgrade_plan
    from gamedb.server.placement import DEFAULT_SERVER, read_placement

    placement = read_placement(project, known=schemas)
    groups: dict[str, list[str]] = {}
    for name in schemas:
        groups.setdefault(placement.get(name, DEFAULT_SERVER), []).append(name)
    if options.sql_dir is None:
        if len(groups) > 1:
            raise InvalidOption(
                f"schemas are placed on {len(groups)} servers ({', '.join(sorted(groups))}): "
                "add --sql-dir DIR for one plan per server"
            )
        write_upgrade_plan(project, schemas, sys.stdout)
        return 0
    directory = Path(options.sql_dir)
    if directory.exists() and not directory.is_dir():
        raise InvalidOption(f"--sql-dir {options.sql_dir} exists and is not a directory")
    directory.mkdir(parents=True, exist_ok=True)
    for server, names in sorted(groups.items()):
        path = directory / f"{server}.sql"
        with path.open("w", encoding="utf-8") as output:
            write_upgrade_plan(project, schemas, output, only=names, server=server)
        print(f"{path}: {', '.join(names)}")
    return 0


def print_upgrade_report(report: UpgradeReport) -> None:
    for schema, before, after in report.upgraded:
        print(f"upgraded {schema}{report.where(schema)}: {','.join(before) or 'base'} -> {','.join(after)}")
    for schema, before, after, stopped_before in report.interrupted:
        where = "revision unknown (its version table could not be re-read)"
        if after is not None:
            where = f"{','.join(after) or 'base'}" + (f" (stopped before {stopped_before})" if stopped_before else "")
        print(f"interrupted {schema}: {','.join(before) or 'base'} -> {where}")
    if report.failed is None and not report.was_interrupted:
        total = len(report.upgraded) + len(report.already_at_head)
        print(f"{total} schemas at head" + ("" if report.upgraded else " (nothing to do)"))
        return
    failed = report.failed
    if failed is not None:
        left = "its revision unknown: the version table could not be re-read"
        if failed.stayed_at is not None:
            left = f"schema left at {','.join(failed.stayed_at) or 'base'}"
        at = f" at revision {failed.revision}" if failed.revision else " before any revision ran"
        if failed.revision is None and failed.stayed_at is None:
            at = ""  # `left` says the revision is unknown
        print(
            f"FAILED {failed.schema}{report.where(failed.schema)}{at} ({left}): {failed.error}",
            file=sys.stderr,
        )
    if report.not_attempted:
        print(f"not attempted: {', '.join(report.not_attempted)}", file=sys.stderr)


def cmd_roles(options: Namespace, project: Project, schemas: dict[str, SchemaInfo]) -> int:
    """Roles on every server in use: each gets migrator and the roles of the schemas placed on it."""
    from gamedb.discovery import get_schema
    from gamedb.names import validate_login_name
    from gamedb.roles.apply import apply_roles, create_login, model_statements, role_findings
    from gamedb.roles.model import MIGRATOR, model_role_names, render
    from gamedb.server.placement import DEFAULT_SERVER, by_server, read_placement

    action = options.roles_action
    only = getattr(options, "schema", None)
    selected = [get_schema(only, schemas)] if only and action != "login" else list(schemas.values())
    if action == "sql":
        placement = read_placement(project, known=schemas)
        groups: dict[str, list[SchemaInfo]] = {}
        for info in selected:
            groups.setdefault(placement.get(info.name, DEFAULT_SERVER), []).append(info)
        for server, infos in sorted(groups.items(), key=lambda item: item[0] != DEFAULT_SERVER):
            if len(groups) > 1:
                print(f"-- server {server}")
            print(render(model_statements(infos, adopt=options.adopt)), end="")
        return 0
    if action == "login":
        schema = None if options.migrator else get_schema(options.schema, schemas)
        validate_login_name(options.name, model_role_names(schemas.values()))  # before asking for a password
        every = routes(project, schemas)
        chosen = every.values() if schema is None else [every[schema.name]]  # a deployer: every server
        servers = {route.server: route.url for route in chosen}
        password = read_password(options)
        for url in servers.values():
            create_login(url, options.name, schemas, schema=schema, password=password, adopt=options.adopt)
        where = f" on {', '.join(servers)}" if len(servers) > 1 else ""
        print(f"login {options.name}: member of {schema.rw_role if schema else MIGRATOR}{where}")
        if password is None:  # after the work: a failure stays one line
            print("no password set (no --password-env and no password typed)", file=sys.stderr)
        return 0
    placed = routes(project, {info.name: info for info in selected} if only else schemas)
    groups_by_server = by_server(placed)
    several = len(groups_by_server) > 1
    if action == "apply":
        for server, names in groups_by_server.items():
            apply_roles(placed[names[0]].url, [schemas[n] for n in names], adopt=options.adopt)
            where = f" on {server}" if several else ""
            roles_text = ", ".join(f"{schemas[n].owner_role}/{schemas[n].rw_role}" for n in names)
            print(f"roles applied{where}: {MIGRATOR} and {roles_text}")
        return 0
    findings = []
    for server, names in groups_by_server.items():
        for finding in role_findings(placed[names[0]].url, [schemas[n] for n in names]):
            findings.append((server, finding))
    if options.json:
        print(json.dumps([{**f.as_json(), "server": server} for server, f in findings], indent=2))
    else:
        for server, finding in findings:
            print(f"[{server}] {finding}" if several else finding)
        print("roles match the model" if not findings else f"{len(findings)} finding(s): run gamedb roles apply")
    return 1 if findings else 0


def read_password(options: Namespace) -> str | None:
    """From --password-env, else a prompt when there is a terminal, else none (trust/peer/cert logins)."""
    if options.password_env:
        value = os.environ.get(options.password_env)
        if not value:
            raise GamedbError(f"environment variable {options.password_env} is not set or empty")
        return value
    if not sys.stdin.isatty():
        return None
    first = getpass.getpass(f"password for {options.name}: ")
    if first != getpass.getpass("again: "):
        raise GamedbError("the two passwords differ; nothing changed")
    return first or None


def add_lint_arguments(lint: argparse.ArgumentParser) -> None:
    lint.add_argument(
        "--exclude", help="squawk rules to skip, comma-separated (instead of .squawk.toml's excluded_rules)"
    )
    lint.add_argument(
        "--since",
        action="append",
        default=[],
        metavar="REV",
        help="lint only the revisions after REV in REV's schema (repeat for more schemas; the others are left out)",
    )
    written = lint.add_mutually_exclusive_group()
    written.add_argument(
        "--baseline",
        nargs="?",
        const="",
        metavar="FILE",
        help="write the current findings as accepted (default: .gamedb-lint-baseline.json at the repo root)",
    )
    written.add_argument("--baseline-file", metavar="FILE", help="read this baseline instead of the default one")
    written.add_argument("--no-baseline", action="store_true", help="report every finding, baselined or not")
    lint.add_argument("--json", action="store_true", help="one JSON object: findings and counts")


def cmd_lint(options: Namespace, project: Project, schemas: dict[str, SchemaInfo]) -> int:
    from pathlib import Path

    from gamedb.discovery import get_schema
    from gamedb.lint import BASELINE_NAME, LintOptions, lint_project, report_json, report_text

    name = schema_from_x(options.x)
    write_to = None if options.baseline is None else Path(options.baseline or project.root / BASELINE_NAME)
    report = lint_project(
        project,
        schemas,
        LintOptions(
            selected=[get_schema(name, schemas)] if name else list(schemas.values()),
            since=options.since,
            exclude=options.exclude,
            write_baseline_to=write_to,
            baseline_file=Path(options.baseline_file) if options.baseline_file else None,
            use_baseline=not options.no_baseline,
        ),
    )
    print(report_json(report) if options.json else "\n".join(report_text(report)))
    return 1 if report.findings and not report.written else 0


def cmd_new_service(options: Namespace, project: Project, schemas: dict[str, SchemaInfo]) -> int:
    from gamedb.scaffold.new_service import create_service

    made = create_service(project, schemas, options.name, install=not options.no_install)
    name = options.name
    print(f"created services/{name} (distribution {made.layout.distribution}):")
    for path in made.files:
        print(f"  {_relative(str(path), project)}")
    if made.init_revision is not None:
        print(f"  {_relative(str(made.init_revision), project)}  (init revision, branch label {name})")
    print(f"added {_relative(str(made.layout.versions_dir), project)} to alembic.ini")
    if made.installed:
        print(f"installed {made.layout.distribution} (editable) into {sys.prefix}")
    else:
        print(f"not installed: pip install -e services/{name}")
    print("next:")
    print(f"  gamedb -x schema={name} upgrade head")
    print(f'  gamedb revision -x schema={name} --autogenerate -m "add tables"   # after editing models.py')
    print(f"  nox -s \"check(schema='{name}')\"")
    return 0


def cmd_move(options: Namespace, project: Project, schemas: dict[str, SchemaInfo]) -> int:
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


def cmd_repair_checksums(options: Namespace, project: Project, schemas: dict[str, SchemaInfo]) -> int:
    from gamedb.discovery import get_schema
    from gamedb.fleet import revision_index
    from gamedb.migrate.checksums import repair_checksums
    from gamedb.server.connections import migration_engine

    name = schema_from_x(options.x)
    if name is None:
        raise MissingSchemaArgument(
            f"`gamedb repair-checksums` works on one schema: add -x schema=NAME (known schemas: {', '.join(schemas)})"
        )
    schema = get_schema(name, schemas)
    engine = migration_engine(routes(project, {name: schema})[name].url)
    try:
        accepted = repair_checksums(engine, schema, revision_index(project, schemas, schema), options.revisions)
    finally:
        engine.dispose()
    for a in accepted:
        if not a.changed:
            print(f"{name}: {a.revision} ({a.file}) already matches its recorded checksum; nothing changed")
            continue
        print(f"{name}: accepted {a.revision} ({a.file}) as {a.checksum}, by {a.recorded_by} at {a.recorded_at}")
    return 0


def cmd_partitions(options: Namespace, project: Project, schemas: dict[str, SchemaInfo]) -> int:
    from gamedb.discovery import get_schema
    from gamedb.migrate.partitions import make_partitions
    from gamedb.server.connections import migration_engine

    name = schema_from_x(options.x)
    if name is None:
        raise MissingSchemaArgument(
            f"`gamedb partitions` works on one schema: add -x schema=NAME (known schemas: {', '.join(schemas)})"
        )
    schema = get_schema(name, schemas)
    engine = migration_engine(routes(project, {name: schema})[name].url)
    try:
        outcomes = make_partitions(engine, schema, options.ahead)
    finally:
        engine.dispose()
    for o in outcomes:
        if o.state == "created":
            print(f"created partition {name}.{o.partition} of {name}.{o.table} (FROM {o.start} TO {o.end})")
        elif o.state == "covered":
            print(f"{name}.{o.table}: {o.start:%Y-%m} already covered by another partition")
        elif o.state == "skipped":
            print(f"skipped {name}.{o.table}: {o.note}")
    made = sum(o.state == "created" for o in outcomes)
    there = sum(o.state in ("existing", "covered") for o in outcomes)
    print(f"{name}: {made} partition(s) created, {there} month(s) already there")
    return 0


def cmd_squash(options: Namespace, project: Project, schemas: dict[str, SchemaInfo]) -> int:
    from gamedb.discovery import get_schema
    from gamedb.squash.run import squash_schema

    name = schema_from_x(options.x)
    if name is None:
        raise MissingSchemaArgument(
            f"`gamedb squash` works on one schema: add -x schema=NAME (known schemas: {', '.join(schemas)})"
        )
    done = squash_schema(
        project,
        schemas,
        get_schema(name, schemas),
        options.through,
        message=options.message,
        drop_data_steps=options.drop_data_steps,
    )
    first, count = done.replaced[0], len(done.replaced)
    print(f"{name}: squashed {count} revisions ({first} .. {done.revision}) into {_relative(str(done.path), project)}")
    rows = f" and rows ({done.rows})" if done.with_data else ""
    print(f"proof: fresh databases through both have the same catalog ({done.facts} facts){rows}")
    for step in done.data_steps:
        kept = "carried (as the rows it leaves)" if step.plain and done.with_data else "left out"
        print(f"data step {kept}: {step}")
    print(f"removed: {', '.join(path.name for path in done.removed)}")
    return 0


def cmd_server(options: Namespace, project: Project, schemas: dict[str, SchemaInfo]) -> int:
    from gamedb.server import embedded
    from gamedb.server.urls import URL_ENV, has_secret, libpq_url, resolve_url

    if options.action == "stop":
        if os.environ.get(URL_ENV):
            print(f"{URL_ENV} is set: there is no embedded server to stop", file=sys.stderr)
            return 1
        stopped = embedded.stop_server(project.data_dir)
        print("embedded PostgreSQL stopped" if stopped else "embedded PostgreSQL was not running")
        return 0
    url = resolve_url(project)
    data_dir = _relative(str(project.data_dir), project)
    source = URL_ENV if os.environ.get(URL_ENV) else f"embedded PostgreSQL, data in {data_dir}"
    print(f"database: {source}")
    print(f"connect:  psql '{libpq_url(url)}'")
    if has_secret(url):  # left out of the line above: psql asks for it, or reads PGPASSWORD / ~/.pgpass
        print(f"password: the one in {URL_ENV}, not printed: psql asks for it (or set PGPASSWORD, or use ~/.pgpass)")
    return 0


def print_table(headers: list[str], rows: list[list[str]]) -> None:
    """A plain aligned table on stdout."""
    widths = [max(len(str(c)) for c in col) for col in zip(headers, *rows, strict=False)]
    for line in [headers, *rows]:
        print("  ".join(str(c).ljust(w) for c, w in zip(line, widths, strict=False)).rstrip())


def _relative(path: str, project: Project) -> str:
    try:
        return os.path.relpath(path, project.root) if path.startswith(str(project.root)) else path
    except ValueError:
        return path
