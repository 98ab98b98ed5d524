"""CHECK constraints compared (Alembic doesn't): added, removed or changed in the models is drift, and
autogenerate writes the create / drop operations.

Both sides are compared as PostgreSQL prints them (`pg_get_constraintdef`, the models' made canonical
on a scratch table: gamedb.autogen.canonical), including the CHECKs a type adds (a non-native
`Enum(create_constraint=True)`, an ORM's type that builds one from a Python enum). A named CHECK is
matched by name (after the naming convention), an unnamed one by its definition. A type's CHECK on a
column that autogenerate adds comes with `add_column`: it is not written a second time.
"""

from __future__ import annotations

from typing import Any

from alembic.autogenerate import comparators, render, renderers
from alembic.autogenerate.api import AutogenContext
from alembic.operations import ops
from alembic.util import PriorityDispatchResult
from sqlalchemy import CheckConstraint, Column, Table, text
from sqlalchemy.sql.elements import conv

from gamedb.autogen.canonical import ModelCheck, forms_for, referenced_columns

UNDEFINED_COLUMN = "42703"


def _compare_checks(
    autogen_context: AutogenContext,
    modify_ops: ops.ModifyTableOps,
    schema: str | None,
    tname: str,
    conn_table: Table | None,
    metadata_table: Table | None,
) -> PriorityDispatchResult:
    if conn_table is None or metadata_table is None:
        return PriorityDispatchResult.CONTINUE  # a new or dropped table carries its CHECKs with it
    forms = forms_for(autogen_context)
    if forms is None:
        return PriorityDispatchResult.CONTINUE
    stored = dict(forms.comparable_checks.get(tname, {}))
    as_stored = forms.stored_checks.get(tname, {})
    existing = {column for (table, column) in forms.columns if table == tname}
    to_add: list[ModelCheck] = []
    unnamed: list[ModelCheck] = []
    for check in forms.model_checks.get(tname, []):
        if check.constraint._type_bound and not referenced_columns(check.constraint) <= existing:
            continue  # the type's CHECK on a new column: add_column creates it
        if check.name is None:
            unnamed.append(check)
        elif check.name in stored and stored[check.name] == check.spelled.text:
            del stored[check.name]
        else:
            to_add.append(check)
    for check in unnamed:
        same = next((name for name, definition in stored.items() if definition == check.spelled.text), None)
        if same is None:
            to_add.append(check)
        else:
            del stored[same]
    drops = [
        ops.DropConstraintOp(
            conv(name),  # the database's name, final: no naming convention applies to it again
            tname,
            type_="check",
            schema=schema,
            _reverse=ops.CreateCheckConstraintOp(conv(name), tname, text(_inner(as_stored[name])), schema=schema),
        )
        for name in sorted(stored)
    ]
    modify_ops.ops[:0] = drops  # before the columns they may name go
    # built by hand: a column-level CHECK has no table for from_constraint on SQLAlchemy 2.0
    modify_ops.ops.extend(
        ops.CreateCheckConstraintOp(
            c.constraint.name if isinstance(c.constraint.name, str) else None,
            tname,
            c.constraint.sqltext,
            schema=schema,
        )
        for c in to_add
    )
    return PriorityDispatchResult.CONTINUE


def _inner(definition: str) -> str:
    """`CHECK ((a > 0))` -> `(a > 0)`: the condition a CREATE ... CHECK takes."""
    return definition.removesuffix(" NOT VALID").removeprefix("CHECK (").removesuffix(")")


comparators.dispatch_for("table")(_compare_checks)


def write_column_checks(context: Any, revision: Any, directives: list[ops.MigrationScript]) -> None:
    """A `process_revision_directives` step: a new table's column-level CHECKs become table-level ones.

    Alembic writes a column as `sa.Column(name, type, ...)` without the CHECKs declared on it, so the
    table would be created without them (and `check` would report them missing forever).
    """
    for script in directives:
        for upgrade_ops in script.upgrade_ops_list:
            for op in upgrade_ops.ops:
                if not isinstance(op, ops.CreateTableOp):
                    continue
                found = [
                    c
                    for column in op.columns
                    if isinstance(column, Column)
                    for c in column.constraints
                    if isinstance(c, CheckConstraint) and not c._type_bound
                ]
                op.columns = [*op.columns, *(CheckConstraint(c.sqltext, name=c.name) for c in found)]


@renderers.dispatch_for(ops.CreateCheckConstraintOp, replace=True)
def _render_create_check(autogen_context: AutogenContext, op: ops.CreateCheckConstraintOp) -> str:
    """`op.create_check_constraint(...)` as Alembic 1.20 writes it (1.18 raises NotImplementedError)."""
    args = [repr(render._render_gen_name(autogen_context, op.constraint_name))]
    if not autogen_context._has_batch:
        args.append(repr(op.table_name))
    args.append(render._render_potential_expr(op.condition, autogen_context, wrap_in_element=False))
    if not autogen_context._has_batch and op.schema:
        args.append(f"schema={op.schema!r}")
    return f"{render._alembic_autogenerate_prefix(autogen_context)}create_check_constraint({', '.join(args)})"
