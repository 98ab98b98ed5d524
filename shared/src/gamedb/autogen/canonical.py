"""The models' server defaults and CHECK constraints as PostgreSQL itself would store them.

Only the server knows its canonical spelling (`jsonb('{}')` is stored as `'{}'::jsonb`,
`now() + interval '30 days'` as `(now() + '30 days'::interval)`). So each table's model defaults and
CHECKs are given to the server on a scratch table with the database column types, inside a savepoint
that is rolled back, and read back with `pg_get_expr` / `pg_get_constraintdef` next to the stored
ones, printed in the same session: equal text means PostgreSQL stores the same thing. No spelling is
ever compared by hand and nothing is evaluated (`gen_random_uuid()` is never called).

One schema costs a few round trips, whatever its size: every scratch table, default and CHECK goes
in one batch; only when the server refuses something is the batch replayed one item per savepoint,
to tell which one (its error is kept, for the drift line).

The scratch tables are temporary; a login without TEMP on the database (gamedb's roles revoke it from
PUBLIC) makes them in the service schema instead, as the schema's owner, rolled back all the same.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from weakref import WeakKeyDictionary

from alembic.autogenerate.api import AutogenContext
from sqlalchemy import CheckConstraint, Column, Connection, DefaultClause, MetaData, Table, text
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DBAPIError
from sqlalchemy.sql import visitors
from sqlalchemy.sql.elements import TextClause

from gamedb.autogen.enums import SCHEMA_OPTION
from gamedb.names import quote_ident, quote_literal, search_path_for

SCRATCH = "gamedb_scratch_"
OWNER_OPTION = "gamedb_owner_role"

CATALOG = text(
    """
SELECT c.relname, a.attname, format_type(a.atttypid, a.atttypmod), a.attidentity <> '' OR a.attgenerated <> '',
       pg_get_expr(d.adbin, d.adrelid),
       pg_get_serial_sequence(quote_ident(n.nspname) || '.' || quote_ident(c.relname), a.attname) IS NOT NULL
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
LEFT JOIN pg_attrdef d ON d.adrelid = c.oid AND d.adnum = a.attnum
WHERE n.nspname = :schema AND c.relkind IN ('r', 'p') AND c.relname = ANY(:tables)
ORDER BY c.relname, a.attnum
"""
)
CHECKS = text(
    """
SELECT c.relname, k.conname, pg_get_constraintdef(k.oid)
FROM pg_constraint k JOIN pg_class c ON c.oid = k.conrelid JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = :schema AND k.contype = 'c' AND c.relname = ANY(:tables)
"""
)
SCRATCH_DEFAULTS = text(
    """
SELECT c.relname, a.attname, pg_get_expr(d.adbin, d.adrelid)
FROM pg_attrdef d JOIN pg_class c ON c.oid = d.adrelid JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = d.adnum
WHERE c.oid = ANY(SELECT to_regclass(x) FROM unnest(CAST(:scratch AS text[])) x)
"""
)
SCRATCH_CHECKS = text(
    """
SELECT c.relname, k.conname, pg_get_constraintdef(k.oid)
FROM pg_constraint k JOIN pg_class c ON c.oid = k.conrelid
WHERE k.contype = 'c' AND c.oid = ANY(SELECT to_regclass(x) FROM unnest(CAST(:scratch AS text[])) x)
"""
)
WHERE_TO = text(
    "SELECT has_database_privilege(current_database(), 'TEMP'), has_schema_privilege(:schema, 'CREATE'),"
    " EXISTS (SELECT FROM pg_roles WHERE rolname = :owner AND pg_has_role(oid, 'MEMBER')),"
    " current_setting('search_path')"
)


@dataclass
class Spelled:
    """One model default or CHECK as PostgreSQL stores it (`text`), or why PostgreSQL refused it."""

    text: str | None = None
    error: str | None = None
    sqlstate: str | None = None


@dataclass
class StoredColumn:
    type: str
    generated: bool  # identity or generated: Alembic compares those
    default: str | None
    serial: bool  # a default that is an owned sequence's nextval (serial, bigserial)


@dataclass
class ModelCheck:
    constraint: CheckConstraint
    name: str | None
    sql: str
    spelled: Spelled = field(default_factory=Spelled)


@dataclass
class CanonicalForms:
    """A schema's stored defaults and CHECKs next to its models' ones, all in PostgreSQL's spelling."""

    columns: dict[tuple[str, str], StoredColumn] = field(default_factory=dict)
    defaults: dict[tuple[str, str], Spelled] = field(default_factory=dict)
    stored_checks: dict[str, dict[str, str]] = field(default_factory=dict)
    # the stored CHECKs parsed once more, and the models' `spelled` too: the spelling they are compared in
    comparable_checks: dict[str, dict[str, str]] = field(default_factory=dict)
    model_checks: dict[str, list[ModelCheck]] = field(default_factory=dict)


