"""Server defaults compared as PostgreSQL stores them (gamedb.autogen.canonical), never evaluated.

Alembic's own PostgreSQL comparison evaluates both expressions (`SELECT a = b`), which calls volatile
functions (`gen_random_uuid()` never equals itself) and can't compare `jsonb('{}')` with the
`'{}'::jsonb` it became. Registered as a comparator that runs before Alembic's own, in runs that
gamedb configured only; identity and computed columns are left to Alembic.
"""

from __future__ import annotations

from types import NoneType
from typing import Any
from weakref import WeakKeyDictionary

from alembic.autogenerate import comparators
from alembic.autogenerate.api import AutogenContext
from alembic.operations import ops
from alembic.util import DispatchPriority, PriorityDispatchResult
from sqlalchemy import Column, DefaultClause

from gamedb.autogen.canonical import forms_for

# a model default PostgreSQL refused, and its message: shown on the drift line (gamedb.autogen.drift)
REFUSED: WeakKeyDictionary[DefaultClause, str] = WeakKeyDictionary()


def _compare_server_default(
    autogen_context: AutogenContext,
    alter_column_op: ops.AlterColumnOp,
    schema: str | None,
    tname: str,
    cname: str,
    conn_col: Column[Any],
    metadata_col: Column[Any],
) -> PriorityDispatchResult:
    """Runs before Alembic's own comparators; leaves identity and computed columns to them."""
    declared, found = metadata_col.server_default, conn_col.server_default
    if not isinstance(declared, (DefaultClause, NoneType)) or not isinstance(found, (DefaultClause, NoneType)):
        return PriorityDispatchResult.CONTINUE
    forms = forms_for(autogen_context)
    if forms is None:
        return PriorityDispatchResult.CONTINUE
    if declared is None and found is None:
        return PriorityDispatchResult.CONTINUE
    stored = forms.columns.get((tname, cname))
    if stored is None or stored.generated:
        return PriorityDispatchResult.CONTINUE
    alter_column_op.existing_server_default = found
    if declared is None:
        differ = stored.default is not None and not stored.serial
    else:
        spelled = forms.defaults.get((tname, cname))
        differ = spelled is None or spelled.text != stored.default
        if spelled is not None and spelled.error:
            REFUSED[declared] = spelled.error
    if differ:
        alter_column_op.modify_server_default = declared
    return PriorityDispatchResult.STOP


comparators.dispatch_for("column", priority=DispatchPriority.FIRST, subgroup="server_default")(_compare_server_default)
