"""Checksums of applied revisions: a revision edited after it ran is refused, not silently run past.

Invariant: a row of `alembic.gamedb_checksums_<s>` (next to the version table, owned by `<s>_owner`,
closed to app roles) holds, for one revision applied to schema `<s>`, the checksum of its file as it
was when it ran (`applied`), when it was stamped (`stamped`), when gamedb first saw it already applied
(`first seen`: revisions applied before gamedb kept checksums), or when someone accepted an edit on
purpose (`repaired`, with the checksum it replaced), or when `gamedb squash` replaced its file
(`squashed`: the kept revision's row takes the new file's checksum, the old one in `replaced_checksum`;
the rows of the revisions it replaced stay, naming the new file). The row is written in the revision's
own transaction, with its version row; a downgrade deletes the row of the revision it undoes.

What is hashed: the revision file's text, normalized only for what editors and git change without
anyone meaning to: a UTF-8 byte-order mark, line endings (CRLF, CR) and whitespace at the end of a
line or of the file. Any other edit, a comment included, changes the checksum. The alternative, the
revision's rendered offline SQL, would ignore edits that change nothing that runs, but costs an
Alembic render of every applied revision (importing each file and its models) on every `status`,
which today reads revision files as text only; it also can't see what a revision does through
`op.get_bind()`, and its output moves with Alembic and SQLAlchemy versions, so upgrading either
would raise false alarms. Ignoring comments as well would need Python's tokenizer, whose tokens
changed between Python versions (f-strings in 3.12): the same risk. A comment-only edit is one
`gamedb repair-checksums` away.

Who checks: `status`, `check`, `check-all` and `upgrade-all` compare the files with the rows they
read, and a run of env.py that holds the schema's lock compares them again (`guard_run`); scoped
`upgrade` and `downgrade` refuse (a changed downgrade is as dangerous as a changed upgrade), while
`stamp`, `current` and autogenerate only record what is missing. An applied revision without a row
is "not yet recorded": reported, never refused, and recorded by the next run holding the lock.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from psycopg import sql
from sqlalchemy import Connection, text
from sqlalchemy.exc import DBAPIError

from gamedb.errors import AppliedRevisionChanged, ChecksumRepairRefused, VersionTableMissing
from gamedb.names import VERSION_TABLE_SCHEMA, quote_literal

if TYPE_CHECKING:
    from alembic.runtime.migration import MigrationContext, MigrationInfo
    from alembic.script import ScriptDirectory
    from sqlalchemy import Engine

    from gamedb.discovery import SchemaInfo
    from gamedb.migrate.revision_index import RevisionIndex

ALGORITHM = "sha256"

# How a row came to be (the `reason` column).
APPLIED, STAMPED, FIRST_SEEN, REPAIRED = "applied", "stamped", "first seen", "repaired"
# `gamedb squash` replaced the file: the kept revision's row takes the new file's checksum (the old one
# in replaced_checksum); the rows of the revisions it replaced stay, naming the squash's file
SQUASHED = "squashed"


def normalized_text(data: bytes) -> bytes:
    """A revision file's bytes as they are hashed: no BOM, LF line ends, no trailing whitespace."""
    try:
        decoded = data.decode("utf-8-sig")
    except UnicodeDecodeError:  # not a file Python would import by default: hash it as it is
        return data
    lines = decoded.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    return "\n".join(line.rstrip(" \t\f\v") for line in lines).rstrip("\n").encode("utf-8")


def file_checksum(path: Path) -> str:
    """The checksum of a revision file, `sha256:<hex>` of its normalized text."""
    return f"{ALGORITHM}:{hashlib.sha256(normalized_text(path.read_bytes())).hexdigest()}"


@dataclass(frozen=True)
class Recorded:
    """One row of a schema's checksum table."""

    checksum: str
    file: str  # the file's name in the versions directory when it was recorded


@dataclass(frozen=True)
class Found:
    """A revision as its versions directory has it."""

    parents: tuple[str, ...]
    path: Path


Lookup = Callable[[str], "Found | None"]  # revision id -> its file and parents; None: no file has it


