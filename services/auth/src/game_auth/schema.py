"""The auth service's entry in `gamedb.schemas` (kept import-light: models load on demand)."""

from __future__ import annotations

from pathlib import Path

from gamedb import SchemaDeclaration

SCHEMA = SchemaDeclaration(
    models="game_auth.models",
    versions=Path(__file__).with_name("versions"),
)