def declared_default_sql(default: Any, dialect: Dialect) -> str | None:
    """A server default as SQL text (binds rendered as literals), None when it is not a DefaultClause."""
    if not isinstance(default, DefaultClause):
        return None
    if isinstance(default.arg, str):  # a plain string is a literal value, quoted in the DDL
        return quote_literal(default.arg)
    if isinstance(default.arg, TextClause) and not default.arg._bindparams:
        return default.arg.text  # as written: "'12:00'::time" has no bind parameter in it
    return str(default.arg.compile(dialect=dialect, compile_kwargs={"literal_binds": True}))


def model_checks(table: Table, dialect: Dialect) -> list[ModelCheck]:
    """The CHECK constraints CREATE TABLE would write for `table` on PostgreSQL (a type's too)."""
    # DDLCompiler is typed to need a statement; its base Compiled takes None (compiles nothing up front)
    compiler = dialect.ddl_compiler(dialect, None)  # type: ignore[arg-type]
    found = [c for c in table.constraints if isinstance(c, CheckConstraint)]
    found += [c for column in table.columns for c in column.constraints if isinstance(c, CheckConstraint)]
    checks = []
    for constraint in found:
        rule = constraint._create_rule
        if rule is not None and not rule(compiler):
            continue  # e.g. Boolean(create_constraint=True): PostgreSQL has a real boolean
        name = None
        if constraint.name is not None:  # a naming convention may name an unnamed one; a long name is
            # truncated the way CREATE TABLE does it (a hash suffix at 63 bytes), as the database has it
            try:
                name = dialect.identifier_preparer.format_constraint(constraint)
            except Exception:  # noqa: BLE001 - a convention needing a name the constraint lacks
                name = None
            name = name.strip('"') if name else None
        checks.append(ModelCheck(constraint, name, check_condition_sql(constraint, dialect)))
    return checks


def check_condition_sql(constraint: CheckConstraint, dialect: Dialect) -> str:
    """A CHECK's condition as CREATE TABLE writes it (columns unqualified, binds as literals)."""
    compiler = dialect.ddl_compiler(dialect, None)  # type: ignore[arg-type]  # as in model_checks
    return str(compiler.sql_compiler.process(constraint.sqltext, include_table=False, literal_binds=True))


def referenced_columns(constraint: CheckConstraint) -> set[str]:
    """Names of the columns a CHECK's expression refers to (none known for a text() expression)."""
    return {c.name for c in visitors.iterate(constraint.sqltext) if isinstance(c, Column)}


