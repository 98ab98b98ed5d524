"""`gamedb report`: the fleet on one self-contained page, opened in a real headless Chromium; and the
same data as text, markdown (the pull request's summary) and JSON."""

from __future__ import annotations

import json
import shutil
import struct
import time
import zlib
from pathlib import Path

import pytest

from conftest import run_cli
from gamedb.review.html import render_html
from gamedb.review.report import FleetReport, Revision, SchemaReport

CHAT = [
    ("chat1", [], []),
    ("chat2", ["CREATE TABLE chat.t (id bigint PRIMARY KEY, x text)"], ["DROP TABLE chat.t"]),
    ("chat3", ["CREATE INDEX ix_t_x ON chat.t (x)"], ["DROP INDEX chat.ix_t_x"]),
]
GUILD = [("guild1", [], []), ("guild2", ["CREATE TABLE guild.g (id bigint PRIMARY KEY)"], ["DROP TABLE guild.g"])]
STATES = ["at head", "pending", "drift", "unrecorded", "edited", "broken"]


def synthetic_fleet(count: int) -> FleetReport:
    """`count` schemas on three servers, in chains of dependencies, every state represented."""
    schemas = []
    for i in range(count):
        name = f"service_{i:03d}"
        depends = [f"service_{i - 1:03d}"] if i % 5 else []  # chains of five: levels 0..4
        state = STATES[i % len(STATES)]
        schemas.append(
            SchemaReport(
                name,
                ("default", "hot", "cold")[i % 3],
                depends,
                current=[f"{name}_r1"],
                heads=[f"{name}_r2"],
                pending=[f"{name}_r2"] if state == "pending" else [],
                drift=["column t.x is in the models, not in the database"] if state == "drift" else [],
                problem="2 version rows (a, b) and a is below another" if state == "broken" else None,
                checksum_problems=["applied revision r1 was edited"] if state == "edited" else [],
                unrecorded=[f"{name}_r1"] if state == "unrecorded" else [],
                chain=[
                    Revision(f"{name}_r1", (), "r1.py", True),
                    Revision(f"{name}_r2", (f"{name}_r1",), "r2.py", False),
                ],
            )
        )
    return FleetReport(schemas, {"default": "postgresql+psycopg://app:***@db/game"})


