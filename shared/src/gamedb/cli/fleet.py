"""The commands over every schema at once: `schemas`, `status`, `upgrade-all`, `plan`, `report`,
`check-all`; and the findings `-x schema=S check` prints the same way."""

from __future__ import annotations

import json
import os
import sys
from argparse import Namespace
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from gamedb.cli.output import print_table, relative
from gamedb.errors import GamedbError, InvalidOption

if TYPE_CHECKING:
    from gamedb.discovery import SchemaInfo
    from gamedb.fleet import DatabaseStatus, UpgradeReport
    from gamedb.project import Project


def add_commands(sub: Any) -> None:
    """schemas, status, upgrade-all, plan, report and check-all on gamedb's subparsers."""
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


def cmd_schemas(options: Namespace, project: Project, schemas: dict[str, SchemaInfo]) -> int:
    from gamedb.discovery import load_all_models
    from gamedb.discovery.changes import changed_schemas
    from gamedb.server.placement import DEFAULT_SERVER, read_placement

    load_all_models(schemas)
    placement = read_placement(project, known=schemas)
    if options.changed_since is not None:
        schemas = {name: schemas[name] for name in changed_schemas(project, schemas, options.changed_since)}
    rows: list[dict[str, Any]] = [
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
                relative(r["versions_dir"], project),
            ]
            for r in rows
        ],
    )
    return 0


def cmd_status(options: Namespace, project: Project, schemas: dict[str, SchemaInfo]) -> int:
    from gamedb.fleet import database_status
    from gamedb.server.placement import route_schemas

    status = database_status(project, schemas, route_schemas(project, schemas), compare_models=not options.no_drift)
    if options.json:
        print(json.dumps(status_json(status), indent=2))
    else:
        print_status(status)
    return 1 if options.check and not status.clean else 0


def status_json(status: DatabaseStatus) -> dict[str, object]:
    """`status --json`: the whole status as one object."""
    return {
        "servers": status.servers,
        "schemas": [row.as_json() for row in status.schemas],
        "undeclared_schemas": status.undeclared_schemas,
        "orphan_version_tables": status.orphan_version_tables,
        "clean": status.clean,
    }


def print_status(status: DatabaseStatus) -> None:
    """`status`: a table of every schema, then drift, strays and unrecorded checksums."""
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


def print_unrecorded(status: DatabaseStatus, file: TextIO) -> None:
    """Applied revisions without a checksum row yet: reported, not refused (see gamedb.migrate.checksums)."""
    for row in status.schemas:
        if row.unrecorded:
            print(
                f"{row.schema}: checksums not yet recorded for {len(row.unrecorded)} applied revision(s); "
                "the next upgrade of the schema records them",
                file=file,
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
    from gamedb.server.placement import route_schemas

    status = database_status(project, schemas, route_schemas(project, schemas))
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
    from gamedb.server.placement import route_schemas

    quiet = options.no_progress or options.quiet
    report = upgrade_all(
        project, schemas, route_schemas(project, schemas), jobs=options.jobs, progress=None if quiet else Progress()
    )
    print_upgrade_report(report)
    if report.was_interrupted:
        print("gamedb: interrupted", file=sys.stderr)
        return 130
    return 0 if report.ok else 1


def write_plans(options: Namespace, project: Project, schemas: dict[str, SchemaInfo]) -> int:
    """`upgrade-all --sql`: the plan on stdout, or with --sql-dir one file per server (needed for several)."""
    from gamedb.fleet import write_upgrade_plan
    from gamedb.fleet.plan import write_upgrade_plans
    from gamedb.server.placement import servers_of

    if options.sql_dir is None:
        servers = servers_of(project, schemas, known=schemas)
        if len(servers) > 1:
            raise InvalidOption(
                f"schemas are placed on {len(servers)} servers ({', '.join(sorted(servers))}): "
                "add --sql-dir DIR for one plan per server"
            )
        write_upgrade_plan(project, schemas, sys.stdout)
        return 0
    directory = Path(options.sql_dir)
    if directory.exists() and not directory.is_dir():
        raise InvalidOption(f"--sql-dir {options.sql_dir} exists and is not a directory")
    for path, names in write_upgrade_plans(project, schemas, directory):
        print(f"{path}: {', '.join(names)}")
    return 0


def print_upgrade_report(report: UpgradeReport) -> None:
    """What upgrade-all did, schema by schema; a failure and what was not attempted on stderr."""
    for schema, before, after in report.upgraded:
        print(f"upgraded {schema}{report.where(schema)}: {','.join(before) or 'base'} -> {','.join(after)}")
    for schema, before, reached, stopped_before in report.interrupted:
        where = "revision unknown (its version table could not be re-read)"
        if reached is not None:
            where = f"{','.join(reached) or 'base'}" + (f" (stopped before {stopped_before})" if stopped_before else "")
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


def cmd_plan(options: Namespace, project: Project, schemas: dict[str, SchemaInfo]) -> int:
    from gamedb.discovery import get_schema
    from gamedb.review.plan import read_plan, write_sql_files
    from gamedb.review.render import render_json, render_markdown, render_text
    from gamedb.server.placement import route_schemas

    only = {get_schema(name, schemas).name for name in options.schema} if options.schema else None
    directory = Path(options.sql_dir) if options.sql_dir else None
    if directory is not None and directory.exists() and not directory.is_dir():
        raise InvalidOption(f"--sql-dir {options.sql_dir} exists and is not a directory")
    plan = read_plan(project, schemas, route_schemas(project, schemas), only=only)
    written = write_sql_files(plan, directory) if directory is not None else []
    render = {"text": render_text, "markdown": render_markdown, "json": render_json}[options.format]
    print(render(plan).rstrip("\n"))
    if options.format != "json":
        for path in written:
            print(f"wrote {path}", file=sys.stderr)
    return 0


def cmd_report(options: Namespace, project: Project, schemas: dict[str, SchemaInfo]) -> int:
    from gamedb.discovery import get_schema
    from gamedb.review.html import render_html
    from gamedb.review.render import report_json, report_markdown, report_text
    from gamedb.review.report import collect_report
    from gamedb.server.placement import route_schemas

    only = {get_schema(name, schemas).name for name in options.schema} if options.schema else None
    target = Path(options.html) if options.html else None
    if target is not None and (target.is_dir() or not target.parent.is_dir()):
        raise InvalidOption(f"--html {options.html}: not a file in an existing directory")
    report = collect_report(
        project,
        schemas,
        route_schemas(project, schemas),
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
