"""The strongest table lock each statement of a revision takes, read from PostgreSQL's own parser (pglast).

The table is PostgreSQL's documentation, chapter "Explicit Locking" (table-level lock modes) and the
ALTER TABLE page's per-form notes: a statement kind maps to the lock it takes on the tables it names.
What the table does not cover (a DO block, a function call, a kind not listed) is said to be
unclassified rather than guessed. Unqualified names are shown in the revision's schema: migrations
run with `search_path` = the schema first (gamedb.migrate.session).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

# Lock modes, weakest first (PostgreSQL's numbering).
MODES = (
    "ACCESS SHARE",
    "ROW SHARE",
    "ROW EXCLUSIVE",
    "SHARE UPDATE EXCLUSIVE",
    "SHARE",
    "SHARE ROW EXCLUSIVE",
    "EXCLUSIVE",
    "ACCESS EXCLUSIVE",
)

# ALTER TABLE forms weaker than ACCESS EXCLUSIVE (every other form takes ACCESS EXCLUSIVE).
_ALTER_TABLE_WEAKER = {
    "AT_SetStatistics": "SHARE UPDATE EXCLUSIVE",
    "AT_ValidateConstraint": "SHARE UPDATE EXCLUSIVE",
    "AT_ClusterOn": "SHARE UPDATE EXCLUSIVE",
    "AT_DropCluster": "SHARE UPDATE EXCLUSIVE",
    "AT_SetOptions": "SHARE UPDATE EXCLUSIVE",
    "AT_ResetOptions": "SHARE UPDATE EXCLUSIVE",
    "AT_AttachPartition": "SHARE UPDATE EXCLUSIVE",
    "AT_EnableTrig": "SHARE ROW EXCLUSIVE",
    "AT_EnableAlwaysTrig": "SHARE ROW EXCLUSIVE",
    "AT_EnableReplicaTrig": "SHARE ROW EXCLUSIVE",
    "AT_DisableTrig": "SHARE ROW EXCLUSIVE",
    "AT_EnableTrigAll": "SHARE ROW EXCLUSIVE",
    "AT_DisableTrigAll": "SHARE ROW EXCLUSIVE",
    "AT_EnableTrigUser": "SHARE ROW EXCLUSIVE",
    "AT_DisableTrigUser": "SHARE ROW EXCLUSIVE",
}

# Statements that lock no existing table (they create or change non-table objects, or set session state).
_NO_TABLE_LOCK = {
    "CreateSchemaStmt": "CREATE SCHEMA",
    "CreateEnumStmt": "CREATE TYPE",
    "CompositeTypeStmt": "CREATE TYPE",
    "CreateRangeStmt": "CREATE TYPE",
    "DefineStmt": "CREATE (type, aggregate, operator)",
    "CreateDomainStmt": "CREATE DOMAIN",
    "CreateSeqStmt": "CREATE SEQUENCE",
    "CreateFunctionStmt": "CREATE FUNCTION",
    "CreateExtensionStmt": "CREATE EXTENSION",
    "AlterEnumStmt": "ALTER TYPE (enum value)",
    "VariableSetStmt": "SET",
    "TransactionStmt": "transaction control",
    "GrantStmt": "GRANT/REVOKE",
    "GrantRoleStmt": "GRANT/REVOKE role",
    "AlterDefaultPrivilegesStmt": "ALTER DEFAULT PRIVILEGES",
}

_ROW_EXCLUSIVE = {"InsertStmt": "INSERT", "UpdateStmt": "UPDATE", "DeleteStmt": "DELETE", "MergeStmt": "MERGE"}

_DROPPED_RELATIONS = {"OBJECT_TABLE", "OBJECT_VIEW", "OBJECT_MATVIEW", "OBJECT_SEQUENCE", "OBJECT_FOREIGN_TABLE"}
_RENAMED_RELATIONS = {"OBJECT_TABLE", "OBJECT_COLUMN", "OBJECT_TABCONSTRAINT", "OBJECT_VIEW", "OBJECT_MATVIEW"}

_LOCK_MODES = {1: "ACCESS SHARE", 2: "ROW SHARE", 3: "ROW EXCLUSIVE", 4: "SHARE UPDATE EXCLUSIVE", 5: "SHARE"}
_LOCK_MODES |= {6: "SHARE ROW EXCLUSIVE", 7: "EXCLUSIVE", 8: "ACCESS EXCLUSIVE"}


@dataclass(frozen=True)
class StatementLock:
    """What one statement locks: its kind, the strongest mode and the tables it takes it on.

    mode None and classified: the statement locks no existing table (CREATE TABLE, CREATE TYPE, SET...).
    classified False: gamedb can't tell (a DO block, a kind the table does not list, unparsable text).
    """

    statement: str  # the statement on one line, shortened
    kind: str
    mode: str | None
    tables: tuple[str, ...] = ()
    classified: bool = True

    def describe(self) -> str:
        """`ACCESS EXCLUSIVE on inventory.items`, `no lock on an existing table`, or why it is unclassified."""
        if not self.classified:
            return f"unclassified ({self.kind}): gamedb can't tell what it locks"
        if self.mode is None:
            return "no lock on an existing table"
        return f"{self.mode} on {', '.join(self.tables)}" if self.tables else self.mode

    def as_json(self) -> dict[str, Any]:
        return {
            "statement": self.statement,
            "kind": self.kind,
            "lock": self.mode,
            "tables": list(self.tables),
            "classified": self.classified,
        }


def strongest(locks: list[StatementLock]) -> str | None:
    """The strongest mode among these statements and the tables it is taken on
    (`ACCESS EXCLUSIVE on inventory.items`); None when none takes a table lock."""
    modes = [lock.mode for lock in locks if lock.mode]
    if not modes:
        return None
    mode = max(modes, key=MODES.index)
    tables = dict.fromkeys(table for lock in locks if lock.mode == mode for table in lock.tables)
    return f"{mode} on {', '.join(tables)}" if tables else mode


def statement_locks(sql: str, schema: str) -> list[StatementLock]:
    """Each statement of `sql` with the lock it takes; `schema` qualifies unqualified names."""
    import pglast
    from pglast.parser import ParseError

    try:
        statements = pglast.split(sql)
    except ParseError as exc:
        return [StatementLock(one_line(sql), f"not parsed: {exc}", None, classified=False)]
    locks = []
    for text in statements:
        try:
            (raw,) = pglast.parse_sql(text)
        except (ParseError, ValueError) as exc:
            locks.append(StatementLock(one_line(text), f"not parsed: {exc}", None, classified=False))
            continue
        locks.append(classify(raw.stmt, one_line(text), schema))
    return locks


def classify(node: Any, text: str, schema: str) -> StatementLock:
    """The lock of one parsed statement, by the documentation's table."""
    name = type(node).__name__
    if name in _NO_TABLE_LOCK:
        return StatementLock(text, _NO_TABLE_LOCK[name], None)
    if name == "CreateStmt":
        referenced = tuple(dict.fromkeys(_table(fk.pktable, schema) for fk in _foreign_keys(node)))
        if referenced:  # a new table's foreign key locks the table it references
            return StatementLock(text, "CREATE TABLE (with foreign keys)", "SHARE ROW EXCLUSIVE", referenced)
        return StatementLock(text, "CREATE TABLE", None)
    if name == "IndexStmt":
        kind = "CREATE INDEX CONCURRENTLY" if node.concurrent else "CREATE INDEX"
        mode = "SHARE UPDATE EXCLUSIVE" if node.concurrent else "SHARE"
        return StatementLock(text, kind, mode, (_table(node.relation, schema),))
    if name == "AlterTableStmt":
        return _alter_table(node, text, schema)
    if name == "DropStmt":
        return _drop(node, text, schema)
    if name == "RenameStmt":
        kind = _enum_name(node.renameType)
        if kind in _RENAMED_RELATIONS and node.relation is not None:
            return StatementLock(text, f"RENAME ({kind})", "ACCESS EXCLUSIVE", (_table(node.relation, schema),))
        if kind == "OBJECT_INDEX" and node.relation is not None:
            return StatementLock(text, "ALTER INDEX RENAME", "SHARE UPDATE EXCLUSIVE", (_table(node.relation, schema),))
        if kind in {"OBJECT_SCHEMA", "OBJECT_TYPE", "OBJECT_FUNCTION", "OBJECT_SEQUENCE", "OBJECT_ATTRIBUTE"}:
            return StatementLock(text, f"RENAME ({kind})", None)
        return StatementLock(text, f"RENAME ({kind})", None, classified=False)
    if name in _ROW_EXCLUSIVE:
        return StatementLock(text, _ROW_EXCLUSIVE[name], "ROW EXCLUSIVE", (_table(node.relation, schema),))
    if name == "TruncateStmt":
        return StatementLock(text, "TRUNCATE", "ACCESS EXCLUSIVE", tuple(_table(r, schema) for r in node.relations))
    if name == "CreateTrigStmt":
        return StatementLock(text, "CREATE TRIGGER", "SHARE ROW EXCLUSIVE", (_table(node.relation, schema),))
    if name == "LockStmt":
        mode = _LOCK_MODES.get(node.mode, "ACCESS EXCLUSIVE")
        return StatementLock(text, "LOCK TABLE", mode, tuple(_table(r, schema) for r in node.relations))
    if name == "RefreshMatViewStmt":
        mode = "EXCLUSIVE" if node.concurrent else "ACCESS EXCLUSIVE"
        return StatementLock(text, "REFRESH MATERIALIZED VIEW", mode, (_table(node.relation, schema),))
    if name == "CommentStmt":
        return StatementLock(text, "COMMENT ON", "SHARE UPDATE EXCLUSIVE" if _comment_on_relation(node) else None)
    if name == "CreateStatsStmt":
        return StatementLock(text, "CREATE STATISTICS", "SHARE UPDATE EXCLUSIVE", _relations(node.relations, schema))
    if name == "ClusterStmt":
        tables = (_table(node.relation, schema),) if node.relation is not None else ()
        return StatementLock(text, "CLUSTER", "ACCESS EXCLUSIVE", tables)
    if name == "SelectStmt" and node.intoClause is None:
        read = _relations(node, schema)
        return StatementLock(text, "SELECT", "ACCESS SHARE" if read else None, read)
    if name == "DoStmt":
        return StatementLock(text, "DO block", None, classified=False)
    return StatementLock(text, name.removesuffix("Stmt"), None, classified=False)


