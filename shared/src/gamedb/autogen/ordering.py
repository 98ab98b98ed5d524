"""Foreign keys that close a cycle between tables (`use_alter=True`) are added after the tables.

SQLAlchemy leaves such a key out of CREATE TABLE (it expects ALTER TABLE to add it once both tables
exist) and Alembic writes nothing else, so the key would never be created. This adds it after the
last new table and drops it first in the downgrade, before the tables it joins.
"""

from __future__ import annotations

from typing import Any

from alembic.operations import ops
from sqlalchemy import ForeignKeyConstraint


def defer_cyclic_foreign_keys(context: Any, revision: Any, directives: list[ops.MigrationScript]) -> None:
    """Alembic's `process_revision_directives` hook."""
    for script in directives:
        for upgrade_ops, downgrade_ops in zip(script.upgrade_ops_list, script.downgrade_ops_list, strict=True):
            deferred = [fk for op in upgrade_ops.ops if isinstance(op, ops.CreateTableOp) for fk in _use_alter(op)]
            if not deferred:
                continue
            last_create = max(i for i, op in enumerate(upgrade_ops.ops) if isinstance(op, ops.CreateTableOp))
            upgrade_ops.ops[last_create + 1 : last_create + 1] = [
                ops.CreateForeignKeyOp.from_constraint(fk) for fk in deferred
            ]
            first_drop = min(
                (i for i, op in enumerate(downgrade_ops.ops) if isinstance(op, ops.DropTableOp)),
                default=len(downgrade_ops.ops),
            )
            downgrade_ops.ops[first_drop:first_drop] = [ops.DropConstraintOp.from_constraint(fk) for fk in deferred]


def _use_alter(op: ops.CreateTableOp) -> list[ForeignKeyConstraint]:
    table = op.to_table()
    return [fk for fk in table.foreign_key_constraints if fk.use_alter]
