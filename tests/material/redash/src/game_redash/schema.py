"""The redash test service's entry in `gamedb.schemas`."""

from __future__ import annotations

from pathlib import Path

from gamedb import SchemaDeclaration

SCHEMA = SchemaDeclaration(
    models="game_redash.models",
    versions=Path(__file__).with_name("versions"),
)
