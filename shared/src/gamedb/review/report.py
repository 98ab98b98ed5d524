"""`gamedb report`: every schema of the fleet on one page: server, current/head/pending, drift,
checksum state, roles findings, lint findings and its revision chain.

Unlike `status` and `upgrade-all`, the report refuses nothing: an edited applied revision or broken
version rows are what a reviewer needs to see, so they are shown as the schema's state.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from gamedb.discovery import SchemaInfo
from gamedb.errors import GamedbError
from gamedb.lint.findings import Finding
from gamedb.project import Project
from gamedb.server.placement import Route, by_server

if TYPE_CHECKING:  # for annotations; the functions import it where they use it, as the rest of the module does
    from gamedb.migrate.revision_index import RevisionIndex

# A schema's state, worst first: what colours its node and row.
STATES = ("broken", "edited", "pending", "drift", "unrecorded", "at head")


@dataclass
class Revision:
    """One revision of a schema's chain, base first."""

    revision: str
    parents: tuple[str, ...]
    file: str
    applied: bool


@dataclass
class SchemaReport:
    """One schema as the report shows it."""

    schema: str
    server: str
    depends_on: list[str]
    current: list[str]
    heads: list[str]
    pending: list[str]
    drift: list[str] | None  # None: not compared (pending revisions, a problem, or --no-drift)
    problem: str | None  # version rows no run can start from
    checksum_problems: list[str]  # applied revisions edited or gone
    unrecorded: list[str]  # applied revisions without a checksum row yet
    roles: list[str] = field(default_factory=list)
    lint: list[Finding] = field(default_factory=list)
    chain: list[Revision] = field(default_factory=list)

    @property
    def state(self) -> str:
        if self.problem:
            return "broken"
        if self.checksum_problems:
            return "edited"
        if self.pending:
            return "pending"
        if self.drift:
            return "drift"
        if self.unrecorded:
            return "unrecorded"
        return "at head"

    @property
    def checksum_state(self) -> str:
        if self.checksum_problems:
            return f"{len(self.checksum_problems)} edited or gone"
        if self.unrecorded:
            return f"{len(self.unrecorded)} not recorded yet"
        return "ok"

    def as_json(self) -> dict[str, Any]:
        return {
            "schema": self.schema,
            "server": self.server,
            "depends_on": self.depends_on,
            "state": self.state,
            "current": self.current,
            "heads": self.heads,
            "pending": self.pending,
            "drift": self.drift,
            "problem": self.problem,
            "checksums": self.checksum_state,
            "checksum_problems": self.checksum_problems,
            "checksums_not_recorded": self.unrecorded,
            "roles": self.roles,
            "lint": [f.as_json() for f in self.lint],
            "revisions": [r.__dict__ | {"parents": list(r.parents)} for r in self.chain],
        }


@dataclass
class FleetReport:
    """The whole fleet, in upgrade order, and what could not be checked."""

    schemas: list[SchemaReport]
    servers: dict[str, str]  # server -> its URL, masked
    global_roles: list[str] = field(default_factory=list)  # roles findings of no one schema
    notes: list[str] = field(default_factory=list)  # what was not checked, and why

    def as_json(self) -> dict[str, Any]:
        return {
            "servers": self.servers,
            "schemas": [s.as_json() for s in self.schemas],
            "global_roles": self.global_roles,
            "notes": self.notes,
        }


def collect_report(
    project: Project,
    schemas: dict[str, SchemaInfo],
    routes: Mapping[str, Route],
    *,
    only: set[str] | None = None,
    drift: bool = True,
    roles: bool = True,
    lint: bool = True,
) -> FleetReport:
    """Read the fleet: one catalog request per server, drift for schemas at head, roles and lint."""
    from gamedb.fleet.order import revision_index, upgrade_order
    from gamedb.fleet.status import compare_all, pending_revisions, read_catalog, version_rows_problem
    from gamedb.migrate.checksums import compare_checksums, index_lookup
    from gamedb.server.connections import connect, error_line, migration_engine
    from gamedb.server.urls import mask_url

    ordered = [info for info in upgrade_order(schemas) if only is None or info.name in only]
    chosen = {info.name for info in ordered}
    groups = {server: [n for n in names if n in chosen] for server, names in by_server(dict(routes)).items()}
    groups = {server: names for server, names in groups.items() if names}
    rows: dict[str, SchemaReport] = {}
    report = FleetReport([], {server: mask_url(routes[names[0]].url) for server, names in groups.items()})
    for server, names in groups.items():
        url = routes[names[0]].url
        infos = [info for info in ordered if info.name in names]
        engine = migration_engine(url)
        try:
            with connect(engine) as conn:
                catalog = read_catalog(conn, infos)
        finally:
            engine.dispose()
        for info in infos:
            index = revision_index(project, schemas, info)
            current = catalog.versions[info.name]
            checks = compare_checksums(info, current, catalog.checksums.get(info.name, {}), index_lookup(index))
            problem = version_rows_problem(index, current)
            pending = [] if problem else pending_revisions(index, current)
            applied = _applied(index, current)
            chain = [
                Revision(rev, index.parents[rev], _shown(project, index.files.get(rev)), rev in applied)
                for rev in _chain_order(index)
            ]
            rows[info.name] = SchemaReport(
                info.name,
                server,
                list(info.depends_on),
                current,
                index.heads,
                pending,
                None,
                problem,
                [line for _, line in checks.problems],
                checks.unrecorded,
                chain=chain,
            )
        at_head = [info for info in infos if rows[info.name].state in {"at head", "unrecorded"}]
        if drift and at_head:
            for name, lines in compare_all(url, at_head).items():
                rows[name].drift = lines
        if roles:
            try:
                from gamedb.roles.apply import role_findings

                for finding in role_findings(url, infos):
                    if finding.schema in rows:
                        rows[finding.schema].roles.append(f"{finding.kind}: {finding.detail}")
                    else:
                        report.global_roles.append(f"[{server}] {finding.kind}: {finding.detail}")
            except GamedbError as exc:
                report.notes.append(f"roles not checked on {server}: {error_line(exc)}")
    if lint:
        try:
            from gamedb.lint import LintOptions, lint_project

            linted = lint_project(project, schemas, LintOptions(selected=ordered))
            for lint_finding in linted.findings:
                rows[lint_finding.schema].lint.append(lint_finding)
        except GamedbError as exc:
            report.notes.append(f"lint not run: {error_line(exc)}")
    report.schemas = [rows[info.name] for info in ordered]
    return report


def _applied(index: RevisionIndex, current: list[str]) -> set[str]:
    from gamedb.migrate.revision_index import UnreadableRevisions

    try:
        return index.ancestry(current)
    except UnreadableRevisions:
        return set()


def _chain_order(index: RevisionIndex) -> list[str]:
    """Every revision, base first (by id among equals)."""
    from graphlib import TopologicalSorter

    sorter = TopologicalSorter({rev: set(parents) & index.parents.keys() for rev, parents in index.parents.items()})
    sorter.prepare()
    order: list[str] = []
    while sorter.is_active():
        ready = sorted(sorter.get_ready())
        order += ready
        sorter.done(*ready)
    return order


def _shown(project: Project, path: Any) -> str:
    if path is None:
        return "?"
    from gamedb.lint.run import shown_path

    return shown_path(project, path)
