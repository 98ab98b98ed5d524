"""Declared objects (gamedb.objects) versus the schema: views, materialized views, functions and
procedures, triggers, policies, rules and RLS flags.

Definitions are compared as PostgreSQL prints them (pg_get_viewdef, pg_get_functiondef,
pg_get_triggerdef, pg_policies), never as typed: inside a savepoint that is always rolled back, the
schema's objects of these kinds are dropped and the declared ones created in their order (as the
schema's owner role when the login may use it, with the revisions' search_path), then read back.
That briefly takes the locks CREATE TRIGGER / CREATE POLICY take on the tables concerned, within
the session's lock_timeout. Every object of these kinds in the schema that nothing declares is a
difference too, and autogenerate drops it (its downgrade recreates it as PostgreSQL printed it).

Registered as an Alembic comparator that acts only in runs gamedb configured, on that schema.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import partial
from typing import Any

from alembic.autogenerate import comparators, renderers
from alembic.autogenerate.api import AutogenContext
from alembic.operations import ops
from alembic.util import DispatchPriority
from sqlalchemy import Column, Connection, MetaData, Table, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.types import SchemaType

from gamedb.autogen.enums import SCHEMA_OPTION, EnumOp
from gamedb.errors import DiscoveryError
from gamedb.names import quote_ident, search_path_for
from gamedb.objects import DeclaredObject, Function, RowSecurity, declared_objects, row_security_statements
from gamedb.timeouts import lock_timeout

IN_MODELS = "is in the models, not in the database"
IN_DATABASE = "is in the database, not in the models"

VIEWS = text(
    "SELECT c.relname, c.relkind::text, pg_get_viewdef(c.oid), array_to_string(c.reloptions, ','),"
    " (SELECT string_agg(pg_get_indexdef(i.indexrelid), ';\n' ORDER BY i.indexrelid::regclass::text)"
    "  FROM pg_index i WHERE i.indrelid = c.oid)"
    " FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
    " WHERE n.nspname = :schema AND c.relkind IN ('v', 'm') ORDER BY c.oid"
)
FUNCTIONS = text(
    "SELECT format('%I(%s)', p.proname, pg_get_function_identity_arguments(p.oid)), p.prokind::text,"
    " pg_get_functiondef(p.oid)"
    " FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace"
    " WHERE n.nspname = :schema AND p.prokind IN ('f', 'p', 'w')"
    " AND NOT EXISTS (SELECT FROM pg_depend d WHERE d.classid = 'pg_proc'::regclass AND d.objid = p.oid"
    "                 AND d.deptype = 'e')"
    " ORDER BY p.oid"
)
TRIGGERS = text(
    "SELECT t.tgname, c.relname, pg_get_triggerdef(t.oid), t.tgenabled::text"
    " FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid JOIN pg_namespace n ON n.oid = c.relnamespace"
    " WHERE n.nspname = :schema AND NOT t.tgisinternal AND t.tgparentid = 0 ORDER BY t.oid"
)
POLICIES = text(
    "SELECT policyname, tablename, permissive, array_to_string(roles, ','), cmd, qual, with_check"
    " FROM pg_policies WHERE schemaname = :schema ORDER BY tablename, policyname"
)
RULES = text("SELECT rulename, tablename, definition FROM pg_rules WHERE schemaname = :schema ORDER BY 2, 1")
ROW_SECURITY = text(
    "SELECT c.relname, c.relrowsecurity, c.relforcerowsecurity"
    " FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
    " WHERE n.nspname = :schema AND c.relkind IN ('r', 'p') ORDER BY c.relname"
)
OWNER_ROLE = text(
    "SELECT rolname FROM pg_roles WHERE rolname = :owner"
    " AND rolname <> current_user AND pg_has_role(current_user, oid, 'MEMBER')"
)


@dataclass(frozen=True)
class Found:
    """One object of the schema as PostgreSQL prints it: what identifies it, its definition, and the
    statements that drop and make it again."""

    kind: str
    identity: str
    definition: str
    create: tuple[str, ...]
    drop: tuple[str, ...]

    @property
    def key(self) -> tuple[str, str]:
        return (self.kind, self.identity)

    def label(self, schema: str) -> str:
        if " on " in self.identity:
            name, table = self.identity.split(" on ", 1)
            return f"{self.kind} {name} on {schema}.{table}"
        return f"{self.kind} {schema}.{self.identity}"


def _q(schema: str, name: str) -> str:
    return f"{quote_ident(schema)}.{quote_ident(name)}"


def read_objects(connection: Connection, schema: str) -> dict[tuple[str, str], Found]:
    """Every view, materialized view, function, procedure, trigger, policy and rule of `schema`
    (extension members, internal and partition-clone triggers aside), keyed by (kind, identity)."""
    found: list[Found] = []
    params = {"schema": schema}
    for name, relkind, body, options, indexes in connection.execute(VIEWS, params):
        body = body.strip().rstrip(";")
        if relkind == "v":
            with_options = f" WITH ({options})" if options else ""
            create = (f"CREATE VIEW {_q(schema, name)}{with_options} AS {body}",)
            found.append(Found("view", name, f"{body}\n{options or ''}", create, (f"DROP VIEW {_q(schema, name)}",)))
        else:
            index_list = tuple(indexes.split(";\n")) if indexes else ()
            create = (f"CREATE MATERIALIZED VIEW {_q(schema, name)} AS {body} WITH DATA", *index_list)
            found.append(
                Found(
                    "materialized view",
                    name,
                    f"{body}\n{indexes or ''}",
                    create,
                    (f"DROP MATERIALIZED VIEW {_q(schema, name)}",),
                )
            )
    for identity, prokind, body in connection.execute(FUNCTIONS, params):
        kind = "procedure" if prokind == "p" else "function"
        found.append(
            Found(kind, identity, body, (body.strip(),), (f"DROP {kind.upper()} {quote_ident(schema)}.{identity}",))
        )
    for name, table, body, enabled in connection.execute(TRIGGERS, params):
        trigger_creates = [body]
        if enabled != "O":  # disabled, or firing only on replica / always: part of what it does
            mode = {"D": "DISABLE", "R": "ENABLE REPLICA", "A": "ENABLE ALWAYS"}[enabled]
            trigger_creates.append(f"ALTER TABLE {_q(schema, table)} {mode} TRIGGER {quote_ident(name)}")
        drop = (f"DROP TRIGGER {quote_ident(name)} ON {_q(schema, table)}",)
        found.append(Found("trigger", f"{name} on {table}", f"{body}\n{enabled}", tuple(trigger_creates), drop))
    for name, table, permissive, roles, command, using, with_check in connection.execute(POLICIES, params):
        role_list = ", ".join(r.upper() if r == "public" else quote_ident(r) for r in roles.split(","))
        policy = (
            f"CREATE POLICY {quote_ident(name)} ON {_q(schema, table)} AS {permissive} FOR {command} TO {role_list}"
            + (f" USING ({using})" if using is not None else "")
            + (f" WITH CHECK ({with_check})" if with_check is not None else "")
        )
        drop = (f"DROP POLICY {quote_ident(name)} ON {_q(schema, table)}",)
        found.append(Found("policy", f"{name} on {table}", policy, (policy,), drop))
    for name, table, body in connection.execute(RULES, params):
        drop = (f"DROP RULE {quote_ident(name)} ON {_q(schema, table)}",)
        found.append(Found("rule", f"{name} on {table}", body, (body.strip().rstrip(";"),), drop))
    return {f.key: f for f in found}


def read_row_security(connection: Connection, schema: str) -> dict[str, tuple[bool, bool]]:
    """Table -> (RLS enabled, RLS forced) for every table of `schema`."""
    return {name: (bool(on), bool(forced)) for name, on, forced in connection.execute(ROW_SECURITY, {"schema": schema})}


class ObjectOp(ops.MigrateOperation):
    """One change to a declared object: the statements that make it, those that undo it, and the line
    `check` prints. `early` ops run before the revision's table changes, the others after them."""

    def __init__(self, line: str, up: Iterable[str], down: Iterable[str], undo_line: str, *, early: bool) -> None:
        self.line = line
        self.up = tuple(up)
        self.down = tuple(down)
        self.undo_line = undo_line
        self.early = early

    def reverse(self) -> ObjectOp:
        return ObjectOp(self.undo_line, self.down, self.up, self.line, early=not self.early)

    def to_diff_tuple(self) -> tuple[Any, ...]:
        return ("gamedb_object", self.line)


