"""`gamedb`: every Alembic command scoped to one schema, plus whole-database commands.

The package parses and dispatches (`main`, `parser`, `arguments`); each command group is a module of
thin handlers over the library: `alembic_commands` (Alembic's commands on `-x schema=NAME`), `fleet`
(every schema at once), `roles`, `lint`, `schema_upkeep` (repair-checksums, partitions, squash),
`servers` (move, server) and `scaffolding` (new-service).
"""

from __future__ import annotations

from gamedb.cli.main import main, run
from gamedb.cli.parser import ALEMBIC_COMMANDS, GAMEDB_COMMANDS

__all__ = ["ALEMBIC_COMMANDS", "GAMEDB_COMMANDS", "main", "run"]