def browser():
    """Debian's headless Chromium through its chromedriver, at 1280x800, console messages kept."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium") or "/usr/bin/chromium"
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--window-size=1280,800",
    ):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(options=options, service=Service(shutil.which("chromedriver") or "/usr/bin/chromedriver"))
    # the viewport itself at 1280x800 (the window size includes the browser's own frame)
    metrics = {"width": 1280, "height": 800, "deviceScaleFactor": 1, "mobile": False}
    driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", metrics)
    return driver


def png_pixels(data: bytes) -> tuple[int, int, list[bytes]]:
    """Width, height and the raw RGB(A) rows of an 8-bit PNG (what Chromium's screenshots are)."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, width = 8, b"", 0
    while pos < len(data):
        (length,), kind = struct.unpack(">I", data[pos : pos + 4]), data[pos + 4 : pos + 8]
        body = data[pos + 8 : pos + 8 + length]
        if kind == b"IHDR":
            width, height, depth, colour = struct.unpack(">IIBB", body[:10])
            assert depth == 8 and colour in (2, 6)
            channels = 3 if colour == 2 else 4
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    raw = zlib.decompress(idat)
    stride = width * channels
    rows: list[bytes] = []
    prev = bytearray(stride)
    for y in range(height):
        kind, line = raw[y * (stride + 1)], bytearray(raw[y * (stride + 1) + 1 : (y + 1) * (stride + 1)])
        for x in range(stride):
            a = line[x - channels] if x >= channels else 0
            b, c = prev[x], prev[x - channels] if x >= channels else 0
            if kind == 1:
                line[x] = (line[x] + a) & 0xFF
            elif kind == 2:
                line[x] = (line[x] + b) & 0xFF
            elif kind == 3:
                line[x] = (line[x] + (a + b) // 2) & 0xFF
            elif kind == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[x] = (line[x] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 0xFF
        rows.append(bytes(line))
        prev = line
    return width, height, rows


def test_the_page_at_100_schemas_loads_without_error_and_shows_every_row_node_and_edge(tmp_path):
    from selenium.webdriver.common.by import By

    report = synthetic_fleet(100)
    page = tmp_path / "fleet.html"
    page.write_text(render_html(report), encoding="utf-8")
    names = [s.schema for s in report.schemas]
    edges = sorted(f"{d}->{s.schema}" for s in report.schemas for d in s.depends_on)

    started = time.monotonic()
    driver = browser()
    try:
        driver.get(page.as_uri())
        errors = [e for e in driver.get_log("browser") if e["level"] in ("SEVERE", "WARNING")]
        rows = [e.get_attribute("data-schema") for e in driver.find_elements(By.CSS_SELECTOR, "tr[data-schema]")]
        nodes = [e.get_attribute("data-node") for e in driver.find_elements(By.CSS_SELECTOR, "svg [data-node]")]
        drawn = sorted(e.get_attribute("data-edge") for e in driver.find_elements(By.CSS_SELECTOR, "svg [data-edge]"))
        fetched = driver.execute_script("return performance.getEntriesByType('resource').map(e => e.name)")
        scripts = driver.execute_script("return document.scripts.length")
        node_states = {
            e.get_attribute("data-node"): e.get_attribute("data-state")
            for e in driver.find_elements(By.CSS_SELECTOR, "svg [data-node]")
        }
        chain = driver.find_element(By.CSS_SELECTOR, 'tr[data-schema="service_004"] details')
        hidden_before = not chain.find_element(By.CSS_SELECTOR, "ol li").is_displayed()
        chain.find_element(By.CSS_SELECTOR, "summary").click()
        shown_after = chain.find_element(By.CSS_SELECTOR, "ol li").is_displayed()
        screenshot = driver.get_screenshot_as_png()
    finally:
        driver.quit()

    assert errors == []
    assert rows == names and sorted(nodes) == sorted(names)
    assert drawn == edges and len(edges) == 80
    assert fetched == [] and scripts == 0  # self-contained: nothing fetched, no script
    assert node_states["service_001"] == "pending" and node_states["service_005"] == "broken"
    assert hidden_before and shown_after  # the revision chain opens on demand
    width, height, pixels = png_pixels(screenshot)
    assert (width, height) == (1280, 800)
    colours = {row[i : i + 3] for row in pixels[::8] for i in range(0, len(row), 4 * 8)}
    assert len(colours) > 20  # not a blank page: text, bands and coloured nodes
    assert time.monotonic() - started < 30


@pytest.fixture
def chat_fleet(fleet):
    return fleet({"chat": CHAT, "guild": GUILD}, depends_on={"guild": ["chat"]})


def test_report_html_of_a_live_fleet_shows_state_drift_checksums_roles_and_lint(database, chat_fleet, tmp_path):
    assert run_cli(["upgrade-all"], url=database.url, python_path=chat_fleet).code == 0
    database.query("DELETE FROM alembic.alembic_version_guild")  # guild back at base: pending
    database.query("INSERT INTO alembic.alembic_version_guild VALUES ('guild1')")

    page = tmp_path / "report.html"
    result = run_cli(["report", "--html", str(page)], url=database.url, python_path=chat_fleet)

    assert result.code == 0, result.output
    assert f"wrote {page}: 4 schemas" in result.stdout
    html = page.read_text()
    for name in ("auth", "inventory", "chat", "guild"):
        assert f'data-schema="{name}"' in html and f'data-node="{name}"' in html
    assert 'data-edge="chat-&gt;guild"' in html
    assert 'data-node="guild" data-state="pending"' in html
    assert "require-concurrent-index-creation" in html  # chat3's lint finding
    assert "missing role: chat_owner does not exist" in html  # roles findings per schema
    assert "<script" not in html and "http://" not in html.replace('xmlns="http://www.w3.org/2000/svg"', "")


def test_report_markdown_has_lint_findings_and_drift_per_schema(database, chat_fleet):
    assert run_cli(["upgrade-all"], url=database.url, python_path=chat_fleet).code == 0

    result = run_cli(
        ["report", "--format", "markdown", "--schema", "chat", "--no-roles"], url=database.url, python_path=chat_fleet
    )

    assert result.code == 0, result.output
    out = result.stdout
    assert out.startswith("## gamedb report\n")
    assert "| `chat` | default | drift | `chat3` | `chat3` | 0 | ok |" in out  # the scratch models are empty
    assert "### Lint findings\n\n#### chat\n\n- **require-concurrent-index-creation** in `chat3`" in out
    assert "### Drift (models vs database)\n\n#### chat\n\n- table chat.t is in the database, not in the models" in out
    assert "guild" not in out.split("### Lint findings")[0]


def test_report_json_and_an_edited_revision_is_a_state_not_a_refusal(database, chat_fleet):
    assert run_cli(["upgrade-all"], url=database.url, python_path=chat_fleet).code == 0
    path = next((chat_fleet[0] / "game_chat" / "versions").glob("chat2_*.py"))
    path.write_text(path.read_text().replace("x text", "x varchar(10)"))

    result = run_cli(["report", "--format", "json", "--no-lint"], url=database.url, python_path=chat_fleet)

    assert result.code == 0, result.output
    chat = next(s for s in json.loads(result.stdout)["schemas"] if s["schema"] == "chat")
    assert chat["state"] == "edited"
    assert chat["checksum_problems"][0].startswith("schema 'chat': applied revision chat2 was edited")
    assert [r["revision"] for r in chat["revisions"]] == ["chat1", "chat2", "chat3"]


def test_a_report_file_in_a_missing_directory_is_one_error_line(database, tmp_path):
    result = run_cli(["report", "--html", str(tmp_path / "nope" / "r.html")], url=database.url)
    assert result.code == 2
    assert (
        result.stderr.strip()
        == f"gamedb: error: --html {tmp_path / 'nope' / 'r.html'}: not a file in an existing directory"
    )
    assert not Path(tmp_path / "nope").exists()


@pytest.mark.unit
def test_the_layout_puts_each_schema_one_level_right_of_its_deepest_dependency_and_a_band_per_server():
    from gamedb.review.layout import layered_layout, levels

    depends = {"auth": [], "inventory": [], "chat": ["auth"], "shop": ["auth", "inventory"], "guild": ["chat"]}
    assert levels(depends) == {"auth": 0, "inventory": 0, "chat": 1, "shop": 1, "guild": 2}

    layout = layered_layout({"default": ["auth", "inventory", "chat", "shop"], "hot": ["guild"]}, depends)

    assert layout.nodes["auth"].x < layout.nodes["chat"].x < layout.nodes["guild"].x
    assert layout.nodes["chat"].x == layout.nodes["shop"].x
    assert [band.server for band in layout.bands] == ["default", "hot"]
    hot = layout.bands[1]
    assert hot.y <= layout.nodes["guild"].y < hot.y + hot.height
    assert all(box.y + 24 <= layout.bands[0].y + layout.bands[0].height for box in list(layout.nodes.values())[:4])