@renderers.dispatch_for(ObjectOp)
def _render(autogen_context: AutogenContext, op: ObjectOp) -> str:
    lines = [f"# {op.line}"]
    lines += [f"op.execute({_escape_binds(statement)!r})" for statement in op.up]
    return "\n".join(lines)


def _escape_binds(statement: str) -> str:
    # op.execute() of a string goes through text(): a `:name` inside a body would become a bind parameter
    out, i = [], 0
    while i < len(statement):
        char = statement[i]
        if char == ":" and i + 1 < len(statement) and (statement[i + 1].isalnum() or statement[i + 1] == "_"):
            if i == 0 or statement[i - 1] not in ":\\":
                out.append("\\:")
                i += 1
                continue
        out.append(char)
        i += 1
    return "".join(out)


class DeclaredObjectFailed(DiscoveryError):
    """A declared object's SQL is refused by the server (the line names the object and the error)."""

    exit_code = 1


def simulate(
    connection: Connection,
    schema: str,
    metadata: MetaData | None,
    declared: tuple[DeclaredObject, ...],
    existing: dict[tuple[str, str], Found],
) -> dict[tuple[str, str], Found]:
    """The declared objects as PostgreSQL prints them, keyed by their declaration's key.

    Runs inside a savepoint that is rolled back: nothing of it stays. The models' tables and columns
    missing from the database are made first (a view may read a table of the same revision).
    """
    identities: dict[tuple[str, str], tuple[str, str]] = {}
    savepoint = connection.begin_nested()
    try:
        # the drops and creates below lock tables briefly: never wait behind an app's transaction for long
        connection.execute(text("SELECT set_config('lock_timeout', :timeout, true)"), {"timeout": lock_timeout()})
        owner = connection.execute(OWNER_ROLE, {"owner": f"{schema}_owner"}).scalar()
        if owner is not None:
            connection.execute(text("SELECT set_config('role', :owner, true)"), {"owner": owner})
        for found in _drop_sorted(existing.values()):
            for statement in found.drop:  # one owned by another role stays (it is reported all the same)
                drop = text(_escape_binds(_if_exists(statement) + " CASCADE"))
                _quietly(connection, partial(connection.execute, drop))
        functions = [o for o in declared if isinstance(o, Function)]
        for function in functions:
            before = _function_identities(connection, schema)
            _create(connection, schema, function)
            new = _function_identities(connection, schema) - before
            if len(new) == 1:
                identities[function.key] = (function.kind, new.pop())
        if metadata is not None:
            _make_missing_tables(connection, schema, metadata)
        for obj in declared:
            if not isinstance(obj, (Function, RowSecurity)):
                _create(connection, schema, obj)
                identities[obj.key] = obj.key
        now = read_objects(connection, schema)
    finally:
        savepoint.rollback()
    return {key: now[found] for key, found in identities.items() if found in now}


