"""The wheel: built from this checkout, it ships the demo dataset and models but not their generators."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_the_wheel_ships_the_demo_but_not_the_scripts_that_made_it(tmp_path: Path) -> None:
    build = ("wheel", "-q", "--no-deps", "--no-build-isolation", "-w", str(tmp_path), ".")
    subprocess.run(
        [sys.executable, "-m", "pip", *build],
        cwd=ROOT,
        check=True,
        capture_output=True,
    )
    (wheel,) = tmp_path.glob("*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    demo = {name for name in names if name.startswith("pytest_tagger_showdown/demo/")}
    assert demo == {
        "pytest_tagger_showdown/demo/__init__.py",
        "pytest_tagger_showdown/demo/demo/data.db",
        "pytest_tagger_showdown/demo/models/demo-large/model.onnx",
        "pytest_tagger_showdown/demo/models/demo-large/selected_tags.csv",
        "pytest_tagger_showdown/demo/models/demo-small/model.onnx",
        "pytest_tagger_showdown/demo/models/demo-small/selected_tags.csv",
    }
    assert not any(name.startswith(("fixtures/", "tests/")) for name in names)
    metadata = next(name for name in names if name.endswith(".dist-info/METADATA"))
    assert "License-Expression: MIT" in zipfile.ZipFile(wheel).read(metadata).decode()
