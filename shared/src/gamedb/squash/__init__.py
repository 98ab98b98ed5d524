"""`gamedb squash`: a schema's revisions from its first through REV replaced by one revision with REV's id.

`dump.py` turns a throwaway database built through the old chain into statements (pg_dump);
`statements.py` splits and escapes SQL text; `data_steps.py` finds the data steps of revision files;
`catalog.py` is the snapshot both chains are compared by; `revision_file.py` writes the new file with
the markers gamedb.migrate.squash_markers reads (`squashed_revisions`, `squashed_checksums`); `run.py`
is one squash.
"""

from __future__ import annotations

from gamedb.migrate.squash_markers import SquashMarker, squash_markers

__all__ = ["SquashMarker", "squash_markers"]
