"""Checksums of revisions: a revision edited after it ran is refused, not silently run past.

The record (gamedb.migrate.history, `alembic.gamedb_checksums_<s>`) is append-only: each row is one
event of one revision with the checksum of its file then (`applied`, `stamped`, `first seen`:
applied before gamedb kept checksums, `repaired`: an edit accepted on purpose, `downgraded`,
`stamped down`, `not applied`, `squashed`: `gamedb squash` replaced
its file, see below); a revision's latest row is what is believed of it now. Rows are
written in the revision's own transaction, with its version row.

What is hashed: the revision file's text, normalized only for what editors and git change without
anyone meaning to: a UTF-8 byte-order mark, line endings (CRLF, CR) and whitespace at the end of a
line or of the file, except where a line ends inside a string literal (a multi-line SQL string: its
trailing whitespace is part of what runs; docstrings aside, which never run). Any other edit, a
comment included, changes the checksum. The alternative, the revision's rendered offline SQL, would
ignore edits that change nothing that runs, but costs an Alembic render of every applied revision
(importing each file and its models) on every `status`, which reads revision files as text only; it
also can't see what a revision does through `op.get_bind()`, and its output moves with Alembic and
SQLAlchemy versions, so upgrading either would raise false alarms. Only where string literals start
and end is taken from Python's tokenizer, which every version agrees on. A comment-only edit is one
`gamedb repair-checksums` away. Code a revision imports from its own service is not hashed: `gamedb
lint` refuses such an import (gamedb.lint.imports).

Who checks: `status`, `check`, `check-all`, `upgrade-all` and `move` compare the files with the rows
they read, and every run of env.py that holds the schema's lock compares them again (`guard_run`:
upgrade, downgrade, stamp, current, autogenerate); a `--sql` plan carries the comparison into the
script (`offline_guard_statement`), checked where it is applied. Refused: an applied revision whose
file differs or is gone, a revision recorded once whose file differs now, and an altered record
(a broken or truncated chain). An applied revision never recorded is "not yet recorded": reported,
never refused, and recorded `first seen` by the next run holding the lock.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import psycopg
from psycopg import sql
from sqlalchemy import Connection, text
from sqlalchemy.exc import DBAPIError

from gamedb.errors import AppliedRevisionChanged, ChecksumRepairRefused, VersionTableMissing
from gamedb.migrate import history
from gamedb.migrate.history import UNAPPLIED_REASONS
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
DOWNGRADED, STAMPED_DOWN, NOT_APPLIED = UNAPPLIED_REASONS
# `gamedb squash` replaced the file: the kept revision gets a `squashed` event with the new file's
# checksum (the old one as replaced_checksum); each revision it replaced gets one naming the squash's file
SQUASHED = history.SQUASHED


def normalized_text(data: bytes) -> bytes:
    """A revision file's bytes as they are hashed: no BOM, LF line ends, no trailing whitespace outside
    string literals (a line that ends inside a multi-line string keeps its trailing whitespace: it is
    part of the string, so of what runs)."""
    try:
        decoded = data.decode("utf-8-sig")
    except UnicodeDecodeError:  # not a file Python would import by default: hash it as it is
        return data
    lines = decoded.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    trailing = {number for number, line in enumerate(lines, 1) if line != line.rstrip(" \t\f\v")}
    if trailing:
        inside = _lines_ending_inside_strings("\n".join(lines))
    else:  # no line has whitespace to strip: only whether the text is Python matters (its last newlines go)
        source = "\n".join(lines)
        inside = set() if _parses(source) else _lines_ending_inside_strings(source, docstrings=False)
    if inside is None:  # not Python the tokenizer reads: only line endings and the BOM are normalized
        return "\n".join(lines).encode("utf-8")
    kept = [line if number in inside else line.rstrip(" \t\f\v") for number, line in enumerate(lines, 1)]
    return "\n".join(kept).rstrip("\n").encode("utf-8")


def _parses(source: str) -> bool:
    """Whether Python's parser takes `source`: what it parses the tokenizer reads too, and the parser,
    being C, answers about three times faster (a revision's checksum is taken on every step applied)."""
    import ast
    import warnings

    try:
        with warnings.catch_warnings():  # an invalid escape's SyntaxWarning is Python's to give, on import
            warnings.simplefilter("ignore")
            compile(source, "<revision>", "exec", ast.PyCF_ONLY_AST, dont_inherit=True)
    except (SyntaxError, ValueError):  # ValueError: a null byte
        return False
    return True


def _lines_ending_inside_strings(source: str, *, docstrings: bool = True) -> set[int] | None:
    """Line numbers (1-based) whose end lies inside a string literal; None when the text doesn't tokenize.

    A STRING token (or an f-string, FSTRING_START to FSTRING_END on Python 3.12+) spanning rows
    a..b makes rows a..b-1 end inside it. Only where literals start and end is used, which every
    Python version's tokenizer agrees on. Docstrings are left out (`docstrings=False`: not looked for).
    """
    import io
    import tokenize

    fstring_start = getattr(tokenize, "FSTRING_START", None)
    fstring_end = getattr(tokenize, "FSTRING_END", None)
    inside: set[int] = set()
    opened: list[int] = []
    try:
        for token in tokenize.generate_tokens(io.StringIO(source).readline):
            if token.type == tokenize.STRING:
                inside.update(range(token.start[0], token.end[0]))
            elif fstring_start is not None and token.type == fstring_start:
                opened.append(token.start[0])
            elif fstring_end is not None and token.type == fstring_end and opened:
                inside.update(range(opened.pop(), token.end[0]))
    except (tokenize.TokenError, SyntaxError):
        return None
    return inside - _docstring_lines(source) if docstrings and inside else inside


def _docstring_lines(source: str) -> set[int]:
    """Lines of docstrings (a module's, class's or function's first statement, a string): they never
    run, and Alembic's template writes `Revises: ` with a trailing space that editors strip."""
    import ast

    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError):
        return set()
    lines: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and node.body:
            first = node.body[0]
            if (
                isinstance(first, ast.Expr)
                and isinstance(first.value, ast.Constant)
                and isinstance(first.value.value, str)
            ):
                lines.update(range(first.lineno, (first.end_lineno or first.lineno) + 1))
    return lines


