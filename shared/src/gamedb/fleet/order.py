"""The order schemas go in (each after everything in its depends_on) and each schema's revision graph.

A schema's graph is read from its revision files' text; Alembic (which imports every revision file)
is asked only when the text is unusual.
"""

from __future__ import annotations

import logging
from graphlib import CycleError, TopologicalSorter
from pathlib import Path

from alembic.util import to_tuple

from gamedb.discovery import SchemaInfo
from gamedb.errors import DiscoveryError
from gamedb.migrate.config import make_config, script_directory
from gamedb.migrate.revision_files import check_versions_dir
from gamedb.migrate.revision_index import RevisionIndex, UnreadableRevisions, read_revision_index
from gamedb.project import Project

log = logging.getLogger(__name__)


def upgrade_order(schemas: dict[str, SchemaInfo]) -> list[SchemaInfo]:
    """Schemas so that each comes after everything in its depends_on; by name among equals."""
    sorter = TopologicalSorter({name: set(info.depends_on) & schemas.keys() for name, info in schemas.items()})
    try:
        sorter.prepare()
    except CycleError as exc:
        raise DiscoveryError(f"depends_on forms a cycle among schemas: {', '.join(sorted(set(exc.args[1])))}") from None
    ordered: list[SchemaInfo] = []
    while sorter.is_active():
        ready = sorted(sorter.get_ready())
        ordered += [schemas[name] for name in ready]
        sorter.done(*ready)
    return ordered


def revision_index(project: Project, schemas: dict[str, SchemaInfo], info: SchemaInfo) -> RevisionIndex:
    """The schema's revision graph: from the files' text, or from Alembic when the text is unusual."""
    check_versions_dir(info, schemas)
    try:
        return read_revision_index(info.versions_dir)
    except UnreadableRevisions as exc:
        log.debug("%s: %s; asking Alembic", info.name, exc)
    script = script_directory(make_config(project, schemas, info))
    scripts = list(script.walk_revisions())
    parents = {s.revision: to_tuple(s.down_revision, default=()) for s in scripts}
    return RevisionIndex(parents, {s.revision: Path(s.path) for s in scripts})
