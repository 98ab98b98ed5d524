"""What the gamedb distribution hands to code that imports it."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

from conftest import REPO


def test_the_built_wheel_ships_py_typed_so_service_code_gets_gamedbs_types(tmp_path: Path) -> None:
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(tmp_path), str(REPO / "shared")],
        check=True,
        capture_output=True,
    )
    (wheel,) = tmp_path.glob("gamedb-*.whl")
    assert "gamedb/py.typed" in zipfile.ZipFile(wheel).namelist()