def _alter_table(node: Any, text: str, schema: str) -> StatementLock:
    objtype = _enum_name(node.objtype)
    what = {"OBJECT_INDEX": "ALTER INDEX", "OBJECT_SEQUENCE": "ALTER SEQUENCE", "OBJECT_VIEW": "ALTER VIEW"}
    kind = what.get(objtype, "ALTER TABLE")
    modes: list[str] = []
    tables = [_table(node.relation, schema)]
    forms = []
    for cmd in node.cmds or ():
        subtype = _enum_name(cmd.subtype)
        forms.append(subtype.removeprefix("AT_"))
        mode = _ALTER_TABLE_WEAKER.get(subtype, "ACCESS EXCLUSIVE")
        constraint = cmd.def_ if type(cmd.def_).__name__ == "Constraint" else None
        if (
            subtype == "AT_AddConstraint"
            and constraint is not None
            and _enum_name(constraint.contype) == "CONSTR_FOREIGN"
        ):
            mode = "SHARE ROW EXCLUSIVE"  # on both the table and the one it references
            tables.append(_table(constraint.pktable, schema))
        if subtype == "AT_DetachPartition" and getattr(cmd.def_, "concurrent", False):
            mode = "SHARE UPDATE EXCLUSIVE"
        modes.append(mode)
    mode = max(modes, key=MODES.index) if modes else "ACCESS EXCLUSIVE"
    label = f"{kind} {', '.join(forms)}" if forms else kind
    return StatementLock(text, label, mode, tuple(dict.fromkeys(tables)))


