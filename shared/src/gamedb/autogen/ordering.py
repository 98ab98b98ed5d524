"""Foreign keys that close a cycle between new tables are added after the tables, dropped before them.

Two cases, one treatment. A key declared `use_alter=True`: SQLAlchemy leaves it out of CREATE TABLE
(it expects ALTER TABLE to add it once both tables exist) and Alembic writes nothing else, so the key
would never be created. A key closing a cycle without `use_alter` (CTFd's users.team_id and
teams.captain_id): Alembic writes it inside the first table's `create_table`, before the table it
references exists, and the upgrade fails with 42P01. Either key is written `use_alter=True` in its
`create_table`, added after the last new table and dropped first in the downgrade, before the tables
it joins. A key the models leave unnamed gets the name PostgreSQL would give it
(`<table>_<columns>_fkey`), so the downgrade can drop it by name.
"""

from __future__ import annotations

from typing import Any

from alembic.operations import ops
from sqlalchemy import ForeignKeyConstraint
from sqlalchemy.sql.elements import conv

# PostgreSQL truncates identifiers to 63 bytes (NAMEDATALEN - 1)
MAX_IDENTIFIER = 63


def defer_cyclic_foreign_keys(context: Any, revision: Any, directives: list[ops.MigrationScript]) -> None:
    """Alembic's `process_revision_directives` hook."""
    for script in directives:
        for upgrade_ops, downgrade_ops in zip(script.upgrade_ops_list, script.downgrade_ops_list, strict=True):
            _mark_forward_references(upgrade_ops.ops)
            deferred = [fk for op in upgrade_ops.ops if isinstance(op, ops.CreateTableOp) for fk in _use_alter(op)]
            if not deferred:
                continue
            last_create = max(i for i, op in enumerate(upgrade_ops.ops) if isinstance(op, ops.CreateTableOp))
            upgrade_ops.ops[last_create + 1 : last_create + 1] = [_named(ops.CreateForeignKeyOp, fk) for fk in deferred]
            first_drop = min(
                (i for i, op in enumerate(downgrade_ops.ops) if isinstance(op, ops.DropTableOp)),
                default=len(downgrade_ops.ops),
            )
            downgrade_ops.ops[first_drop:first_drop] = [_named(ops.DropConstraintOp, fk) for fk in deferred]


def _mark_forward_references(upgrade: list[Any]) -> None:
    """A key of a new table referencing a table created later in the same revision becomes `use_alter`."""
    creates = [op for op in upgrade if isinstance(op, ops.CreateTableOp)]
    position = {(op.schema, op.table_name): i for i, op in enumerate(creates)}
    for i, op in enumerate(creates):
        columns = list(op.columns)  # Alembic types the op's columns as a Sequence
        for n, element in enumerate(columns):
            if not isinstance(element, ForeignKeyConstraint) or element.use_alter:
                continue
            target = element.elements[0].target_fullname.rsplit(".", 1)[0]
            schema, _, table = target.rpartition(".")
            if position.get((schema or op.schema, table), -1) > i:
                columns[n] = _copy_use_alter(element, op.table_name)
        op.columns = columns


def _copy_use_alter(fk: ForeignKeyConstraint, table: str) -> ForeignKeyConstraint:
    return ForeignKeyConstraint(
        [e.parent.name for e in fk.elements],
        [e.target_fullname for e in fk.elements],
        name=fk.name if fk.name is not None else conv(_default_name(table, [e.parent.name for e in fk.elements])),
        onupdate=fk.onupdate,
        ondelete=fk.ondelete,
        deferrable=fk.deferrable,
        initially=fk.initially,
        match=fk.match,
        use_alter=True,
    )


def _default_name(table: str, columns: list[str]) -> str:
    """The name PostgreSQL gives an unnamed foreign key (ChooseConstraintName), when it fits."""
    return f"{table}_{'_'.join(columns)}_fkey"[:MAX_IDENTIFIER]


def _named(
    kind: type[ops.CreateForeignKeyOp] | type[ops.DropConstraintOp], fk: ForeignKeyConstraint
) -> ops.CreateForeignKeyOp | ops.DropConstraintOp:
    op = kind.from_constraint(fk)
    if op.constraint_name is None:
        op.constraint_name = conv(_default_name(fk.parent.name, [c.name for c in fk.columns]))
    return op


def _use_alter(op: ops.CreateTableOp) -> list[ForeignKeyConstraint]:
    table = op.to_table()
    return [fk for fk in table.foreign_key_constraints if fk.use_alter]
