"""A small layered layout of the fleet for the report's picture: columns are dependency levels
(graphlib: a schema sits one level right of the deepest schema it depends on), bands are servers,
and a level with many schemas in one band wraps into sub-columns so a hundred independent schemas
make a block, not a 3,000-pixel column."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from graphlib import TopologicalSorter

NODE_WIDTH = 150
NODE_HEIGHT = 24
GAP_X = 40  # between sub-columns of one level
LEVEL_GAP = 70  # between levels: room for the edges
ROW_GAP = 8
BAND_PADDING = 28  # above a band: its server's label
ROWS_PER_COLUMN = 12
MARGIN = 12


@dataclass(frozen=True)
class Box:
    """Where a node is drawn (top-left corner)."""

    x: int
    y: int


@dataclass(frozen=True)
class Band:
    """A server's horizontal band."""

    server: str
    y: int
    height: int


@dataclass(frozen=True)
class Layout:
    nodes: dict[str, Box]
    bands: list[Band]
    width: int
    height: int


def levels(depends_on: Mapping[str, Sequence[str]]) -> dict[str, int]:
    """Each schema's level: 0 without dependencies, else one more than its deepest dependency."""
    graph = {name: [d for d in deps if d in depends_on] for name, deps in depends_on.items()}
    level: dict[str, int] = {}
    for name in TopologicalSorter(graph).static_order():
        level[name] = 1 + max((level[d] for d in graph[name]), default=-1)
    return level


def layered_layout(servers: Mapping[str, Sequence[str]], depends_on: Mapping[str, Sequence[str]]) -> Layout:
    """Boxes for every schema: `servers` maps each server to its schemas (in the order to draw them)."""
    level = levels(depends_on)
    depth = max(level.values(), default=0) + 1
    # per server and level: the schemas in that cell; a level's width is its widest cell
    cells = {s: [[n for n in names if level[n] == lv] for lv in range(depth)] for s, names in servers.items()}
    columns = [max((-(-len(cells[s][lv]) // ROWS_PER_COLUMN) for s in servers), default=1) or 1 for lv in range(depth)]
    level_x = []
    x = MARGIN
    for count in columns:
        level_x.append(x)
        x += count * (NODE_WIDTH + GAP_X) - GAP_X + LEVEL_GAP
    width = max(x - LEVEL_GAP + MARGIN, 320)
    nodes: dict[str, Box] = {}
    bands: list[Band] = []
    y = MARGIN
    for server in servers:
        rows = max((min(len(cell), ROWS_PER_COLUMN) for cell in cells[server]), default=0)
        height = BAND_PADDING + rows * (NODE_HEIGHT + ROW_GAP) + ROW_GAP
        for lv, cell in enumerate(cells[server]):
            for i, name in enumerate(cell):
                column, row = divmod(i, ROWS_PER_COLUMN)
                nodes[name] = Box(
                    level_x[lv] + column * (NODE_WIDTH + GAP_X), y + BAND_PADDING + row * (NODE_HEIGHT + ROW_GAP)
                )
        bands.append(Band(server, y, height))
        y += height + ROW_GAP
    return Layout(nodes, bands, width, y + MARGIN)