FUNCTION_IDS = text(
    "SELECT format('%I(%s)', p.proname, pg_get_function_identity_arguments(p.oid))"
    " FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname = :schema"
)


def _function_identities(connection: Connection, schema: str) -> set[str]:
    return {identity for (identity,) in connection.execute(FUNCTION_IDS, {"schema": schema})}


def _create(connection: Connection, schema: str, obj: DeclaredObject) -> None:
    try:
        for statement in obj.create_statements(schema, with_data=False):
            with connection.begin_nested():
                connection.execute(text(_escape_binds(statement)))
    except DBAPIError as exc:
        _refuse_lock_timeout(exc)
        message = str(exc.orig).strip().splitlines()[0] if exc.orig is not None else str(exc)
        raise DeclaredObjectFailed(
            f"schema {schema!r}: declared {obj.key[0]} {obj.key[1]} can't be created: {message}"
        ) from None


COLUMNS = text(
    "SELECT c.relname, a.attname FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid"
    " JOIN pg_namespace n ON n.oid = c.relnamespace"
    " WHERE n.nspname = :schema AND c.relkind IN ('r', 'p') AND a.attnum > 0 AND NOT a.attisdropped"
)


def _make_missing_tables(connection: Connection, schema: str, metadata: MetaData) -> None:
    """What a declared object may read that only the models have yet: missing tables, then missing columns.

    Best effort, each in its own savepoint: what can't be made here makes the object that needs it fail
    with its own error."""
    columns: dict[str, set[str]] = {}
    for table, column in connection.execute(COLUMNS, {"schema": schema}):
        columns.setdefault(table, set()).add(column)
    missing = [t for t in metadata.sorted_tables if t.schema == schema and t.name not in columns]
    for table in missing:
        _quietly(connection, partial(table.create, connection, checkfirst=False))
    for table in metadata.sorted_tables:
        for column in table.columns:
            if table.name in columns and column.name not in columns[table.name]:
                _quietly(connection, partial(_add_column, connection, schema, table, column))


