"""Partitions are not the models' tables: autogenerate and `check` leave them alone.

A model declares its partitioning (`postgresql_partition_by`); its partitions are made by revisions
or by `gamedb partitions`, and would otherwise be reflected as tables the models lack and dropped
(alembic#539). A comparator that runs before Alembic's table comparison lists the schema's partitions
into the set the `include_name` filter reads.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from alembic.autogenerate import comparators
from alembic.autogenerate.api import AutogenContext
from alembic.operations import ops
from alembic.util import DispatchPriority
from sqlalchemy import Connection, text

from gamedb.autogen.enums import SCHEMA_OPTION

PARTITIONS_OPTION = "gamedb_partitions"

PARTITIONS = text(
    "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
    " WHERE n.nspname = :schema AND c.relispartition AND c.relkind IN ('r', 'p')"
)


def partitions(connection: Connection, schema: str) -> set[str]:
    """Names of every partition (at any level) in `schema`."""
    return {name for (name,) in connection.execute(PARTITIONS, {"schema": schema})}


def _record_partitions(
    autogen_context: AutogenContext, upgrade_ops: ops.UpgradeOps, schemas: Iterable[str | None]
) -> Any:
    opts = autogen_context.migration_context.opts
    schema, found = opts.get(SCHEMA_OPTION), opts.get(PARTITIONS_OPTION)
    if schema is None or found is None or autogen_context.connection is None:
        return None
    found.clear()
    found.update(partitions(autogen_context.connection, schema))
    return None


# before the table comparison reflects anything (DispatchPriority: Alembic 1.18, the floor)
comparators.dispatch_for("schema", priority=DispatchPriority.FIRST)(_record_partitions)
