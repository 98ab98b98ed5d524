"""Upkeep of one schema named by `-x schema=NAME`: `repair-checksums` (accept an applied revision's
changed file), `partitions` (monthly partitions made ahead) and `squash` (a chain replaced by one revision)."""

from __future__ import annotations

from argparse import Namespace
from typing import TYPE_CHECKING, Any

from gamedb.cli.arguments import required_schema
from gamedb.cli.output import relative

if TYPE_CHECKING:
    from gamedb.discovery import SchemaInfo
    from gamedb.project import Project


def add_commands(sub: Any) -> None:
    """repair-checksums, partitions and squash on gamedb's subparsers."""
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


def cmd_repair_checksums(options: Namespace, project: Project, schemas: dict[str, SchemaInfo]) -> int:
    """Accept the current file of each named applied revision; say what changed."""
    from gamedb.fleet import revision_index
    from gamedb.migrate.checksums import repair_checksums
    from gamedb.server.connections import schema_migration_engine

    schema = required_schema(options.x, schemas, "repair-checksums")
    name = schema.name
    with schema_migration_engine(project, name) as engine:
        accepted = repair_checksums(engine, schema, revision_index(project, schemas, schema), options.revisions)
    for a in accepted:
        if not a.changed:
            print(f"{name}: {a.revision} ({a.file}) already matches its recorded checksum; nothing changed")
            continue
        print(f"{name}: accepted {a.revision} ({a.file}) as {a.checksum}, by {a.recorded_by} at {a.recorded_at}")
    return 0


def cmd_partitions(options: Namespace, project: Project, schemas: dict[str, SchemaInfo]) -> int:
    """Make the schema's monthly partitions --ahead months ahead; one line per partition made or skipped."""
    from gamedb.migrate.partitions import make_partitions
    from gamedb.server.connections import schema_migration_engine

    schema = required_schema(options.x, schemas, "partitions")
    name = schema.name
    with schema_migration_engine(project, name) as engine:
        outcomes = make_partitions(engine, schema, options.ahead)
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
    """Squash the schema's revisions through --through; say what was proven and what was removed."""
    from gamedb.squash.run import squash_schema

    schema = required_schema(options.x, schemas, "squash")
    name = schema.name
    done = squash_schema(
        project,
        schemas,
        schema,
        options.through,
        message=options.message,
        drop_data_steps=options.drop_data_steps,
    )
    first, count = done.replaced[0], len(done.replaced)
    print(f"{name}: squashed {count} revisions ({first} .. {done.revision}) into {relative(str(done.path), project)}")
    rows = f" and rows ({done.rows})" if done.with_data else ""
    print(f"proof: fresh databases through both have the same catalog ({done.facts} facts){rows}")
    for step in done.data_steps:
        kept = "carried (as the rows it leaves)" if step.plain and done.with_data else "left out"
        print(f"data step {kept}: {step}")
    print(f"removed: {', '.join(path.name for path in done.removed)}")
    return 0