def file_checksum(path: Path) -> str:
    """The checksum of a revision file, `sha256:<hex>` of its normalized text."""
    return f"{ALGORITHM}:{hashlib.sha256(normalized_text(path.read_bytes())).hexdigest()}"


@dataclass(frozen=True)
class Recorded:
    """The latest row of one revision in a schema's record (gamedb.migrate.history)."""

    checksum: str
    file: str  # the file's name in the versions directory when it was recorded
    reason: str = APPLIED

    @property
    def applied(self) -> bool:
        return self.reason not in UNAPPLIED_REASONS


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


def script_files(script: ScriptDirectory) -> dict[str, Path]:
    """Every revision file Alembic loaded for the run: revision id -> path."""
    from alembic.script.revision import RevisionError
    from alembic.util import CommandError

    try:
        return {r.revision: Path(r.path) for r in script.walk_revisions() if getattr(r, "path", None)}
    except (RevisionError, CommandError):  # a cut graph: guard_run reports the missing file itself
        return {}


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
    """One schema's applied revisions compared with its record."""

    schema: str
    problems: list[tuple[str, str]] = field(default_factory=list)  # (revision, one line): changed, gone, altered
    unrecorded: list[str] = field(default_factory=list)  # applied, file present, never recorded
    stale: list[str] = field(default_factory=list)  # recorded as applied, no longer applied
    checksums: dict[str, tuple[str, Path]] = field(default_factory=dict)  # applied revision -> (checksum, file)
    squashed: dict[str, str] = field(default_factory=dict)  # revision -> file name: rows to record as squashed