def index_lookup(index: RevisionIndex) -> Lookup:
    """Find revisions in a RevisionIndex (what status and upgrade-all read from the files' text)."""

    def find(revision: str) -> Found | None:
        path = index.files.get(revision)
        return Found(index.parents[revision], path) if path is not None else None

    return find


def script_lookup(script: ScriptDirectory) -> Lookup:
    """Find revisions in Alembic's ScriptDirectory (what a run of env.py has loaded)."""
    from alembic.script.revision import RevisionError
    from alembic.util import CommandError, to_tuple

    def find(revision: str) -> Found | None:
        try:
            found = script.revision_map.get_revision(revision)
        except (RevisionError, CommandError):
            return None
        path = getattr(found, "path", None)
        if found is None or path is None:
            return None
        return Found(to_tuple(found.down_revision, default=()), Path(path))

    return find


def applied_revisions(version_rows: list[str], lookup: Lookup) -> list[tuple[str, Found | None]]:
    """Every revision at or below the version rows, oldest first; None for one whose file is gone
    (nothing below it can be walked: the graph is cut there)."""
    order: list[tuple[str, Found | None]] = []
    found: dict[str, Found | None] = {}
    stack: list[tuple[str, bool]] = [(r, False) for r in sorted(version_rows, reverse=True)]
    while stack:
        revision, parents_done = stack.pop()
        if parents_done:
            order.append((revision, found[revision]))
            continue
        if revision in found:
            continue
        found[revision] = lookup(revision)
        stack.append((revision, True))
        here = found[revision]
        for parent in sorted(here.parents, reverse=True) if here else ():
            if parent not in found:
                stack.append((parent, False))
    return order


@dataclass
class ChecksumReport:
    """One schema's applied revisions compared with its checksum rows."""

    schema: str
    problems: list[tuple[str, str]] = field(default_factory=list)  # (revision, one line): changed or gone
    unrecorded: list[str] = field(default_factory=list)  # applied, file present, no row yet
    stale: list[str] = field(default_factory=list)  # rows of revisions that are not applied
    checksums: dict[str, tuple[str, Path]] = field(default_factory=dict)  # applied revision -> (checksum, file)
    squashed: dict[str, str] = field(default_factory=dict)  # revision -> file name: rows to record as squashed


def compare_checksums(
    schema: SchemaInfo, version_rows: list[str], recorded: Mapping[str, Recorded], lookup: Lookup
) -> ChecksumReport:
    """What differs between the files of the applied revisions and the rows recorded for them."""
    from gamedb.squash import squash_markers

    report = ChecksumReport(schema.name)
    applied = applied_revisions(version_rows, lookup)
    walked = {revision for revision, _ in applied}
    # squash markers are read from the files only when something looks wrong (a missing file, a changed
    # checksum, rows of revisions not applied): a database whose rows match costs no extra pass
    sums = {revision: file_checksum(found.path) for revision, found in applied if found is not None}
    suspicious = (
        len(sums) < len(applied)
        or bool(set(recorded) - walked)
        or any(recorded[r].checksum != checksum for r, checksum in sums.items() if r in recorded)
    )
    markers = squash_markers(schema.versions_dir) if suspicious else {}
    replaced_by = {old: marker for marker in markers.values() for old in marker.replaced if old != marker.revision}
    for revision, found in applied:
        row = recorded.get(revision)
        if found is None and revision in replaced_by:
            marker = replaced_by[revision]
            report.problems.append(
                (
                    revision,
                    f"schema {schema.name!r} is at revision {revision}, which gamedb squash replaced by "
                    f"{marker.revision} ({marker.path.name}): upgrade it to {marker.revision} with a checkout from "
                    "before the squash (which has the old revision files), then run again",
                )
            )
            continue
        if found is None:
            where = f"{schema.versions_dir / row.file} is gone" if row else f"no file in {schema.versions_dir} has it"
            report.problems.append(
                (revision, f"schema {schema.name!r}: applied revision {revision} has no file: {where}; restore it")
            )
            continue
        checksum = sums[revision]
        report.checksums[revision] = (checksum, found.path)
        if row is None:
            report.unrecorded.append(revision)
        elif revision in markers and markers[revision].checksums.get(revision) == row.checksum:
            report.squashed[revision] = found.path.name  # recorded by the file the squash replaced
            for replaced in markers[revision].replaced:
                if replaced != revision and replaced in recorded:
                    report.squashed[replaced] = found.path.name
        elif row.checksum != checksum:
            report.problems.append(
                (
                    revision,
                    f"schema {schema.name!r}: applied revision {revision} was edited after it was applied: "
                    f"{found.path} differs from the checksum recorded for it; restore the file, or accept the "
                    f"change with gamedb repair-checksums -x schema={schema.name} {revision}",
                )
            )
    report.stale = sorted(set(recorded) - walked - set(report.squashed) - set(replaced_by))  # squashed: history
    return report


