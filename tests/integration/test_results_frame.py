"""A real run's per-post results as a DataFrame (saved run and --showdown-json) and as the CSV."""

from __future__ import annotations

import csv
import json
import math
import subprocess
import sys
from pathlib import Path

import pandas as pd  # type: ignore[import-untyped]
import pytest

from pytest_tagger_showdown import load_results_frame
from pytest_tagger_showdown.columns import post_rows
from pytest_tagger_showdown.errors import ShowdownError

NUMBERS = ("score", "distance_score", "precision", "recall", "f1", "preprocess_s", "inference_s")
COUNTS = ("correct", "incorrect", "missed", "truth_size", "practical_errors")


@pytest.fixture(scope="module")
def saved_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo's two models and the control on 8 posts, saved every way a run can be."""
    folder = tmp_path_factory.mktemp("frame")
    command = [
        sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-p", "no:randomly", "-q",
        "--tagger", "demo-small,demo-large,control", "--showdown-limit", "8",
        "--showdown-json", "run.json", "--showdown-csv", "posts.csv",
        f"--showdown-cache-dir={folder / 'cache'}",
        "--benchmark-save", "frame", "--benchmark-storage", f"file://{folder / 'storage'}",
    ]  # fmt: skip
    ran = subprocess.run(command, cwd=folder, capture_output=True, text=True, timeout=300, check=False)
    assert ran.returncode == 0, ran.stdout[-3000:] + ran.stderr[-3000:]
    return folder


def test_the_frame_of_a_showdown_json_holds_the_documents_numbers(saved_run: Path) -> None:
    document = json.loads((saved_run / "run.json").read_text())
    frame = load_results_frame(saved_run / "run.json")
    posts = sorted(post_rows(document), key=lambda p: (p["tagger"], p["post_id"]))
    assert len(frame) == len(posts) == 24
    assert list(frame["tagger"]) == [p["tagger"] for p in posts]
    assert list(frame["post_id"]) == [p["post_id"] for p in posts]
    for column in NUMBERS:
        assert frame[column].tolist() == [p[column] for p in posts], column
    for column in COUNTS:
        assert frame[column].tolist() == [p[column] for p in posts], column
    assert frame["truth"].tolist() == [tuple(p["truth"]) for p in posts]
    assert frame["rating_correct"].tolist() == [p["rating_correct"] for p in posts]
    # The frame is the notebook's way to the table's numbers: its means are the document's.
    for tagger, mean in frame.groupby("tagger")["score"].mean().items():
        assert mean == pytest.approx(document["taggers"][tagger]["avg_score"], abs=1e-12)
    assert str(frame["post_id"].dtype) == "int64"
    assert str(frame["correct"].dtype) == "Int64"


def test_the_frame_of_a_saved_benchmark_run_equals_the_json_one(saved_run: Path) -> None:
    storage = saved_run / "storage"
    saved = next(storage.glob("*/0001_frame.json"))
    assert "tagger_showdown" in json.loads(saved.read_text())
    from_file = load_results_frame(saved)
    by_name = load_results_frame("latest", storage=storage)
    from_json = load_results_frame(saved_run / "run.json")
    pd.testing.assert_frame_equal(from_file, by_name)
    # Same run: same posts and scores (the runtimes of a saved run are the same numbers too).
    pd.testing.assert_frame_equal(from_file, from_json)
    with pytest.raises(ShowdownError, match="no saved run '0042'"):
        load_results_frame("0042", storage=storage)


def test_the_csv_holds_the_frame_with_timings_rounded(saved_run: Path) -> None:
    frame = load_results_frame(saved_run / "run.json")
    with (saved_run / "posts.csv").open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert list(rows[0]) == list(frame.columns)
    assert len(rows) == len(frame)
    for row, (_, post) in zip(rows, frame.iterrows(), strict=True):
        assert (row["tagger"], int(row["post_id"])) == (post["tagger"], post["post_id"])
        assert row["truth"] == " ".join(post["truth"])
        for column in NUMBERS:
            expected = post[column]
            if pd.isna(expected):
                assert row[column] == ""
                continue
            # 6 significant digits: close to the JSON's number, and never binary noise.
            assert float(row[column]) == pytest.approx(expected, rel=5e-6, abs=1e-12), column
            digits = row[column].lstrip("-").split("e")[0].replace(".", "").lstrip("0")
            assert len(digits) <= 6, (column, row[column])
        for column in COUNTS:
            assert int(row[column]) == post[column]
    timings = [float(r["inference_s"]) for r in rows]
    assert all(math.isfinite(t) and t >= 0 for t in timings)