def _drop(node: Any, text: str, schema: str) -> StatementLock:
    kind = _enum_name(node.removeType)
    names = [_dotted(obj, schema) for obj in node.objects or ()]
    if kind in _DROPPED_RELATIONS:
        return StatementLock(text, f"DROP {kind.removeprefix('OBJECT_')}", "ACCESS EXCLUSIVE", tuple(names))
    if kind == "OBJECT_INDEX":
        mode = "SHARE UPDATE EXCLUSIVE" if node.concurrent else "ACCESS EXCLUSIVE"
        return StatementLock(text, "DROP INDEX", mode, tuple(f"the table of index {n}" for n in names))
    if kind == "OBJECT_SCHEMA" and _enum_name(node.behavior) == "DROP_CASCADE":
        dropped = [getattr(obj, "sval", str(obj)) for obj in node.objects or ()]
        return StatementLock(
            text, "DROP SCHEMA CASCADE", "ACCESS EXCLUSIVE", tuple(f"every table in {n}" for n in dropped)
        )
    if kind in {"OBJECT_SCHEMA", "OBJECT_TYPE", "OBJECT_FUNCTION", "OBJECT_DOMAIN", "OBJECT_EXTENSION"}:
        return StatementLock(text, f"DROP {kind.removeprefix('OBJECT_')}", None)
    return StatementLock(text, f"DROP {kind.removeprefix('OBJECT_')}", None, classified=False)