def refuse_problems(reports: list[ChecksumReport]) -> None:
    """Raise AppliedRevisionChanged with the first problem found (and how many more) if there is any."""
    problems = [problem for report in reports for problem in report.problems]
    if not problems:
        return
    (_, first), rest = problems[0], problems[1:]
    more = f" (and {len(rest)} more: {', '.join(revision for revision, _ in rest)})" if rest else ""
    raise AppliedRevisionChanged(first + more)


def check_fleet(
    schemas: list[SchemaInfo],
    versions: Mapping[str, list[str]],
    recorded: Mapping[str, Mapping[str, Recorded]],
    indexes: Mapping[str, RevisionIndex],
) -> dict[str, list[str]]:
    """status / check / check-all / upgrade-all: refuse any changed or missing applied revision file;
    return each schema's applied revisions that have no checksum row yet."""
    reports = [
        compare_checksums(info, versions[info.name], recorded.get(info.name, {}), index_lookup(indexes[info.name]))
        for info in schemas
    ]
    refuse_problems(reports)
    return {report.schema: report.unrecorded for report in reports}


# --- the table ------------------------------------------------------------------------------------


def checksum_table(schema: SchemaInfo) -> sql.Identifier:
    """`alembic.gamedb_checksums_<s>`, quoted."""
    return sql.Identifier(VERSION_TABLE_SCHEMA, schema.checksum_table)


def _table_text(schema: SchemaInfo) -> str:
    return checksum_table(schema).as_string(None)


def create_table(schema: SchemaInfo) -> sql.Composable:
    """CREATE TABLE IF NOT EXISTS of the schema's checksum table (roles apply, and a run that may create it)."""
    return sql.SQL(
        "CREATE TABLE IF NOT EXISTS {} ("
        "revision VARCHAR(32) NOT NULL, checksum TEXT NOT NULL, file TEXT NOT NULL, reason TEXT NOT NULL, "
        "recorded_at TIMESTAMPTZ NOT NULL DEFAULT now(), recorded_by TEXT NOT NULL DEFAULT session_user, "
        "recorded_as TEXT NOT NULL DEFAULT current_user, replaced_checksum TEXT, CONSTRAINT {} PRIMARY KEY (revision))"
    ).format(checksum_table(schema), sql.Identifier(f"{schema.checksum_table}_pkey"))


def ensure_table_statement(schema: SchemaInfo) -> str:
    """Create the checksum table when it is missing, closed to everyone but its owner.

    A DO block: CREATE TABLE IF NOT EXISTS would need CREATE on schema `alembic` even when the table
    exists, which `<s>_owner` has not under the role model (`roles apply` creates the table). The
    owner's role-wide default privileges give `<s>_rw` DML on any table it creates: revoked here.
    """
    table = _table_text(schema)
    return (
        f"DO $gamedb$ BEGIN IF to_regclass({quote_literal(table)}) IS NULL THEN "
        f"{create_table(schema).as_string(None)}; REVOKE ALL ON TABLE {table} FROM PUBLIC; "
        f"IF EXISTS (SELECT FROM pg_roles WHERE rolname = {quote_literal(schema.rw_role)}) THEN "
        f"REVOKE ALL ON TABLE {table} FROM {sql.Identifier(schema.rw_role).as_string(None)}; END IF; "
        "END IF; END $gamedb$"
    )