def _add_column(connection: Connection, schema: str, table: Table, column: Column[Any]) -> None:
    if isinstance(column.type, SchemaType):
        column.type.create(connection, checkfirst=True)  # a new enum type
    kind = column.type.compile(dialect=connection.dialect)
    connection.execute(text(f"ALTER TABLE {_q(schema, table.name)} ADD COLUMN {quote_ident(column.name)} {kind}"))


def _quietly(connection: Connection, action: Callable[[], Any]) -> None:
    try:
        with connection.begin_nested():
            action()
    except DBAPIError as exc:
        _refuse_lock_timeout(exc)


LOCK_NOT_AVAILABLE = "55P03"


def _refuse_lock_timeout(exc: DBAPIError) -> None:
    if getattr(exc.orig, "sqlstate", None) == LOCK_NOT_AVAILABLE:
        raise DeclaredObjectFailed(
            f"comparing declared objects waited longer than lock_timeout ({lock_timeout()}) for a table "
            "an open transaction holds; nothing was changed: try again"
        ) from None


def _if_exists(statement: str) -> str:
    for kind in ("MATERIALIZED VIEW", "VIEW", "FUNCTION", "PROCEDURE", "TRIGGER", "POLICY", "RULE"):
        prefix = f"DROP {kind} "
        if statement.startswith(prefix):
            return f"{prefix}IF EXISTS {statement[len(prefix) :]}"
    return statement


DROP_ORDER = ("rule", "policy", "trigger", "view", "materialized view", "function", "procedure")


def _drop_sorted(found: Iterable[Found]) -> list[Found]:
    """Dependents first: by kind, and within a kind the newest first (read_objects lists by oid)."""
    listed = list(found)
    return sorted(listed, key=lambda f: (DROP_ORDER.index(f.kind), -listed.index(f)))


