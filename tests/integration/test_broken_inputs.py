"""Broken inputs fail their own item with a clear message; the rest of the run goes on."""

from __future__ import annotations

from pathlib import Path

from pytest_tagger_showdown.columns import post_rows
from tests.helpers.datasets import four_ratings
from tests.helpers.modelmaker import make_wd14_folder
from tests.helpers.runs import ShowdownRun, table_rows


def test_a_corrupt_image_fails_one_item_only(run_showdown: ShowdownRun, tmp_path: Path) -> None:
    """For every tagger alike: the control decodes the image too."""
    db = four_ratings(tmp_path / "data.db", corrupt=103)
    model = make_wd14_folder(tmp_path / "tiny", size=32)
    tagger = f"onnx:{model.folder}"
    result, document = run_showdown("--tagger", f"{tagger},control", "--showdown-db", str(db), "-rf")
    assert result.ret == 1
    result.assert_outcomes(passed=14, failed=2)
    result.stdout.fnmatch_lines(
        ["post103-s: cannot decode the image (12 bytes): not in an image format Pillow reads"] * 2
    )
    rows = table_rows(result)
    for name in (tagger, "control"):
        assert (rows[name][1], rows[name][2]) == ("7", "1")  # images, errors
        assert document["taggers"][name]["images"] == 7
    errored = [(post["tagger"], post["post_id"]) for post in post_rows(document) if post["error"]]
    assert sorted(errored) == [("control", 103), (tagger, 103)]


def test_a_tagger_that_cannot_load_fails_its_items_with_the_reason(
    run_showdown: ShowdownRun, tmp_path: Path
) -> None:
    db = four_ratings(tmp_path / "data.db")
    empty = tmp_path / "empty-model"
    empty.mkdir()
    result, _ = run_showdown("--tagger", f"onnx:{empty},control", "--showdown-db", str(db))
    assert result.ret == 1
    # Loading is lazy (a run served from the cache never loads the model), so items fail in their call.
    result.assert_outcomes(passed=8, failed=9)  # its 8 posts, and no post scored fails the run too
    result.stdout.fnmatch_lines([f"tagger onnx:{empty}: {empty}/model.onnx does not exist"])
    result.stdout.fnmatch_lines(
        [f"FAIL scored: onnx:{empty}: no post was scored: every post errored (8 errors; the first: *"]
    )
    result.stdout.no_fnmatch_line("*During handling of the above exception*")