def canonical_forms(
    connection: Connection, metadata: MetaData, schema: str, owner_role: str | None, dialect: Dialect
) -> CanonicalForms:
    """Every table of `schema` present in both the models and the database, compared in PostgreSQL's spelling."""
    tables = {t.name: t for t in metadata.tables.values() if t.schema == schema}
    forms = CanonicalForms()
    names = sorted(tables)
    for relname, attname, type_, generated, default, serial in connection.execute(
        CATALOG, {"schema": schema, "tables": names}
    ):
        forms.columns[(relname, attname)] = StoredColumn(type_, generated, default, serial)
    for relname, conname, definition in connection.execute(CHECKS, {"schema": schema, "tables": names}):
        forms.stored_checks.setdefault(relname, {})[conname] = definition
    present = sorted(
        relname
        for relname in {relname for relname, _ in forms.columns}
        if relname in forms.stored_checks
        or model_checks(tables[relname], dialect)
        or any(isinstance(c.server_default, DefaultClause) for c in tables[relname].columns)
    )  # a table with no default and no CHECK on either side needs no scratch table
    if not present:
        return forms
    temp, may_create, owner_member, search_path = connection.execute(
        WHERE_TO, {"schema": schema, "owner": owner_role}
    ).one()
    where = "pg_temp" if temp else quote_ident(schema)
    prelude = [f"SET LOCAL search_path TO {search_path_for(schema)}"]
    if not temp and not may_create and owner_member and owner_role is not None:
        prelude.insert(0, f"SET LOCAL ROLE {quote_ident(owner_role)}")
    creates: list[str] = []
    items: list[tuple[tuple[str, str, str], str]] = []  # (kind, table, column or check index), statement
    scratch_names: dict[str, str] = {}
    for number, relname in enumerate(present):
        table = tables[relname]
        scratch = f"{SCRATCH}{number}"
        scratch_names[scratch] = relname
        qualified = f"{where}.{quote_ident(scratch)}"
        columns = [(a, c) for (r, a), c in forms.columns.items() if r == relname]
        creates.append(
            f"CREATE {'TEMP ' if temp else ''}TABLE {qualified} ("
            + ", ".join(f"{quote_ident(a)} {c.type}" for a, c in columns)
            + ")"
        )
        for attname, stored in columns:
            if stored.generated or attname not in table.c:
                continue
            declared = declared_default_sql(table.c[attname].server_default, dialect)
            if declared is not None:
                statement = f"ALTER TABLE {qualified} ALTER COLUMN {quote_ident(attname)} SET DEFAULT {declared}"
                items.append((("default", relname, attname), statement))
        checks = model_checks(table, dialect)
        forms.model_checks[relname] = checks
        for index, check in enumerate(checks):
            statement = f"ALTER TABLE {qualified} ADD CONSTRAINT {quote_ident(f'{SCRATCH}{index}')} CHECK ({check.sql})"
            items.append((("check", relname, str(index)), statement))
    errors = _run_in_scratch(connection, prelude, creates, items, search_path, forms, scratch_names, where)
    for (kind, relname, key), error in errors.items():
        target = (
            forms.defaults.setdefault((relname, key), Spelled())
            if kind == "default"
            else forms.model_checks[relname][int(key)].spelled
        )
        target.error, target.sqlstate = error
    return forms


def _run_in_scratch(
    connection: Connection,
    prelude: list[str],
    creates: list[str],
    items: list[tuple[tuple[str, str, str], str]],
    search_path: str,
    forms: CanonicalForms,
    scratch_names: dict[str, str],
    where: str,
) -> dict[tuple[str, str, str], tuple[str, str | None]]:
    restore = f"SELECT set_config('search_path', {quote_literal(search_path)}, true)"
    scratch = [f"{where}.{quote_ident(name)}" for name in scratch_names]
    savepoint = connection.begin_nested()
    try:
        connection.exec_driver_sql(";\n".join([*prelude, *creates]))
        errors = _batch(connection, items, prelude[-1], restore)
        for relname, attname, expression in connection.execute(SCRATCH_DEFAULTS, {"scratch": scratch}):
            forms.defaults[(scratch_names[relname], attname)] = Spelled(expression)
        by_scratch = {v: k for k, v in scratch_names.items()}
        again: list[tuple[tuple[str, str, str], str]] = []
        for relname, conname, definition in connection.execute(SCRATCH_CHECKS, {"scratch": scratch}):
            table = scratch_names[relname]
            forms.model_checks[table][int(conname.removeprefix(SCRATCH))].spelled = Spelled(definition)
            again.append(((relname, conname, "m"), definition))
        for table, stored in forms.stored_checks.items():
            if table in by_scratch:
                again += [((by_scratch[table], name, "d"), definition) for name, definition in stored.items()]
        _second_pass(connection, again, prelude[-1], restore, forms, scratch_names, where)
    finally:
        savepoint.rollback()
    return errors


