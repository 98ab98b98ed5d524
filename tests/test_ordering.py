"""Ordering without a server: schemas by depends_on, revisions by their parents (graphlib underneath)."""

from __future__ import annotations

from pathlib import Path

import pytest

from gamedb.discovery import SchemaInfo
from gamedb.discovery.declaration import SchemaDeclaration
from gamedb.errors import DiscoveryError
from gamedb.fleet import upgrade_order
from gamedb.migrate.revision_index import RevisionIndex, UnreadableRevisions

pytestmark = pytest.mark.unit


def schema(name: str, *depends_on: str) -> SchemaInfo:
    declaration = SchemaDeclaration(models=f"game_{name}.models", versions=Path("/nowhere"), depends_on=depends_on)
    return SchemaInfo(name, f"game-{name}", declaration, Path("/nowhere"))


def test_schemas_come_after_their_dependencies_and_by_name_among_equals():
    schemas = {
        s.name: s
        for s in [schema("shop", "auth", "inventory"), schema("inventory", "auth"), schema("auth"), schema("chat")]
    }

    assert [s.name for s in upgrade_order(schemas)] == ["auth", "chat", "inventory", "shop"]


def test_a_dependency_outside_the_selection_does_not_block_it():
    assert [s.name for s in upgrade_order({"shop": schema("shop", "auth")})] == ["shop"]


def test_a_depends_on_cycle_is_refused_naming_its_members():
    with pytest.raises(DiscoveryError, match="cycle among schemas: a, b"):
        upgrade_order({"a": schema("a", "b"), "b": schema("b", "a"), "c": schema("c")})


def test_pending_revisions_are_oldest_first_across_a_merge():
    index = RevisionIndex({"r1": (), "r2": ("r1",), "b1": ("r1",), "m": ("r2", "b1"), "r3": ("m",)})

    assert index.heads == ["r3"]
    assert index.pending(["r1"]) == ["b1", "r2", "m", "r3"]
    assert index.pending(["r2"]) == ["b1", "m", "r3"]
    assert index.pending(["r3"]) == []


def test_a_revision_the_files_do_not_have_sends_the_caller_to_alembic():
    with pytest.raises(UnreadableRevisions, match="'zz' is not in this versions directory"):
        RevisionIndex({"r1": ()}).pending(["zz"])
