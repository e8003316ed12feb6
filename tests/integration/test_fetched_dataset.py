"""A dataset fetched from a (fake) Danbooru runs in the showdown: control scores 1.0 on every post."""

from __future__ import annotations

from pathlib import Path

import pytest

from pytest_tagger_showdown import cli
from pytest_tagger_showdown.columns import post_rows
from tests.fakes.danbooru import FakeDanbooru
from tests.helpers.runs import ShowdownRun


def test_control_scores_one_on_every_fetched_post(
    run_showdown: ShowdownRun, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "data.db"
    with FakeDanbooru() as danbooru:
        for n in range(6):
            for rating in "gsqe":
                danbooru.add_post(
                    rating,
                    general=("1girl", "solo", f"pose_{n}"),
                    character=(f"char_{n % 2}",),
                    ext=("png", "jpg", "gif", "webp", "mp4")[n % 5],
                    animated=n % 5 == 2,
                    sample=n % 3 == 0,
                )
        code = cli.main(
            [
                "fetch", "--db", str(db), "--api-url", danbooru.url, "--per-rating", "3",
                "--page-skip", "1", "--page-size", "2",
            ]
        )  # fmt: skip
        fetched = set(danbooru.downloads)
    capsys.readouterr()
    assert code == 0
    assert len(fetched) == 12

    result, document = run_showdown("--tagger", "control", "--showdown-db", str(db))

    assert result.ret == 0
    scores = {post["post_id"]: post["score"] for post in post_rows(document) if post["tagger"] == "control"}
    assert scores == dict.fromkeys(fetched, 1.0)
    assert document["taggers"]["control"]["avg_score"] == 1.0
