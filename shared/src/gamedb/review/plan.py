"""`gamedb plan`: what `upgrade-all` would do now, read from the live fleet.

Each schema's version rows are read as upgrade-all reads them (one request per server), refused as
upgrade-all refuses them (an edited applied revision, version rows no run can start from), and each
schema with work is rendered offline from its CURRENT revision (Alembic's own `--sql` only starts
from a revision you name), with the prelude of an online run. That one script per schema is what
`--sql-dir` writes; split at Alembic's `-- Running upgrade` lines it gives each pending revision's
SQL, which squawk judges (as `gamedb lint` does: markers and baseline apply) and whose statements
are classified by the table lock they take (gamedb.review.locks).
"""

from __future__ import annotations

import ast
import io
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from psycopg import sql

from gamedb.discovery import SchemaInfo
from gamedb.errors import PlanRefused, user_code_error
from gamedb.lint.baseline import BASELINE_NAME, read_baseline
from gamedb.lint.findings import Finding
from gamedb.lint.run import beyond_baseline, checked_markers, script_findings, shown_path
from gamedb.lint.scripts import RevisionFile
from gamedb.migrate import history
from gamedb.migrate.checksums import (
    FIRST_SEEN,
    NOT_APPLIED,
    Recorded,
    compare_checksums,
    file_checksum,
    index_lookup,
)
from gamedb.migrate.revision_index import RevisionIndex
from gamedb.names import VERSION_TABLE_SCHEMA, quote_literal
from gamedb.project import Project
from gamedb.review.locks import StatementLock, statement_locks, strongest
from gamedb.server.placement import Route, by_server

_RUNNING = re.compile(r"^-- Running upgrade (.*?) -> (.*)$", re.MULTILINE)
_EPILOGUE = "RESET ROLE;\n\nCOMMIT;\n\n"


@dataclass
class PendingRevision:
    """One revision upgrade-all would apply, as the plan shows it."""

    revision: str
    file: str  # relative to the project root when inside it
    sql: str  # its statements, without the version and checksum bookkeeping
    locks: list[StatementLock] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    runs_python: bool = False  # calls op.get_bind(): what it does with the connection is not in the SQL

    @property
    def strongest_lock(self) -> str | None:
        return strongest(self.locks)

    def as_json(self) -> dict[str, Any]:
        return {
            "revision": self.revision,
            "file": self.file,
            "sql": self.sql,
            "strongest_lock": self.strongest_lock,
            "locks": [lock.as_json() for lock in self.locks],
            "findings": [f.as_json() for f in self.findings],
            "runs_python": self.runs_python,
        }


@dataclass
class SchemaPlan:
    """One schema with work: where it is, where it goes, and the script that takes it there."""

    schema: str
    server: str
    current: list[str]
    heads: list[str]
    revisions: list[PendingRevision]
    script: str  # the whole schema's SQL from its current revision, one transaction (--sql-dir)
    unrecorded: list[str] = field(default_factory=list)  # applied revisions whose checksum rows the run records
    render_error: str | None = None  # offline rendering failed (a revision reading through op.get_bind())

    @property
    def current_text(self) -> str:
        return ",".join(self.current) or "base"

    @property
    def head_text(self) -> str:
        return ",".join(self.heads)

    def as_json(self) -> dict[str, Any]:
        return {
            "schema": self.schema,
            "server": self.server,
            "current": self.current,
            "heads": self.heads,
            "revisions": [r.as_json() for r in self.revisions],
            "checksums_to_record": self.unrecorded,
            "render_error": self.render_error,
        }


@dataclass
class FleetPlan:
    """Every schema upgrade-all would touch, in its order, and those already at head."""

    schemas: list[SchemaPlan]
    at_head: list[str]
    servers: dict[str, list[str]]  # server -> its schemas, in upgrade order
    suppressed: int = 0  # findings the lint baseline covers

    @property
    def nothing_to_do(self) -> bool:
        return not self.schemas

    def as_json(self) -> dict[str, Any]:
        return {
            "schemas": [s.as_json() for s in self.schemas],
            "at_head": self.at_head,
            "servers": self.servers,
            "suppressed_by_baseline": self.suppressed,
            "nothing_to_do": self.nothing_to_do,
        }


