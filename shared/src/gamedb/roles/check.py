"""`gamedb roles check`: every way the database differs from the role model, one line each.

The rows of the one deviations query (`gamedb.roles.deviations`), plus declared extensions
installed elsewhere or missing.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import psycopg
from psycopg import sql

from gamedb.discovery import SchemaInfo
from gamedb.names import EXTENSIONS_SCHEMA
from gamedb.roles.deviations import JIT_OFF, deployer_settings_json, deviations_query, schema_arrays


@dataclass(frozen=True)
class Finding:
    """One deviation from the model."""

    schema: str | None  # None: global (migrator, database, deployer logins)
    kind: str
    detail: str

    def __str__(self) -> str:
        return f"{self.schema or '(global)'}: {self.kind}: {self.detail}"

    def as_json(self) -> dict[str, str | None]:
        return asdict(self)


def check_roles(conn: psycopg.Connection, schemas: list[SchemaInfo]) -> list[Finding]:
    """Compare the database with the model for the global roles, the deployer logins and every schema."""
    query = deviations_query(schema_arrays(schemas), deployer_settings_json())
    conn.execute(JIT_OFF)
    rows = conn.execute(sql.SQL("SELECT schema, kind, detail FROM ({}) d ORDER BY phase, 1, 2, 3").format(query))
    findings = [Finding(schema, kind, detail) for schema, kind, detail in rows]
    return _check_extensions(conn, schemas) + findings


def _check_extensions(conn: psycopg.Connection, schemas: list[SchemaInfo]) -> list[Finding]:
    declared = sorted({e for info in schemas for e in info.extensions})
    if not declared:
        return []
    rows = conn.execute(
        "SELECT e.extname, n.nspname FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace"
        " WHERE e.extname = ANY(%s)",
        (declared,),
    )
    installed: dict[str, str] = dict(rows.fetchall())
    findings = []
    for name in declared:
        where = installed.get(name)
        if where != EXTENSIONS_SCHEMA:
            found = f"installed in schema {where}" if where else "not installed"
            findings.append(Finding(None, "extension", f"{name}: expected in schema {EXTENSIONS_SCHEMA}, {found}"))
    return findings
