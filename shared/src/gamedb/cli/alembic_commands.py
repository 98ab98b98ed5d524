"""Alembic's own commands (upgrade, downgrade, revision, current, stamp, heads, history...) scoped by
`-x schema=NAME` to one schema, and `check`, which gamedb answers itself with readable lines."""

from __future__ import annotations

from argparse import Namespace
from typing import TYPE_CHECKING

from gamedb.cli.arguments import schema_from_x
from gamedb.cli.fleet import print_findings
from gamedb.errors import CommandFailed, InvalidOption, MigrationFailed, MissingSchemaArgument

if TYPE_CHECKING:
    from gamedb.discovery import SchemaInfo
    from gamedb.project import Project

# Alembic commands that only read revision files: without a schema they cover every service.
UNSCOPED_COMMANDS = frozenset({"init", "list_templates", "heads", "history", "branches", "show"})


def run_alembic_command(options: Namespace, project: Project, schemas: dict[str, SchemaInfo]) -> int:
    """One of Alembic's commands, on the schema of -x schema=NAME (only its versions directory loaded)."""
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


def check_schema(project: Project, schema: SchemaInfo) -> int:
    """`gamedb -x schema=S check`: the schema's models against the database, as readable lines."""
    from gamedb.fleet import database_status
    from gamedb.server.placement import route_schemas

    status = database_status(project, {schema.name: schema}, route_schemas(project, [schema.name]))
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