def read_plan(
    project: Project,
    schemas: dict[str, SchemaInfo],
    routes: Mapping[str, Route],
    *,
    only: set[str] | None = None,
    exclude: str | None = None,
) -> FleetPlan:
    """The plan of upgrade-all against the fleet as it is now; `only` keeps these schemas' entries
    (the order and the refusals still consider every schema, as upgrade-all does)."""
    from gamedb.fleet.order import revision_index, upgrade_order
    from gamedb.fleet.status import pending_revisions, read_catalog, version_rows_problem
    from gamedb.migrate.checksums import check_fleet
    from gamedb.migrate.session import check_session_settings
    from gamedb.server.connections import connect, migration_engine

    check_session_settings()  # the prelude carries them
    ordered = upgrade_order(schemas)
    current: dict[str, list[str]] = {}
    recorded: dict[str, Any] = {}
    groups = by_server(dict(routes))
    for names in groups.values():  # one request per server, as upgrade-all reads them
        engine = migration_engine(routes[names[0]].url)
        try:
            with connect(engine) as conn:
                catalog = read_catalog(conn, [schemas[name] for name in names])
                current |= catalog.versions
                recorded |= catalog.checksums
        finally:
            engine.dispose()
    indexes = {info.name: revision_index(project, schemas, info) for info in ordered}
    unrecorded = check_fleet(ordered, current, recorded, indexes)  # refuses an edited or missing applied revision
    for info in ordered:
        problem = version_rows_problem(indexes[info.name], current[info.name])
        if problem:
            raise PlanRefused(f"schema {info.name!r}: version table {problem} (upgrade-all refuses it too)")
    plans: list[SchemaPlan] = []
    at_head: list[str] = []
    for info in ordered:
        if only is not None and info.name not in only:
            continue
        pending = pending_revisions(indexes[info.name], current[info.name])
        if pending and pending[0].startswith("?"):
            raise PlanRefused(f"schema {info.name!r}: {pending[0]}")
        rows = recorded.get(info.name, {})
        stale = {
            r: rows[r]
            for r in compare_checksums(info, current[info.name], rows, index_lookup(indexes[info.name])).stale
        }
        if not pending and not unrecorded[info.name] and not stale:
            at_head.append(info.name)
            continue
        plans.append(
            schema_plan(
                project,
                schemas,
                info,
                routes[info.name].server,
                current[info.name],
                indexes[info.name],
                pending,
                unrecorded[info.name],
                stale,
            )
        )
    servers = {server: [i.name for i in ordered if i.name in names] for server, names in groups.items()}
    plan = FleetPlan(plans, at_head, servers)
    plan.suppressed = judge(project, schemas, plan, exclude)
    return plan


def schema_plan(
    project: Project,
    schemas: dict[str, SchemaInfo],
    info: SchemaInfo,
    server: str,
    current: list[str],
    index: RevisionIndex,
    pending: list[str],
    unrecorded: list[str],
    stale: Mapping[str, Recorded],
) -> SchemaPlan:
    """One schema's script from its current revision, split into its pending revisions."""
    revisions = [
        PendingRevision(rev, shown_path(project, index.files[rev]), "", runs_python=calls_get_bind(index.files[rev]))
        for rev in pending
    ]
    heads = index.heads
    try:
        script = render_from(project, schemas, info, current)
    except Exception as exc:  # noqa: BLE001 - a revision's own Python failed offline (it reads through op.get_bind())
        return SchemaPlan(info.name, server, current, heads, revisions, "", unrecorded, user_code_error(exc))
    script = checksum_housekeeping(script, info, index, unrecorded, stale)
    if not current:  # an empty version table may exist (downgrade base): Alembic's offline CREATE would fail
        create = f"CREATE TABLE {VERSION_TABLE_SCHEMA}.{info.version_table} ("
        script = script.replace(create, f"CREATE TABLE IF NOT EXISTS {VERSION_TABLE_SCHEMA}.{info.version_table} (", 1)
    _, chunks = split_script(script)
    by_revision = {rev: chunk for rev, chunk in chunks}
    for revision in revisions:
        revision.sql = "\n\n".join(s + ";" for s in statements(by_revision.get(revision.revision, ""), info))
        revision.locks = statement_locks(revision.sql, info.name) if revision.sql else []
    return SchemaPlan(info.name, server, current, heads, revisions, script, unrecorded)


