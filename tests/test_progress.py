"""Progress of `upgrade-all` on stderr: a live line on a terminal, plain lines in CI and pipes, none with --quiet."""

from __future__ import annotations

import os
import pty
import subprocess
import sys

from conftest import REPO, cli_env, run_cli

SLOW = [
    ("slow1", [], []),
    ("slow2", ["CREATE TABLE slow.t (id int)", "SELECT pg_sleep(1.5)"], ["DROP TABLE slow.t"]),
    ("slow3", ["CREATE TABLE slow.u (id int)"], ["DROP TABLE slow.u"]),
]


def test_off_a_terminal_progress_is_plain_lines_per_schema(database, fleet):
    extra = fleet({"slow": SLOW})

    result = run_cli(["upgrade-all"], url=database.url, python_path=extra)  # pipes: no terminal

    assert result.code == 0, result.output
    lines = [line for line in result.stderr.splitlines() if line.startswith("progress ")]
    assert any(line.startswith("progress [") and "slow: started, 3 revision(s) to apply" in line for line in lines)
    assert any("slow: at head" in line for line in lines)
    assert lines[-1].startswith("progress [3/3] ")  # auth, inventory and slow, each counted once done
    assert "\r" not in result.output and "\x1b" not in result.output
    assert "upgraded slow: base -> slow3" in result.stdout  # the report itself is unchanged, on stdout


def test_quiet_silences_progress(database, fleet):
    extra = fleet({"slow": SLOW})

    result = run_cli(["upgrade-all", "--quiet"], url=database.url, python_path=extra)

    assert result.code == 0, result.output
    assert "progress" not in result.stderr
    assert "upgraded slow: base -> slow3" in result.stdout


def test_on_a_terminal_a_live_line_shows_done_total_the_schema_its_revision_and_the_time(database, fleet):
    extra = fleet({"slow": SLOW})
    master, slave = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "gamedb", "upgrade-all", "--jobs", "1"],
        cwd=REPO,
        env=cli_env(database.url, extra, COLUMNS="200"),
        stdout=subprocess.PIPE,
        stderr=slave,
        text=True,
    )
    os.close(slave)
    seen = b""
    while True:
        try:
            chunk = os.read(master, 4096)
        except OSError:  # the child closed the terminal
            break
        if not chunk:
            break
        seen += chunk
    os.close(master)
    stdout = proc.stdout.read()
    assert proc.wait(timeout=120) == 0, seen

    text = seen.decode()
    assert "\r\x1b[K" in text  # redrawn in place
    assert "upgrade-all [" in text and "/3 schemas] slow: slow2 (2/3)" in text  # slow2 sleeps: it is seen running
    frames = [frame for frame in text.split("\r\x1b[K") if frame.startswith("upgrade-all [")]
    assert any(frame.rstrip().endswith("s") and "." in frame.split()[-1] for frame in frames)  # elapsed, e.g. 1.5s
    assert text.endswith("\r\x1b[K")  # cleared before the report
    assert "progress [" not in text  # no plain lines on a terminal
    assert "upgraded slow: base -> slow3" in stdout


def test_the_moves_copy_line_shows_rows_per_table_copying_and_the_total():
    from gamedb.move.progress import copy_line

    line = copy_line("inventory", {"items": 12000, "player_items": 3000}, {"player_items": 3000}, 2, 3.24)

    assert line == "copying inventory: items 12,000 rows...; 1/2 table(s) done; 15,000 rows in total, 3.2s"
