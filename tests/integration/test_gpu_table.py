"""``python -m benchmarks.gpu_table`` (issue 14's table, made for a lent GPU machine) runs end to end on
this CPU: a tiny WD14 model, four 64x64 posts, batches 1 and 2, no ``-n 4`` run. The script starts its
own pytest processes of the showdown, so it runs once here, not in each xdist mode.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

from benchmarks.gpu_table import ROOT, drop_predictions
from pytest_tagger_showdown.cache import ShowdownCache
from tests.helpers.modelmaker import write_tiny_tagger

ROWS = (
    "raw `session.run` on ready tensors, batch 1 / 2",
    "decode + reference preprocessing in a pool of",
    "a naive loop, one image at a time",
    "showdown cold, `--showdown-no-cache`",
    "showdown with prepared inputs cached, predictions not (inference only)",
    "showdown fully cached",
)


def usage(cache: Path) -> tuple[int, int]:
    """(prepared inputs, predictions) in a cache folder."""
    opened = ShowdownCache(cache, max_size=None)
    found = opened.usage()
    opened.close()
    return found["inputs"].entries, found["predictions"].entries


def test_the_table_has_every_row_with_positive_figures(tmp_path: Path) -> None:
    model = write_tiny_tagger(tmp_path / "tiny")
    out = tmp_path / "out"
    env = {key: value for key, value in os.environ.items() if not key.startswith("PYTEST_")}
    arguments = ["--model", str(model), "--images", "4", "--small", "--batches", "1,2", "--skip-n4"]
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.gpu_table", *arguments, "--out", str(out)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    *table, figures_line = done.stdout.strip().splitlines()
    figures = json.loads(figures_line)

    assert figures["images"] == 4
    assert figures["provider"] in figures["machine"]["providers"]
    assert list(figures["raw"]) == ["1", "2"]
    assert min(figures["raw"].values()) > 0
    assert figures["pool"] > 0
    assert figures["naive"] > 0
    assert "cold_n4" not in figures
    for label in ("cold", "inference_only", "cached"):
        # The item loop is part of the process: never slower than the whole process.
        assert 0 < figures[label]["process"] <= figures[label]["items"], label

    cells = {}
    for row in ROWS:
        line = next(line for line in table if line.startswith(f"| {row}"))
        cells[row] = [float(number) for number in re.findall(r"\d+\.\d+", line.split("|")[2])]
    assert cells[ROWS[0]] == list(figures["raw"].values())
    assert cells[ROWS[1]] == [figures["pool"]]
    assert cells[ROWS[3]] == [figures["cold"]["process"], figures["cold"]["items"]]
    assert cells[ROWS[5]] == [figures["cached"]["process"], figures["cached"]["items"]]
    assert any(line.startswith("| showdown cold with `-n 4`") and "not run" in line for line in table)
    assert (out / "gpu_table.md").read_text(encoding="utf-8").strip() == "\n".join(table).strip()

    # The cache after the last (fully cached) run holds both kinds; the inference-only rounds start
    # from its prepared inputs alone.
    assert usage(out / "cache") == (4, 4)
    drop_predictions(out / "cache")
    assert usage(out / "cache") == (4, 0)