def render_from(project: Project, schemas: dict[str, SchemaInfo], info: SchemaInfo, current: list[str]) -> str:
    """The schema's offline upgrade script from the revisions in `current` (base when empty) to head:
    what `upgrade current:head --sql` would give, for any number of version rows."""
    from alembic.runtime.environment import EnvironmentContext

    from gamedb.migrate.config import make_config, script_directory
    from gamedb.migrate.run_options import set_run_options

    buffer = io.StringIO()
    config = make_config(project, schemas, info, output_buffer=buffer)
    set_run_options(config, logging_configured=True)
    script = script_directory(config)

    def upgrade(rev: Any, context: Any) -> Any:
        return script._upgrade_revs("head", rev)  # what alembic.command.upgrade does

    with EnvironmentContext(
        config, script, fn=upgrade, as_sql=True, starting_rev=tuple(current) or None, destination_rev="head"
    ):
        script.run_env()
    return buffer.getvalue()


def checksum_housekeeping(
    script: str, info: SchemaInfo, index: RevisionIndex, unrecorded: list[str], stale: Mapping[str, Recorded]
) -> str:
    """What an online run does under the lock before Alembic starts (checksums.guard_run): record
    the applied revisions that have no checksum row yet, mark those no longer applied as such, each
    an event appended through the record's function (the record is append-only)."""
    if not unrecorded and not stale:
        return script
    writer = sql.Identifier(VERSION_TABLE_SCHEMA, history.function_name(info.name)).as_string(None)
    events = [
        (revision, FIRST_SEEN, file_checksum(index.files[revision]), index.files[revision].name)
        for revision in unrecorded
    ]
    events += [(revision, NOT_APPLIED, row.checksum, row.file) for revision, row in stale.items()]
    lines = [f"SELECT {writer}({', '.join(quote_literal(v) for v in event)}, NULL);" for event in events]
    block = "".join(f"{line}\n\n" for line in lines)
    found = _RUNNING.search(script)
    if found is not None:
        return script[: found.start()] + block + script[found.start() :]
    if script.endswith(_EPILOGUE):
        return script[: -len(_EPILOGUE)] + block + _EPILOGUE
    return script + block


def split_script(script: str) -> tuple[str, list[tuple[str, str]]]:
    """The prelude, then (revision, its part of the script) at each `-- Running upgrade A -> B` line."""
    body = script[: -len(_EPILOGUE)] if script.endswith(_EPILOGUE) else script
    marks = list(_RUNNING.finditer(body))
    if not marks:
        return body, []
    chunks = []
    for i, mark in enumerate(marks):
        end = marks[i + 1].start() if i + 1 < len(marks) else len(body)
        chunks.append((mark[2].strip(), body[mark.end() : end]))
    return body[: marks[0].start()], chunks


def statements(chunk: str, info: SchemaInfo) -> list[str]:
    """The statements of a script part, minus gamedb's and Alembic's bookkeeping on the version and checksum tables."""
    import pglast
    import pglast.parser

    markers = (
        f"{VERSION_TABLE_SCHEMA}.{info.version_table}",
        f'"{VERSION_TABLE_SCHEMA}"."{info.version_table}"',  # the lock of a transaction reopened mid-script
        f'"{VERSION_TABLE_SCHEMA}"."{info.checksum_table}"',
        sql.Identifier(VERSION_TABLE_SCHEMA, history.function_name(info.name)).as_string(None),  # the record's writer
    )
    try:
        parts = list(pglast.split(chunk))
    except pglast.parser.ParseError:  # pglast refuses what PostgreSQL would refuse: keep Alembic's separation
        parts = [p.strip().rstrip(";") for p in chunk.split(";\n\n") if p.strip()]
    kept = [p.strip() for p in parts if p.strip() and not any(m in p for m in markers)]
    return ["\n".join(line.rstrip() for line in p.splitlines()) for p in kept]  # Alembic ends lines with ", "