def _second_pass(
    connection: Connection,
    definitions: list[tuple[tuple[str, str, str], str]],
    set_path: str,
    restore: str,
    forms: CanonicalForms,
    scratch_names: dict[str, str],
    where: str,
) -> None:
    """Both sides' CHECKs parsed once more and compared in that spelling.

    PostgreSQL's printed form does not always parse back to itself (`kind IN ('a', 'b')` on a varchar
    prints as `= ANY ((ARRAY[...])::text[])`, which parses back as `ANY (ARRAY[(...)::text, ...])`);
    a downgrade that re-creates a dropped CHECK from its printed form must still compare equal.
    """
    items = []
    names: dict[str, tuple[str, str, str]] = {}
    for number, ((relname, name, side), definition) in enumerate(definitions):
        again = f"{SCRATCH}again_{number}"
        names[again] = (relname, name, side)
        items.append(
            (
                (relname, name, side),
                f"ALTER TABLE {where}.{quote_ident(relname)} ADD CONSTRAINT {quote_ident(again)} {definition}",
            )
        )
    _batch(connection, items, set_path, restore)
    scratch = [f"{where}.{quote_ident(name)}" for name in scratch_names]
    for _, conname, definition in connection.execute(SCRATCH_CHECKS, {"scratch": scratch}):
        if conname not in names:
            continue
        relname, name, side = names[conname]
        table = scratch_names[relname]
        if side == "m":
            forms.model_checks[table][int(name.removeprefix(SCRATCH))].spelled.text = definition
        else:
            forms.comparable_checks.setdefault(table, {})[name] = definition


def _batch(
    connection: Connection, items: list[tuple[Any, str]], set_path: str, restore: str
) -> dict[Any, tuple[str, str | None]]:
    """Run `items` (key, statement) under the migration search_path: in one round trip, or when the
    server refuses one, each in its own savepoint; returns key -> (message, SQLSTATE) of the refused."""
    errors: dict[Any, tuple[str, str | None]] = {}
    try:
        with connection.begin_nested():
            connection.exec_driver_sql(";\n".join([set_path, *(s for _, s in items), restore]))
    except DBAPIError:  # something was refused: again one item at a time, to know which
        connection.exec_driver_sql(set_path)
        for key, statement in items:
            try:
                with connection.begin_nested():
                    connection.exec_driver_sql(statement)
            except DBAPIError as exc:
                errors[key] = (_message(exc), getattr(exc.orig, "sqlstate", None))
        connection.exec_driver_sql(restore)
    return errors


def _message(exc: DBAPIError) -> str:
    diag = getattr(exc.orig, "diag", None)
    primary = getattr(diag, "message_primary", None)
    return primary or str(exc.orig).splitlines()[0]


_CACHE: WeakKeyDictionary[Any, CanonicalForms] = WeakKeyDictionary()


def forms_for(autogen_context: AutogenContext) -> CanonicalForms | None:
    """The canonical forms of the run's schema, computed once per comparison run; None outside gamedb's runs."""
    context = autogen_context.migration_context
    schema = context.opts.get(SCHEMA_OPTION)
    metadata = autogen_context.metadata  # gamedb hands one MetaData (Alembic also takes a sequence of them)
    if schema is None or autogen_context.connection is None or not isinstance(metadata, MetaData):
        return None
    if context not in _CACHE:
        dialect = autogen_context.dialect
        assert dialect is not None
        owner = context.opts.get(OWNER_OPTION)
        _CACHE[context] = canonical_forms(
            autogen_context.connection,
            metadata,
            schema,
            owner,
            dialect,
        )
    return _CACHE[context]