def _edited(schema: SchemaInfo, revision: str, path: Path, applied: bool) -> tuple[str, str]:
    when = "after it was applied" if applied else "after it was recorded (applied once, now un-applied)"
    what = "applied revision" if applied else "revision"
    return (
        revision,
        f"schema {schema.name!r}: {what} {revision} was edited {when}: {path} differs from the checksum "
        f"recorded for it; restore the file, or accept the change with gamedb repair-checksums "
        f"-x schema={schema.name} {revision}",
    )


def compare_checksums(
    schema: SchemaInfo,
    version_rows: list[str],
    recorded: Mapping[str, Recorded],
    lookup: Lookup,
    files: Mapping[str, Path] | None = None,
    chain: str | None = None,
) -> ChecksumReport:
    """What differs between the revision files and the schema's record: an applied revision edited or
    gone, a revision recorded once (now un-applied) whose file was edited since (`files`: every
    revision file), and a record that was altered (`chain`: gamedb.migrate.history.chain_problem).
    A database inside a squashed range is refused; one whose rows were written by the files a squash
    replaced is recognised (`squashed`: the events guard_run appends)."""
    from gamedb.migrate.squash_markers import squash_markers

    report = ChecksumReport(schema.name)
    if chain is not None:
        report.problems.append(("", f"schema {schema.name!r}: {chain}; nothing was run or recorded"))
    applied = applied_revisions(version_rows, lookup)
    walked = {revision for revision, _ in applied}
    # squash markers are read from the files only when something looks wrong (a missing file, a changed
    # checksum, rows of revisions not applied): a database whose rows match costs no extra pass
    sums = {revision: file_checksum(found.path) for revision, found in applied if found is not None}
    suspicious = (
        len(sums) < len(applied)
        or any(r not in walked and row.applied for r, row in recorded.items())
        or any(recorded[r].checksum != checksum for r, checksum in sums.items() if r in recorded)
    )
    markers = squash_markers(schema.versions_dir) if suspicious else {}
    replaced_by = {old: marker for marker in markers.values() for old in marker.replaced if old != marker.revision}
    for revision, found in applied:
        row = recorded.get(revision)
        if found is None and revision in replaced_by:
            squash = replaced_by[revision]
            report.problems.append(
                (
                    revision,
                    f"schema {schema.name!r} is at revision {revision}, which gamedb squash replaced by "
                    f"{squash.revision} ({squash.path.name}): upgrade it to {squash.revision} with a checkout from "
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
        marker = markers.get(revision)
        if row is not None and row.checksum != checksum and marker and marker.checksums.get(revision) == row.checksum:
            # recorded by the file the squash replaced: guard_run appends the `squashed` events
            report.squashed[revision] = found.path.name
            for replaced in marker.replaced:
                if replaced != revision and replaced in recorded and recorded[replaced].reason != SQUASHED:
                    report.squashed[replaced] = found.path.name
        elif row is not None and row.checksum != checksum:
            report.problems.append(_edited(schema, revision, found.path, applied=True))
        elif row is None or not row.applied:  # never recorded, or recorded un-applied (below a stamped revision)
            report.unrecorded.append(revision)
    for revision, path in sorted((files or {}).items()):
        row = recorded.get(revision)
        if revision not in walked and row is not None and row.checksum != file_checksum(path):
            report.problems.append(_edited(schema, revision, path, applied=False))
    # a `repaired` row says nothing of being applied (an un-applied revision's edit may be accepted); the
    # rows of revisions a squash replaced stay as history (their files are gone, the squash is applied)
    report.stale = sorted(
        r
        for r, row in recorded.items()
        if r not in walked and row.applied and row.reason != REPAIRED and r not in replaced_by
    )
    return report


def refuse_problems(reports: list[ChecksumReport]) -> None:
    """Raise AppliedRevisionChanged with the first problem found (and how many more) if there is any."""
    problems = [problem for report in reports for problem in report.problems]
    if not problems:
        return
    (_, first), rest = problems[0], problems[1:]
    more = f" (and {len(rest)} more: {', '.join(revision or 'the record' for revision, _ in rest)})" if rest else ""
    raise AppliedRevisionChanged(first + more)


def check_fleet(
    schemas: list[SchemaInfo],
    versions: Mapping[str, list[str]],
    recorded: Mapping[str, Mapping[str, Recorded]],
    indexes: Mapping[str, RevisionIndex],
    chains: Mapping[str, str | None] | None = None,
) -> dict[str, list[str]]:
    """status / check / check-all / upgrade-all / move: refuse any changed or missing revision file and
    any altered record; return each schema's applied revisions that were never recorded."""
    reports = [
        compare_checksums(
            info,
            versions[info.name],
            recorded.get(info.name, {}),
            index_lookup(indexes[info.name]),
            indexes[info.name].files,
            (chains or {}).get(info.name),
        )
        for info in schemas
    ]
    refuse_problems(reports)
    return {report.schema: report.unrecorded for report in reports}


# --- the table (gamedb.migrate.history) -----------------------------------------------------------


def checksum_table(schema: SchemaInfo) -> sql.Identifier:
    """`alembic.gamedb_checksums_<s>`, quoted."""
    return sql.Identifier(VERSION_TABLE_SCHEMA, schema.checksum_table)


def _table_text(schema: SchemaInfo) -> str:
    return checksum_table(schema).as_string(None)


def ensure_table_statement(schema: SchemaInfo) -> str:
    """Create the schema's record when missing, or convert an old-form table (gamedb.migrate.history).

    A DO block: CREATE TABLE IF NOT EXISTS would need CREATE on schema `alembic` even when the table
    exists, which `<s>_owner` has not under the role model (`roles apply` creates the record). The
    owner's role-wide default privileges give `<s>_rw` DML on any table it creates: revoked here.
    """
    return history.ensure_statement(schema.name, schema.checksum_table, schema.rw_role)


def ensure_table(connection: Connection, schema: SchemaInfo, *, commit: bool = True) -> None:
    """Create or convert the record if needed (committed unless `commit` is False: the caller's
    transaction goes on); one line saying who can when this login can't."""
    try:
        cursor = connection.connection.cursor()  # no parameters: the block's % signs stay as written
        try:
            cursor.execute(ensure_table_statement(schema))
        finally:
            cursor.close()
        if commit:
            connection.commit()
    except (DBAPIError, psycopg.Error) as exc:
        connection.rollback()
        if getattr(getattr(exc, "orig", exc), "sqlstate", None) != "42501":
            raise
        # what was there, read again only to say why (the block changed nothing)
        is_old = connection.execute(text(history.is_old_form_sql(schema.checksum_table))).scalar()
        outdated = connection.execute(text(history.function_outdated_sql(schema.name))).scalar()
        where = f"{VERSION_TABLE_SCHEMA}.{schema.checksum_table}"
        if (
            not is_old
            and outdated
            and connection.execute(text("SELECT to_regclass(:t) IS NOT NULL"), {"t": _table_text(schema)}).scalar()
        ):
            function = f"{VERSION_TABLE_SCHEMA}.{history.function_name(schema.name)}"
            raise VersionTableMissing(
                f"schema {schema.name!r}: the function that writes its checksum record, {function}, is of an "
                "earlier gamedb (it can't record a squash) and this login may not replace it: an admin runs "
                "`gamedb roles apply`"
            ) from None
        state = "is in the form of an earlier gamedb (no hash chain)" if is_old else "does not exist"
        raise VersionTableMissing(
            f"schema {schema.name!r}: its checksum table {where} {state} and this login may not "
            f"{'convert' if is_old else 'create'} it: an admin runs `gamedb roles apply`"
            + (" (it converts the table, keeping its rows)" if is_old else "")
        ) from None


def read_recorded(connection: Connection, schema: SchemaInfo) -> tuple[dict[str, Recorded], str | None]:
    """The latest row of each revision in the schema's record, and why the record can't be trusted
    (None: it can). ({}, None) when the table is missing or in the old form."""
    exists = connection.execute(text(history.is_old_form_sql(schema.checksum_table))).scalar()
    if connection.execute(text("SELECT to_regclass(:t) IS NULL"), {"t": _table_text(schema)}).scalar() or exists:
        return {}, None
    _, recorded, chain = _read_run_state(connection, schema)
    return recorded, chain


def _read_run_state(connection: Connection, schema: SchemaInfo) -> tuple[list[str], dict[str, Recorded], str | None]:
    """In one request: the version rows, the latest row of each revision in the record (which must
    exist in the new form), and why the record can't be trusted (None: it can)."""
    table = _table_text(schema)
    versions = sql.Identifier(VERSION_TABLE_SCHEMA, schema.version_table).as_string(None)
    query = (
        f"SELECT (SELECT coalesce(array_agg(version_num ORDER BY version_num), '{{}}') FROM {versions}),"
        " (SELECT coalesce(jsonb_object_agg(revision, jsonb_build_array(checksum, file, reason)), '{}') FROM ("
        + history.LATEST.format(table=table)
        + ") latest), (SELECT to_jsonb(c) FROM ("
        + history.CHAIN_CHECK.format(table=table, table_literal=quote_literal(table))
        + ") c)"
    )
    rows, latest, chain = connection.execute(text(query.replace(":", r"\:"))).one()
    recorded = {revision: Recorded(*fields) for revision, fields in latest.items()}
    return list(rows), recorded, history.chain_problem(schema.checksum_table, **chain)


def verify_history(connection: Connection, schema: SchemaInfo, index: RevisionIndex) -> None:
    """Refuse (AppliedRevisionChanged) when the schema's record on this connection's server was altered
    or a revision file differs from it; reads only (what `gamedb move` checks on its source first)."""
    recorded, chain = read_recorded(connection, schema)
    rows = _read_version_rows(connection, schema)
    connection.rollback()
    refuse_problems([compare_checksums(schema, rows, recorded, index_lookup(index), index.files, chain)])


def _read_version_rows(connection: Connection, schema: SchemaInfo) -> list[str]:
    query = sql.SQL("SELECT version_num FROM {}").format(sql.Identifier(VERSION_TABLE_SCHEMA, schema.version_table))
    return sorted(connection.execute(text(query.as_string(None))).scalars())


def guard_run(connection: Connection, schema: SchemaInfo, lookup: Lookup, files: Mapping[str, Path]) -> None:
    """Before Alembic starts, under the schema's lock: refuse a changed or missing revision file or an
    altered record, changing nothing; else record the applied revisions never recorded (trust on
    first sight), the `squashed` events of a squash the record has not seen yet, and mark those no
    longer applied as such. Ends with COMMIT."""
    ensure_table(connection, schema, commit=False)  # the same transaction reads what it made
    rows, recorded, chain = _read_run_state(connection, schema)
    report = compare_checksums(schema, rows, recorded, lookup, files, chain)
    if report.problems:
        connection.commit()  # only reads since ensure_table: what it made or converted is kept, as it would be alone
        refuse_problems([report])
    events = []
    for revision, file in report.squashed.items():
        row = recorded[revision]
        if revision in report.checksums:  # the kept revision: the new file's checksum, the old one replaced
            events.append(Event(revision, SQUASHED, report.checksums[revision][0], file, row.checksum))
        else:  # a revision the squash replaced: its checksum stays, its file is now the squash's
            events.append(Event(revision, SQUASHED, row.checksum, file))
    for revision in report.unrecorded:
        checksum, path = report.checksums[revision]
        events.append(Event(revision, FIRST_SEEN, checksum, path.name))
    for revision in report.stale:
        row = recorded[revision]
        events.append(Event(revision, NOT_APPLIED, row.checksum, row.file))
    if events:  # one statement appends them all, in this order
        connection.execute(text(history.record_many_sql(schema.name, len(events))), event_values(events))
    connection.commit()


@dataclass(frozen=True)
class Event:
    """One row to append to a schema's record."""

    revision: str
    reason: str
    checksum: str
    file: str
    replaced: str | None = None


def step_events(step: MigrationInfo) -> list[Event]:
    """The record's rows for one step Alembic applied: each revision it applied, stamped, or took away."""
    from alembic.script.revision import Revision

    ups = [r for r in step.up_revisions if isinstance(r, Revision)]  # never "base" or None: those are not steps
    if step.is_upgrade:
        reason, revisions = (STAMPED if step.is_stamp else APPLIED), ups
    else:
        gone = set(step.up_revision_ids) - set(step.down_revision_ids)
        reason = STAMPED_DOWN if step.is_stamp else DOWNGRADED
        revisions = sorted((r for r in ups if r.revision in gone), key=lambda r: r.revision)
    events = []
    for revision in revisions:
        path = Path(getattr(revision, "path"))  # noqa: B009  # a Script (a Revision with its file)
        events.append(Event(revision.revision, reason, file_checksum(path), path.name))
    return events


def event_values(events: list[Event]) -> dict[str, str | None]:
    """Bound values of history.record_many_sql: `revision_<i>`, `reason_<i>`... for each event in order."""
    values: dict[str, str | None] = {}
    for i, event in enumerate(events):
        values |= {f"revision_{i}": event.revision, f"reason_{i}": event.reason, f"checksum_{i}": event.checksum}
        values |= {f"file_{i}": event.file, f"replaced_{i}": event.replaced}
    return values


def record_step(schema: SchemaInfo) -> Callable[..., None]:
    """Alembic `on_version_apply` callback: append the step's rows in the step's own transaction.

    Offline (`--sql`) the calls are written into the script, with literal values. Online, a run under
    the schema's lock appends them with its other checks in one statement (gamedb.migrate.step_gate),
    on the migration connection, so the rows commit or roll back with the version row.
    """
    call = history.record_sql(schema.name)

    def record(ctx: MigrationContext, step: MigrationInfo, heads: set[str], run_args: dict[str, Any]) -> None:
        for event in step_events(step):
            values = {"revision": event.revision, "checksum": event.checksum, "file": event.file}
            ctx.execute(text(call).bindparams(**values, reason=event.reason, replaced=event.replaced))

    return record


def offline_guard_statement(schema: SchemaInfo, files: Mapping[str, Path]) -> str:
    """For a `--sql` plan: a DO block that stops the script (before anything runs) when the database it
    is applied to recorded one of these revisions with another checksum than the plan's file had, or
    has an applied revision the plan has no file for. The plan is checked where it runs, not where it
    was written."""
    table = _table_text(schema)
    known = sql.Literal(sorted(files)).as_string(None)
    sums = sql.Literal([file_checksum(files[r]) for r in sorted(files)]).as_string(None)
    paths = sql.Literal([str(files[r]) for r in sorted(files)]).as_string(None)
    fix = f"gamedb repair-checksums -x schema={schema.name} "
    versions = quote_literal(sql.Identifier(VERSION_TABLE_SCHEMA, schema.version_table).as_string(None))
    not_applied = ", ".join(quote_literal(x) for x in (*UNAPPLIED_REASONS, SQUASHED))
    # a recorded revision with no file matters only while the version table holds it (online, such a
    # revision is marked `not applied` before Alembic starts: guard_run)
    return f"""DO $gamedb$ DECLARE r record; in_versions boolean; BEGIN
IF to_regclass({quote_literal(table)}) IS NULL OR NOT EXISTS (SELECT FROM pg_attribute
   WHERE attrelid = to_regclass({quote_literal(table)}) AND attname = 'row_hash') THEN RETURN; END IF;
FOR r IN SELECT l.revision, l.checksum, l.reason, p.sum, p.path FROM (
    SELECT DISTINCT ON (revision) revision, checksum, reason FROM {table} WHERE revision <> ''
    ORDER BY revision, seq DESC) l
  LEFT JOIN unnest({known}::text[], {sums}::text[], {paths}::text[]) p(revision, sum, path) USING (revision)
LOOP
  in_versions := false;
  IF r.path IS NULL AND to_regclass({versions}) IS NOT NULL THEN
    EXECUTE 'SELECT EXISTS (SELECT FROM ' || {versions} || ' WHERE version_num = $1)' INTO in_versions
      USING r.revision;
  END IF;
  IF r.path IS NULL AND in_versions AND r.reason NOT IN ({not_applied}) THEN
    RAISE EXCEPTION USING MESSAGE = 'schema ' || {quote_literal(schema.name)} || ': applied revision ' || r.revision
      || ' has no file in this plan; restore it';
  ELSIF r.path IS NOT NULL AND r.sum <> r.checksum THEN
    RAISE EXCEPTION USING MESSAGE = 'schema ' || {quote_literal(schema.name)} || ': revision ' || r.revision
      || ' was edited after it was recorded: ' || r.path || ' differs from the checksum recorded for it; '
      || 'restore the file, or accept the change with {fix}' || r.revision;
  END IF;
END LOOP; END $gamedb$"""


# --- repair-checksums -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Accepted:
    """One revision whose current file repair-checksums accepted."""

    revision: str
    file: str
    checksum: str
    replaced: str | None  # the checksum it replaced (None: there was no row)
    recorded_by: str  # session_user: the login that accepted it
    recorded_as: str  # the role it ran as (the schema's owner role under the role model)
    recorded_at: str
    changed: bool  # False: the row already matched the file


_WHO = (
    "SELECT recorded_by, recorded_as, recorded_at::text FROM {table} WHERE revision = :revision"
    " ORDER BY seq DESC LIMIT 1"
)


def repair_checksums(engine: Engine, schema: SchemaInfo, index: RevisionIndex, revisions: list[str]) -> list[Accepted]:
    """Accept the current file of each named revision (an id or a unique prefix of one; applied, or
    recorded once) as its checksum, under the schema's lock, recording who and when; all or nothing.
    The record keeps the rows before: an accepted edit stays visible."""
    from gamedb.migrate.session import prepare_migration_session
    from gamedb.server.connections import connect

    with connect(engine) as connection:
        lock = prepare_migration_session(connection, schema, runs_revisions=False)
        try:
            ensure_table(connection, schema)
            recorded, chain = read_recorded(connection, schema)
            if chain is not None:
                raise ChecksumRepairRefused(f"schema {schema.name!r}: {chain}; nothing changed")
            applied = dict(applied_revisions(_read_version_rows(connection, schema), index_lookup(index)))
            for revision in recorded:
                if revision not in applied and revision in index.files:
                    applied[revision] = Found(index.parents[revision], index.files[revision])
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
    connection.execute(text(history.record_sql(schema.name)), values)
    by, role, at = connection.execute(text(_WHO.format(table=_table_text(schema))), {"revision": revision}).one()
    return Accepted(revision, file, checksum, replaced, by, role, at, True)


def _unchanged(connection: Connection, schema: SchemaInfo, revision: str, checksum: str, row: Recorded) -> Accepted:
    by, role, at = connection.execute(text(_WHO.format(table=_table_text(schema))), {"revision": revision}).one()
    return Accepted(revision, row.file, checksum, None, by, role, at, False)
