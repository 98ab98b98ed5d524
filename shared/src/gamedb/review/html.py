"""The report as one self-contained HTML file: inline CSS and SVG, no script, no font or image to fetch.

Rows carry `data-schema="NAME"`, nodes `data-node="NAME"`, edges `data-edge="FROM->TO"` (FROM is the
schema TO depends on: FROM is upgraded first), so tests and readers' own tools can find them.
"""

from __future__ import annotations

from datetime import UTC, datetime
from html import escape

from gamedb.review.layout import NODE_HEIGHT, NODE_WIDTH, layered_layout
from gamedb.review.report import STATES, FleetReport, SchemaReport

COLOURS = {
    "broken": "#d73a49",
    "edited": "#a0153e",
    "pending": "#e3a008",
    "drift": "#8a63d2",
    "unrecorded": "#4a90d9",
    "at head": "#2ea44f",
}
MEANING = {
    "broken": "version rows no run can start from",
    "edited": "an applied revision was edited or is gone",
    "pending": "revisions to apply",
    "drift": "models differ from the database",
    "unrecorded": "checksums not recorded yet",
    "at head": "at head, no drift",
}

STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 24px; color: #1f2328; }
h1 { font-size: 22px; margin: 0 0 4px; } h2 { font-size: 17px; margin: 24px 0 8px; }
.meta { color: #57606a; font-size: 13px; }
.legend span { display: inline-block; margin-right: 14px; font-size: 13px; }
.swatch { display: inline-block; width: 11px; height: 11px; border-radius: 2px; margin-right: 4px; }
.picture { overflow: auto; border: 1px solid #d0d7de; border-radius: 6px; background: #f6f8fa; }
table { border-collapse: collapse; font-size: 13px; width: 100%; }
th, td { border-bottom: 1px solid #d0d7de; padding: 4px 8px; text-align: left; vertical-align: top; }
th { background: #f6f8fa; position: sticky; top: 0; }
td.state { font-weight: 600; white-space: nowrap; }
code { font-family: ui-monospace, SFMono-Regular, Menlo, monospace; font-size: 12px; }
ul { margin: 0; padding-left: 16px; } li { margin: 1px 0; } summary { white-space: nowrap; cursor: pointer; }
.applied { color: #57606a; } .pending-rev { font-weight: 600; }
svg text { font-family: system-ui, sans-serif; font-size: 12px; }
"""


def render_html(report: FleetReport, title: str = "gamedb fleet report") -> str:
    counts = {state: sum(1 for s in report.schemas if s.state == state) for state in STATES}
    summary = ", ".join(f"{n} {state}" for state, n in counts.items() if n)
    servers = ", ".join(f"{escape(name)} ({escape(url)})" for name, url in report.servers.items())
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{escape(title)}</title><style>{STYLE}</style></head><body>",
        f"<h1>{escape(title)}</h1>",
        f'<p class="meta">{len(report.schemas)} schemas: {escape(summary) or "none"}. Servers: {servers or "none"}. '
        f"Generated {datetime.now(UTC).strftime('%Y-%m-%d %H:%M UTC')}.</p>",
        _legend(),
        '<div class="picture">',
        fleet_svg(report),
        "</div>",
        "<h2>Schemas</h2>",
        _table(report),
    ]
    if report.global_roles:
        parts += ["<h2>Roles findings of no one schema</h2>", _list(report.global_roles)]
    if report.notes:
        parts += ["<h2>Not checked</h2>", _list(report.notes)]
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def _legend() -> str:
    items = [
        f'<span><i class="swatch" style="background:{COLOURS[s]}"></i>{escape(s)}: {escape(MEANING[s])}</span>'
        for s in STATES
    ]
    arrow = "<span>arrow B &#8594; A: A depends on B (B is upgraded first)</span>"
    return f'<p class="legend">{"".join(items)}{arrow}</p>'


def fleet_svg(report: FleetReport) -> str:
    """One node per schema in its server's band, an edge per depends_on, coloured by state."""
    servers: dict[str, list[str]] = {}
    for schema in report.schemas:
        servers.setdefault(schema.server, []).append(schema.schema)
    by_name = {s.schema: s for s in report.schemas}
    layout = layered_layout(servers, {s.schema: s.depends_on for s in report.schemas})
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{layout.width}" height="{layout.height}" '
        f'viewBox="0 0 {layout.width} {layout.height}" role="img" aria-label="schemas by server and dependency">',
        '<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" markerHeight="7" '
        'orient="auto-start-reverse"><path d="M 0 0 L 10 5 L 0 10 z" fill="#57606a"/></marker></defs>',
    ]
    for band in layout.bands:
        out.append(
            f'<g data-server="{escape(band.server)}"><rect x="4" y="{band.y}" width="{layout.width - 8}" '
            f'height="{band.height}" rx="6" fill="#ffffff" stroke="#d0d7de"/>'
            f'<text x="14" y="{band.y + 18}" font-weight="600">server {escape(band.server)}</text></g>'
        )
    for schema in report.schemas:
        for dependency in schema.depends_on:
            if dependency not in layout.nodes:
                continue
            start, end = layout.nodes[dependency], layout.nodes[schema.schema]
            x1, y1 = start.x + NODE_WIDTH, start.y + NODE_HEIGHT // 2
            x2, y2 = end.x, end.y + NODE_HEIGHT // 2
            bend = max(30, (x2 - x1) // 2)
            out.append(
                f'<path data-edge="{escape(dependency)}-&gt;{escape(schema.schema)}" '
                f'd="M {x1} {y1} C {x1 + bend} {y1}, {x2 - bend} {y2}, {x2} {y2}" fill="none" '
                'stroke="#57606a" stroke-width="1.3" marker-end="url(#arrow)"/>'
            )
    for name, box in layout.nodes.items():
        schema = by_name[name]
        label = name if len(name) <= 20 else name[:19] + "\u2026"
        out.append(
            f'<g data-node="{escape(name)}" data-state="{escape(schema.state)}">'
            f"<title>{escape(name)} ({escape(schema.state)}) on {escape(schema.server)}</title>"
            f'<rect x="{box.x}" y="{box.y}" width="{NODE_WIDTH}" height="{NODE_HEIGHT}" rx="4" '
            f'fill="{COLOURS[schema.state]}"/>'
            f'<text x="{box.x + 8}" y="{box.y + 16}" fill="#ffffff">{escape(label)}</text></g>'
        )
    out.append("</svg>")
    return "\n".join(out)


def _table(report: FleetReport) -> str:
    head = (
        "<table><thead><tr><th>schema</th><th>server</th><th>state</th><th>current</th><th>head</th>"
        "<th>pending</th><th>drift</th><th>checksums</th><th>roles</th><th>lint</th><th>revisions</th></tr></thead><tbody>"
    )
    return head + "\n".join(_row(s) for s in report.schemas) + "</tbody></table>"


def _row(s: SchemaReport) -> str:
    colour = COLOURS[s.state]
    drift = "not compared" if s.drift is None else (_list(s.drift) if s.drift else "none")
    checks = escape(s.checksum_state) + (_list(s.checksum_problems) if s.checksum_problems else "")
    if s.problem:
        checks += _list([f"version table {s.problem}"])
    lint = _list([f"{f.revision}: {f.rule}: {f.statement}" for f in s.lint]) if s.lint else "none"
    chain = "".join(
        f'<li class="{"applied" if r.applied else "pending-rev"}"><code>{escape(r.revision)}</code> '
        f"{'applied' if r.applied else 'pending'} &middot; <code>{escape(r.file)}</code></li>"
        for r in s.chain
    )
    return (
        f'<tr data-schema="{escape(s.schema)}"><td><code>{escape(s.schema)}</code></td><td>{escape(s.server)}</td>'
        f'<td class="state" style="color:{colour}">{escape(s.state)}</td>'
        f"<td><code>{escape(','.join(s.current) or 'base')}</code></td>"
        f"<td><code>{escape(','.join(s.heads) or '-')}</code></td><td>{len(s.pending)}</td>"
        f"<td>{drift}</td><td>{checks}</td><td>{_list(s.roles) if s.roles else 'none'}</td><td>{lint}</td>"
        f"<td><details><summary>{len(s.chain)} revision(s)</summary><ol>{chain}</ol></details></td></tr>"
    )


def _list(items: list[str]) -> str:
    return "<ul>" + "".join(f"<li>{escape(item)}</li>" for item in items) + "</ul>"
