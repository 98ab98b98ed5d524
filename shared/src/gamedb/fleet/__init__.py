"""Every schema of one database at once: dependency order, status (version rows, pending revisions,
drift), upgrade-all and its parallel scheduler, and the SQL plan of a whole upgrade.
"""

from __future__ import annotations

from gamedb.fleet.order import revision_index, upgrade_order
from gamedb.fleet.plan import write_upgrade_plan
from gamedb.fleet.status import (
    DatabaseStatus,
    SchemaStatus,
    database_status,
    read_catalog,
    read_versions,
    version_rows_problem,
)
from gamedb.fleet.upgrade import SchemaFailure, UpgradeReport, upgrade_all

__all__ = [
    "DatabaseStatus",
    "SchemaFailure",
    "SchemaStatus",
    "UpgradeReport",
    "database_status",
    "read_catalog",
    "read_versions",
    "revision_index",
    "upgrade_all",
    "upgrade_order",
    "version_rows_problem",
    "write_upgrade_plan",
]
