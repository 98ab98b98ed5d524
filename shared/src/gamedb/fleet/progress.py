"""Progress of a long `upgrade-all`, on stderr: a live line on a terminal (schemas done/total, each
schema running with its revision, elapsed time), plain lines elsewhere (CI logs, pipes: no carriage
returns, no escape codes), nothing with `--quiet`.

Workers report through a queue (see gamedb.fleet.upgrade): "start" when a schema begins and "step"
after each revision commits. The revision shown as running is the next pending one, known from the
revision graph, so a worker never has to announce a revision before it runs.
"""

from __future__ import annotations

import queue
import shutil
import sys
import threading
import time
from collections.abc import Mapping
from typing import Any, TextIO

REFRESH_SECONDS = 0.5  # how often the live line's clock moves


class Progress:
    """What a run has done so far, drawn on `stream` as a live line or as plain lines."""

    def __init__(self, stream: TextIO | None = None, *, live: bool | None = None) -> None:
        self.stream = stream if stream is not None else sys.stderr
        self.live = self.stream.isatty() if live is None else live
        self.started = time.monotonic()
        self.total = 0
        self.done = 0
        self.pending: dict[str, list[str]] = {}
        self.running: dict[str, int] = {}  # schema -> revisions applied so far
        self._lock = threading.Lock()
        self._drawn = False

    def begin(self, pending: Mapping[str, list[str]]) -> None:
        """The schemas with work, each with the revisions it will apply."""
        self.pending = {name: list(revs) for name, revs in pending.items()}
        self.total = len(self.pending)
        self.started = time.monotonic()

    def event(self, kind: str, schema: str) -> None:
        """A worker's report: "start" (the schema began) or "step" (one of its revisions committed)."""
        with self._lock:
            if kind == "start":
                self.running[schema] = 0
                count = len(self.pending.get(schema, []))
                self._say(f"{schema}: started, {count} revision(s) to apply")
            elif kind == "step" and schema in self.running:
                self.running[schema] += 1
                if self.live:
                    self._draw()

    def finished(self, schema: str, outcome: str) -> None:
        """A schema's run ended (`outcome`: "at head", "failed", "interrupted")."""
        with self._lock:
            self.running.pop(schema, None)
            self.done += 1
            self._say(f"{schema}: {outcome}")

    def tick(self) -> None:
        """Redraw the live line (its clock)."""
        with self._lock:
            if self.live and self.running:
                self._draw()

    def close(self) -> None:
        """Clear the live line, so the report that follows starts on a clean line."""
        with self._lock:
            if self.live and self._drawn:
                self.stream.write("\r\x1b[K")
                self.stream.flush()
                self._drawn = False

    def line(self) -> str:
        """The live line's text: done/total, each running schema with its revision, elapsed."""
        parts = []
        for name, applied in self.running.items():
            revisions = self.pending.get(name, [])
            now = revisions[applied] if applied < len(revisions) else "finishing"
            parts.append(f"{name}: {now} ({min(applied + 1, len(revisions))}/{len(revisions)})")
        running = ", ".join(parts) or "waiting"
        return f"upgrade-all [{self.done}/{self.total} schemas] {running}  {self._elapsed()}"

    def _elapsed(self) -> str:
        seconds = time.monotonic() - self.started
        return f"{seconds:.1f}s" if seconds < 60 else f"{int(seconds // 60)}m{int(seconds % 60):02d}s"

    def _say(self, text: str) -> None:
        if self.live:
            self._draw()
            return
        self.stream.write(f"progress [{self.done}/{self.total}] {text} ({self._elapsed()})\n")
        self.stream.flush()

    def _draw(self) -> None:
        width = shutil.get_terminal_size((100, 20)).columns - 1
        text = self.line()
        if len(text) > width:
            text = text[: max(width - 1, 10)] + "\u2026"
        self.stream.write(f"\r\x1b[K{text}")
        self.stream.flush()
        self._drawn = True


class Listener:
    """A thread in the parent that feeds a Progress from the workers' queue and moves its clock."""

    def __init__(self, progress: Progress, events: Any) -> None:
        self.progress = progress
        self.events = events
        self.thread = threading.Thread(target=self._run, name="gamedb-progress", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while True:
            try:
                item = self.events.get(timeout=REFRESH_SECONDS)
            except queue.Empty:
                self.progress.tick()
                continue
            except (EOFError, OSError):  # the queue was closed under us
                return
            if item is None:
                return
            self.progress.event(*item)

    def stop(self) -> None:
        self.events.put(None)
        self.thread.join(timeout=5)
        self.progress.close()
