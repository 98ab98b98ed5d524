"""What a service hands to gamedb through its `gamedb.schemas` entry point.

A service's `schema.py` stays import-light: the models module is named, not imported, so that a
command scoped to one schema never imports the models of the other ninety-nine.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

# Constraint names that autogenerate can compare and that stay stable across databases.
NAMING_CONVENTION: dict[str, str] = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


@dataclass(frozen=True)
class SchemaDeclaration:
    """A service's declaration; the schema's name is the entry point's name.

    models: dotted module path whose `metadata` attribute is the MetaData bound to the schema.
    versions: the directory holding this schema's revision files.
    depends_on: schemas that must be at head before this one is upgraded.
    extensions: PostgreSQL extensions the schema's revisions use (e.g. "citext", "pg_trgm"); gamedb
        creates them once, in the shared schema `extensions`, before any revision runs.
    statement_timeout / idle_in_transaction_session_timeout: for the service's app sessions.
    """

    models: str
    versions: Path
    depends_on: tuple[str, ...] = ()
    extensions: tuple[str, ...] = ()
    statement_timeout: str = "5s"
    idle_in_transaction_session_timeout: str = "10s"