def object_ops(
    connection: Connection, schema: str, metadata: MetaData | None, declared: tuple[DeclaredObject, ...]
) -> list[ObjectOp]:
    """The operations that turn the schema's objects into the declared ones, in the order they run."""
    savepoint = connection.begin_nested()
    try:
        connection.execute(text("SELECT set_config('search_path', :path, true)"), {"path": search_path_for(schema)})
        existing = read_objects(connection, schema)
        flags = read_row_security(connection, schema)
        simulated = any(not isinstance(o, RowSecurity) for o in declared)
        printed = simulate(connection, schema, metadata, declared, existing) if simulated else {}
    finally:
        savepoint.rollback()
    early_drops: list[ObjectOp] = []
    early: list[ObjectOp] = []
    late: list[ObjectOp] = []
    late_drops: list[ObjectOp] = []
    matched: set[tuple[str, str]] = set()
    for obj in declared:
        if isinstance(obj, RowSecurity):
            continue
        made = printed.get(obj.key)
        if made is None:
            raise DeclaredObjectFailed(
                f"schema {schema!r}: declared {obj.key[0]} {obj.key[1]} was not found after creating it "
                "(is its name or table the one declared?)"
            )
        matched.add(made.key)
        ours = obj.create_statements(schema)
        have = existing.get(made.key)
        target = early if obj.early else late
        label = made.label(schema)
        if have is None:
            target.append(ObjectOp(f"{label} {IN_MODELS}", ours, made.drop, f"{label} {IN_DATABASE}", early=obj.early))
        elif have.definition != made.definition:
            line = f"{label}: definition in the database differs from the models"
            if isinstance(obj, Function):
                target.append(ObjectOp(line, ours, have.create, line, early=True))
            else:
                target.append(ObjectOp(line, [*have.drop, *ours], [*made.drop, *have.create], line, early=False))
    for have in _drop_sorted(existing.values()):
        if have.key in matched:
            continue
        label = have.label(schema)
        op = ObjectOp(f"{label} {IN_DATABASE}", have.drop, have.create, f"{label} {IN_MODELS}", early=True)
        (late_drops if have.kind in ("function", "procedure") else early_drops).append(op)
    wanted = {o.table: (o.enabled, o.forced) for o in declared if isinstance(o, RowSecurity)}
    modelled = {t.name for t in metadata.tables.values()} if metadata is not None else set()
    for table in sorted(set(wanted) - modelled):
        raise DeclaredObjectFailed(
            f"schema {schema!r}: row security is declared for {table!r}, not a table of the models"
        )
    for table in sorted(set(flags) | set(wanted)):
        have_flags, want = flags.get(table, (False, False)), wanted.get(table, (False, False))
        if want != have_flags:
            line = (
                f"row level security of table {schema}.{table}: {_flags(have_flags)} in the database, "
                f"{_flags(want)} in the models"
            )
            up = row_security_statements(schema, table, *want)
            late.append(ObjectOp(line, up, row_security_statements(schema, table, *have_flags), line, early=False))
    return [*early_drops, *early, *late, *late_drops]


def _flags(flags: tuple[bool, bool]) -> str:
    enabled, forced = flags
    if enabled:
        return "enabled and forced" if forced else "enabled"
    return "forced but not enabled" if forced else "disabled"


def _compare_objects(
    autogen_context: AutogenContext, upgrade_ops: ops.UpgradeOps, schemas: Iterable[str | None]
) -> Any:
    schema = autogen_context.migration_context.opts.get(SCHEMA_OPTION)
    if schema is None or schema not in set(schemas) or autogen_context.connection is None:
        return None
    metadata = autogen_context.metadata if isinstance(autogen_context.metadata, MetaData) else None
    found = object_ops(autogen_context.connection, schema, metadata, declared_objects(metadata))
    first = [op for op in found if op.early]
    last = [op for op in found if not op.early]
    # after the enum types a function may use; before the tables an index may call it from
    start = 0
    while start < len(upgrade_ops.ops) and isinstance(upgrade_ops.ops[start], EnumOp):
        start += 1
    upgrade_ops.ops[start:start] = first
    end = len(upgrade_ops.ops)
    while end > 0 and isinstance(upgrade_ops.ops[end - 1], EnumOp):
        end -= 1  # before enum types are dropped or rebuilt
    upgrade_ops.ops[end:end] = last
    return None


# after the table and enum comparators (DispatchPriority: Alembic 1.18, the floor)
comparators.dispatch_for("schema", priority=DispatchPriority.LAST)(_compare_objects)