def _foreign_keys(create: Any) -> Iterator[Any]:
    for element in create.tableElts or ():
        constraints = (
            [element] if type(element).__name__ == "Constraint" else list(getattr(element, "constraints", None) or ())
        )
        for constraint in constraints:
            if type(constraint).__name__ == "Constraint" and _enum_name(constraint.contype) == "CONSTR_FOREIGN":
                yield constraint


def _comment_on_relation(node: Any) -> bool:
    return _enum_name(node.objtype) in {
        "OBJECT_TABLE",
        "OBJECT_COLUMN",
        "OBJECT_VIEW",
        "OBJECT_MATVIEW",
        "OBJECT_INDEX",
    }


def _relations(node: Any, schema: str) -> tuple[str, ...]:
    """Every table a statement names (RangeVar nodes anywhere in it)."""
    found: dict[str, None] = {}
    stack = [node]
    while stack:
        current = stack.pop()
        if isinstance(current, (list, tuple)):
            stack.extend(current)
        elif type(current).__name__ == "RangeVar":
            found[_table(current, schema)] = None
        elif hasattr(current, "__slots__") and type(current).__module__.startswith("pglast"):
            stack.extend(getattr(current, slot, None) for slot in _slots(current))
    return tuple(sorted(found))


def _slots(node: Any) -> Iterator[str]:
    for cls in type(node).__mro__:
        yield from (s for s in getattr(cls, "__slots__", ()) if isinstance(s, str))


def _table(rangevar: Any, schema: str) -> str:
    return f"{rangevar.schemaname or schema}.{rangevar.relname}"


def _dotted(obj: Any, schema: str) -> str:
    parts = (
        [getattr(p, "sval", str(p)) for p in obj]
        if isinstance(obj, (list, tuple))
        else [getattr(obj, "sval", str(obj))]
    )
    return ".".join(parts) if len(parts) > 1 else f"{schema}.{parts[0]}"


def _enum_name(value: Any) -> str:
    return getattr(value, "name", str(value))


def one_line(sql: str, width: int = 100) -> str:
    text = " ".join(sql.split())
    return text if len(text) <= width else text[: width - 3] + "..."