def ensure_table(connection: Connection, schema: SchemaInfo) -> None:
    """Create the checksum table if missing (committed); one line saying who can when this login can't."""
    try:
        connection.exec_driver_sql(ensure_table_statement(schema))
        connection.commit()
    except DBAPIError as exc:
        connection.rollback()
        if getattr(exc.orig, "sqlstate", None) != "42501":
            raise
        raise VersionTableMissing(
            f"schema {schema.name!r}: its checksum table {VERSION_TABLE_SCHEMA}.{schema.checksum_table} does not "
            "exist and this login may not create it: an admin runs `gamedb roles apply`"
        ) from None


def read_recorded(connection: Connection, schema: SchemaInfo) -> dict[str, Recorded]:
    """The schema's checksum rows ({} when the table is missing)."""
    exists = connection.execute(text("SELECT to_regclass(:t) IS NOT NULL"), {"t": _table_text(schema)}).scalar()
    if not exists:
        return {}
    query = sql.SQL("SELECT revision, checksum, file FROM {}").format(checksum_table(schema)).as_string(None)
    return {rev: Recorded(checksum, file) for rev, checksum, file in connection.execute(text(query))}


def _read_version_rows(connection: Connection, schema: SchemaInfo) -> list[str]:
    query = sql.SQL("SELECT version_num FROM {}").format(sql.Identifier(VERSION_TABLE_SCHEMA, schema.version_table))
    return sorted(connection.execute(text(query.as_string(None))).scalars())


# Bound parameters (:name) are SQLAlchemy's: online they are sent as values, offline (literal_binds)
# written as literals. The only name in the SQL is the table's, quoted by psycopg.
_UPSERT = """
INSERT INTO {table} (revision, checksum, file, reason, replaced_checksum)
VALUES (:revision, :checksum, :file, :reason, :replaced)
ON CONFLICT (revision) DO UPDATE SET checksum = EXCLUDED.checksum, file = EXCLUDED.file, reason = EXCLUDED.reason,
  recorded_at = now(), recorded_by = session_user, recorded_as = current_user,
  replaced_checksum = EXCLUDED.replaced_checksum
"""
_INSERT_NEW = "INSERT INTO {table} (revision, checksum, file, reason) VALUES (:revision, :checksum, :file, :reason)"
_DELETE = "DELETE FROM {table} WHERE revision = :revision"
_MARK_SQUASHED = (
    "UPDATE {table} SET reason = 'squashed', file = :file WHERE revision = :revision AND reason <> 'squashed'"
)
_WHO = "SELECT recorded_by, recorded_as, recorded_at::text FROM {table} WHERE revision = :revision"


def _sql(template: str, schema: SchemaInfo) -> str:
    return sql.SQL(" ".join(template.split())).format(table=checksum_table(schema)).as_string(None)


def guard_run(connection: Connection, schema: SchemaInfo, lookup: Lookup, *, refuse: bool) -> None:
    """Before Alembic starts, under the schema's lock: refuse (with `refuse`) a changed or missing
    applied revision file, changing nothing; else record the applied revisions that have no row yet
    (trust on first sight) and drop rows of revisions no longer applied. Ends with COMMIT."""
    ensure_table(connection, schema)
    rows, recorded = _read_version_rows(connection, schema), read_recorded(connection, schema)
    report = compare_checksums(schema, rows, recorded, lookup)
    if refuse and report.problems:
        connection.rollback()
        refuse_problems([report])
    for revision in report.unrecorded:
        checksum, path = report.checksums[revision]
        connection.execute(
            text(_sql(_INSERT_NEW, schema)),
            {"revision": revision, "checksum": checksum, "file": path.name, "reason": FIRST_SEEN},
        )
    for revision in report.stale:
        connection.execute(text(_sql(_DELETE, schema)), {"revision": revision})
    for revision, file in report.squashed.items():
        if revision in report.checksums:  # the kept revision: the new file's checksum, the old one replaced
            values = {"revision": revision, "checksum": report.checksums[revision][0], "file": file}
            replaced = recorded[revision].checksum
            connection.execute(text(_sql(_UPSERT, schema)), {**values, "reason": SQUASHED, "replaced": replaced})
        else:
            connection.execute(text(_sql(_MARK_SQUASHED, schema)), {"revision": revision, "file": file})
    connection.commit()


