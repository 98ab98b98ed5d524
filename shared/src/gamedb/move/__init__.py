"""`gamedb move SCHEMA --to SERVER`: a live schema moved to another server on PostgreSQL's logical
replication, then its placement line rewritten.

    checks.py       every reason not to start, read before anything changes
    replication.py  the publication, subscription and slot: made, watched, removed
    cutover.py      writes stopped, replay awaited, sequences copied, rows counted, source retired
    run.py          the steps in order, the markers a rerun reads, and the clean-up on any failure
"""

from __future__ import annotations

from gamedb.move.run import MoveReport, move_schema

__all__ = ["MoveReport", "move_schema"]
