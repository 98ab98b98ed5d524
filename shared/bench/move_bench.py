"""Benchmark: `gamedb move` of a schema of N rows against the downtime way, `pg_dump -n | psql`.

Run with `nox -s bench` (or `python shared/bench/move_bench.py --rows 1000000`). Two embedded
servers on this machine (the source with logical WAL and a TCP listener); the schema is the repo's
`inventory` with N rows in `inventory.items`. Measured in one run:
  move_s        `gamedb move inventory --to hot`, start to exit (checks, target by migrations, copy,
                cut-over, placement rewritten)
  copy_s        the initial copy, as the move reports it
  pause_ms      writes refused/waiting on the source during the cut-over, as the move reports it
  app_gap_ms    the longest wait an app inserting throughout saw between two committed inserts
  dump_s        `pg_dump -n inventory source | psql target` of the same schema: with it, writes
                must stop for the whole time (or are lost), so it is the downtime way's pause
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import psycopg

from gamedb.server import embedded
from gamedb.testing import ThrowawayDatabase

REPO = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def gamedb(args: list[str], project: Path, env: dict[str, str]) -> str:
    proc = subprocess.run(
        [sys.executable, "-m", "gamedb", *args], cwd=project, env=env, capture_output=True, text=True, check=False
    )
    if proc.returncode:
        raise SystemExit(f"gamedb {' '.join(args)} failed: {proc.stderr.strip()}")
    return proc.stdout


class Writer(threading.Thread):
    """Inserts one row at a time into the source until refused; records the longest gap."""

    def __init__(self, libpq: str) -> None:
        super().__init__(daemon=True)
        self.libpq, self.longest, self.rows = libpq, 0.0, 0

    def run(self) -> None:
        with psycopg.connect(self.libpq, autocommit=True) as conn:
            last = time.monotonic()
            while True:
                try:
                    conn.execute("INSERT INTO inventory.items (sku, name) VALUES (%s, 'live')", (f"live{self.rows}",))
                except psycopg.Error:
                    self.longest = max(self.longest, time.monotonic() - last)  # waited, then refused
                    return
                now = time.monotonic()
                self.longest, last, self.rows = max(self.longest, now - last), now, self.rows + 1
                time.sleep(0.001)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    rows = parser.parse_args().rows
    work = Path(tempfile.mkdtemp(prefix="gamedb-move-bench-"))
    source_port, target_port = free_port(), free_port()
    source_admin = embedded.start_server(work / "source", keep_running=False, listen_port=source_port)
    target_admin = embedded.start_server(work / "target", keep_running=False, listen_port=target_port)
    source = ThrowawayDatabase(source_admin.replace("/postgres?", "/postgres?", 1))
    source_tcp = f"postgresql+psycopg://postgres@127.0.0.1:{source_port}/{source.name}"
    moved_to, dumped_to = ThrowawayDatabase(target_admin), ThrowawayDatabase(target_admin)
    project = work / "project"
    project.mkdir()
    for name in ("alembic.ini", "pyproject.toml"):
        shutil.copy(REPO / name, project / name)
    shutil.copytree(REPO / "migrations", project / "migrations")
    env = {**os.environ, "GAMEDB_URL": source_tcp, "GAMEDB_URL_HOT": moved_to.url}
    gamedb(["upgrade-all"], project, env)
    gamedb(["roles", "apply"], project, env)
    source.query(
        "INSERT INTO inventory.items (sku, name) SELECT 'sku' || g, 'item ' || g FROM generate_series(1, %s) g",
        (rows,),
    )
    source.query("VACUUM ANALYZE inventory.items")

    bin_dir = embedded.bin_dir()
    assert bin_dir is not None
    started = time.monotonic()
    dump = subprocess.Popen(
        [str(bin_dir / "pg_dump"), "-n", "inventory", "-O", "-x", "-d", source.libpq.replace("+psycopg", "")],
        stdout=subprocess.PIPE,
    )
    subprocess.run(
        [str(bin_dir / "psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", dumped_to.libpq],
        stdin=dump.stdout,
        check=True,
        stdout=subprocess.DEVNULL,
    )
    dump.wait()
    dump_s = time.monotonic() - started

    writer = Writer(source.libpq)
    writer.start()
    time.sleep(0.5)
    started = time.monotonic()
    out = gamedb(["move", "inventory", "--to", "hot"], project, env)
    move_s = time.monotonic() - started
    writer.join(timeout=30)
    copy_s = float(re.search(r"initial copy ([\d.]+) s", out)[1])
    pause_ms = float(re.search(r"writes paused (\d+) ms", out)[1])
    print(f"move of inventory ({rows:,} rows, a writer inserting throughout: {writer.rows:,} rows during the move)")
    print(f"  gamedb move         {move_s:7.2f} s in all, initial copy {copy_s:.2f} s")
    print(
        f"  write pause         {pause_ms:7.0f} ms reported by the move; longest gap the writer saw "
        f"{writer.longest * 1000:.0f} ms"
    )
    print(f"  pg_dump -n | psql   {dump_s:7.2f} s (writes stopped the whole time)")
    print(
        f"  ratios              move / dump {move_s / dump_s:.2f}x; downtime: dump / move's pause "
        f"{dump_s * 1000 / max(pause_ms, 1):.0f}x shorter with gamedb move"
    )
    for db in (moved_to, dumped_to, source):
        db.drop()


if __name__ == "__main__":
    main()