def record_step(schema: SchemaInfo) -> Callable[..., None]:
    """Alembic `on_version_apply` callback: write the step's checksum rows in the step's own transaction.

    Online it runs on the migration connection, so the row commits or rolls back with the version
    row; offline (`--sql`) the same statements are written into the script, with literal values.
    """

    def record(ctx: MigrationContext, step: MigrationInfo, heads: set[str], run_args: dict[str, Any]) -> None:
        if step.is_upgrade:
            reason = STAMPED if step.is_stamp else APPLIED
            for revision in step.up_revisions:
                path = Path(revision.path)  # type: ignore[union-attr]  # a Script: it has a file
                values = {"revision": revision.revision, "checksum": file_checksum(path), "file": path.name}
                ctx.execute(text(_sql(_UPSERT, schema)).bindparams(**values, reason=reason, replaced=None))
            return
        for revision in sorted(set(step.up_revision_ids) - set(step.down_revision_ids)):
            ctx.execute(text(_sql(_DELETE, schema)).bindparams(revision=revision))

    return record


# --- repair-checksums -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Accepted:
    """One revision whose current file repair-checksums accepted."""

    revision: str
    file: str
    checksum: str
    replaced: str | None  # the checksum it replaced (None: there was no row)
    recorded_by: str  # session_user: the login that accepted it
    recorded_as: str  # current_user: the role it ran as (the schema's owner role under the role model)
    recorded_at: str
    changed: bool  # False: the row already matched the file


def repair_checksums(engine: Engine, schema: SchemaInfo, index: RevisionIndex, revisions: list[str]) -> list[Accepted]:
    """Accept the current file of each named applied revision (an id or a unique prefix of one) as
    its checksum, under the schema's lock, recording who and when; all or nothing."""
    from gamedb.migrate.session import prepare_migration_session
    from gamedb.server.connections import connect

    with connect(engine) as connection:
        lock = prepare_migration_session(connection, schema, runs_revisions=False)
        try:
            ensure_table(connection, schema)
            recorded = read_recorded(connection, schema)
            applied = dict(applied_revisions(_read_version_rows(connection, schema), index_lookup(index)))
            connection.commit()
            chosen = [_resolve(schema, applied, revision) for revision in revisions]
            accepted = []
            for revision in dict.fromkeys(chosen):
                found = applied[revision]
                assert found is not None  # _resolve refuses a revision without a file
                checksum, row = file_checksum(found.path), recorded.get(revision)
                if row is not None and row.checksum == checksum and row.file == found.path.name:
                    accepted.append(_unchanged(connection, schema, revision, checksum, row))
                    continue
                accepted.append(_accept(connection, schema, revision, checksum, found.path.name, row))
            connection.commit()
            return accepted
        finally:
            lock.release()


def _resolve(schema: SchemaInfo, applied: Mapping[str, Found | None], wanted: str) -> str:
    matches = [revision for revision in applied if revision == wanted] or [r for r in applied if r.startswith(wanted)]
    if len(matches) != 1:
        what = "is not an applied revision" if not matches else f"matches {len(matches)} applied revisions"
        raise ChecksumRepairRefused(
            f"schema {schema.name!r}: {wanted!r} {what} (applied: {', '.join(applied) or 'none'}); nothing changed"
        )
    if applied[matches[0]] is None:
        raise ChecksumRepairRefused(
            f"schema {schema.name!r}: applied revision {matches[0]} has no file to accept; restore it; nothing changed"
        )
    return matches[0]


def _accept(
    connection: Connection, schema: SchemaInfo, revision: str, checksum: str, file: str, row: Recorded | None
) -> Accepted:
    replaced = row.checksum if row is not None else None
    values = {"revision": revision, "checksum": checksum, "file": file, "reason": REPAIRED, "replaced": replaced}
    connection.execute(text(_sql(_UPSERT, schema)), values)
    by, role, at = connection.execute(text(_sql(_WHO, schema)), {"revision": revision}).one()
    return Accepted(revision, file, checksum, replaced, by, role, at, True)


def _unchanged(connection: Connection, schema: SchemaInfo, revision: str, checksum: str, row: Recorded) -> Accepted:
    by, role, at = connection.execute(text(_sql(_WHO, schema)), {"revision": revision}).one()
    return Accepted(revision, row.file, checksum, None, by, role, at, False)