def calls_get_bind(path: Path) -> bool:
    """Whether the revision's upgrade() calls get_bind() (op.get_bind(), context.get_bind()): Python
    that runs against the live connection, which offline SQL can't show."""
    try:
        tree = ast.parse(path.read_text(encoding="utf-8"))
    except (OSError, SyntaxError, UnicodeDecodeError):
        return False
    for node in tree.body:
        if isinstance(node, ast.FunctionDef) and node.name == "upgrade":
            return any(
                isinstance(call, ast.Call) and isinstance(call.func, ast.Attribute) and call.func.attr == "get_bind"
                for call in ast.walk(node)
            )
    return False


def judge(project: Project, schemas: dict[str, SchemaInfo], plan: FleetPlan, exclude: str | None) -> int:
    """squawk over each pending revision's SQL (with the schema's prelude, as `gamedb lint` feeds
    it); lint-ignore markers and the lint baseline apply. Returns how many the baseline covered."""
    rendered: list[tuple[RevisionFile, str]] = []
    by_key: dict[tuple[str, str], PendingRevision] = {}
    for schema in plan.schemas:
        if schema.render_error:
            continue
        prelude, _ = split_script(schema.script)
        info_statements = [s for s in _prelude_statements(prelude, schema.schema)]
        for revision in schema.revisions:
            if not revision.sql:
                continue
            path = project.root / revision.file
            sql = "\n\n".join([*info_statements, revision.sql, "COMMIT;"]) + "\n"
            rendered.append((RevisionFile(schema.schema, revision.revision, path, ()), sql))
            by_key[(schema.schema, revision.revision)] = revision
    if not rendered:
        return 0
    markers = checked_markers(project, [r for r, _ in rendered])
    silencing = {(m.revision.schema, m.revision.revision, m.rule) for m in markers}
    findings = [f for f in script_findings(project, schemas, rendered, exclude) if f.key not in silencing]
    suppressed = 0
    baseline = project.root / BASELINE_NAME
    if baseline.exists():
        findings, suppressed = beyond_baseline(findings, read_baseline(baseline, shown_path(project, baseline)))
    for finding in findings:
        by_key[(finding.schema, finding.revision)].findings.append(finding)
    return suppressed


def _prelude_statements(prelude: str, schema: str) -> list[str]:
    """The prelude's statements (BEGIN, timeouts, role, lock), without the version table's CREATE."""
    version_table = f"{VERSION_TABLE_SCHEMA}.alembic_version_{schema}"
    kept = []
    for part in prelude.split(";\n\n"):
        text = "\n".join(line for line in part.splitlines() if not line.startswith("--")).strip()
        if text and version_table not in text:
            kept.append(text + ";")
    return kept


def sql_files(plan: FleetPlan) -> dict[str, str]:
    """server -> the script `psql -v ON_ERROR_STOP=1 -f` runs there to bring exactly the pending
    revisions to head; refuses when a script could not say what upgrade-all does."""
    for schema in plan.schemas:
        python = [r.revision for r in schema.revisions if r.runs_python]
        if python:
            raise PlanRefused(
                f"schema {schema.schema!r}: revision(s) {', '.join(python)} run Python through op.get_bind(); "
                "an SQL file can't do what they do online: run gamedb upgrade-all"
            )
        if schema.render_error:
            raise PlanRefused(f"schema {schema.schema!r} can't be rendered offline: {schema.render_error}")
    files = {}
    for server in sorted(plan.servers):
        scripts = [s for s in plan.schemas if s.server == server]
        header = (
            f"-- gamedb plan on server {server}: the pending revisions of {len(scripts)} schema(s), from each one's\n"
            "-- current revision to head, in upgrade-all's order; each schema is one transaction.\n"
            "-- Apply with: psql -v ON_ERROR_STOP=1 -f THIS_FILE\n"
        )
        if not scripts:
            header += "-- nothing to do\n"
        for s in scripts:
            header += f"--   {s.schema}: {s.current_text} -> {s.head_text}\n"
        files[server] = header + "\n" + "".join(s.script for s in scripts)
    return files


def write_sql_files(plan: FleetPlan, directory: Path) -> list[Path]:
    """`plan --sql-dir`: DIRECTORY/<server>.sql for every server of the plan (sql_files' refusals come
    before anything is written); returns the files, by server name."""
    files = sql_files(plan)
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for server, text in files.items():
        path = directory / f"{server}.sql"
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written
