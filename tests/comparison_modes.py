"""Drift tests run cold and warm: a skipped comparison must never hide what a full one finds.

`comparison` is "cold" (GAMEDB_FULL_COMPARISON=1: every schema at head is compared, the record of
clean comparisons is neither read nor written) or "warm" (gamedb's default: each clean comparison
is recorded, so a drift made after one, by SQL or by a model edit, meets a record and the catalog
and models fingerprints must send the schema to a full comparison).
"""

from __future__ import annotations

import pytest

from gamedb.fleet.status import FULL_COMPARISON_ENV


@pytest.fixture(params=["cold", "warm"])
def comparison(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    if request.param == "cold":
        monkeypatch.setenv(FULL_COMPARISON_ENV, "1")
    else:
        monkeypatch.delenv(FULL_COMPARISON_ENV, raising=False)
    return str(request.param)
