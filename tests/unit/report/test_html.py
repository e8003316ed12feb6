"""The HTML report: self-contained, every name escaped, the plots and thumbnails embedded and valid."""

from __future__ import annotations

import base64
import csv
import dataclasses
import io
import re
from importlib.metadata import version
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from pytest_tagger_showdown.analysis import RunAnalysis, analyse_run
from pytest_tagger_showdown.compare import gate_against
from pytest_tagger_showdown.dataset.post import Post
from pytest_tagger_showdown.outputs import write_outputs
from pytest_tagger_showdown.prediction import Prediction
from pytest_tagger_showdown.probabilities import ProbabilityCollector, RowEncoder
from pytest_tagger_showdown.report.html import render_report
from pytest_tagger_showdown.results import PostResult, truth_tags
from pytest_tagger_showdown.scoring import score_prediction
from pytest_tagger_showdown.taggers.control import ControlTagger
from pytest_tagger_showdown.taggers.spec import TaggerSpec
from pytest_tagger_showdown.tags import TagCategory
from pytest_tagger_showdown.vocabulary import Vocabulary
from tests.helpers.modelmaker import solid_png

G = TagCategory.GENERAL
EVIL_TAG = "<script>alert(1)</script>"
NAMES = ("general", "sensitive", "questionable", "explicit", ">_<", EVIL_TAG, "cat")
MODEL = ControlTagger(TaggerSpec(name="model", backend="control"))
MODEL.vocabulary = Vocabulary(NAMES, (9, 9, 9, 9, 0, 0, 0))


def posts() -> list[Post]:
    tag_sets = [{">_<": G, "cat": G}, {"cat": G}, {EVIL_TAG: G}, {">_<": G}]
    return [
        Post(id=10 + i, md5="x", rating="gsqe"[i], file_ext="png", tags=tags)
        for i, tags in enumerate(tag_sets)
    ]


def analysis(*extra: PostResult) -> RunAnalysis:
    """Two taggers: one with probabilities (named to need escaping), the control without; plus ``extra``."""
    encoder, collector = RowEncoder(), ProbabilityCollector()
    results: list[PostResult] = []
    rng = np.random.default_rng(0)
    for post in posts():
        for tagger, row in (("<b>model</b>", rng.random(len(NAMES)).astype(np.float32)), ("control", None)):
            tags = dict.fromkeys(post.tags, 1.0) if row is None else {">_<": 0.9, "cat": 0.6}
            prediction = Prediction(tags=tags, rating=post.rating if row is None else "g", probabilities=row)
            result = PostResult(
                tagger=tagger, post_id=post.id, rating=post.rating,
                score=score_prediction(post, prediction), predicted=tuple(sorted(tags)),
                predicted_rating=prediction.rating, truth=truth_tags(post, set(TagCategory)),
                preprocess_s=0.01, inference_s=0.02, probabilities=row,
            )  # fmt: skip
            results.append(result)
            message = encoder.encode(MODEL, result)
            if message is not None:
                collector.add(message)
    return analyse_run(
        [*results, *extra], collector, posts(), dataset="data.db", categories=[c.value for c in TagCategory]
    )


@pytest.fixture(scope="module")
def page() -> str:
    run = analysis()
    gate = gate_against(run.document, run.document, label="run <0001>", margin=0.02)
    images = {p.id: solid_png((200, 40 * i, 40)) for i, p in enumerate(posts())}
    return render_report(
        run, images=images.__getitem__, comparison=(gate.comparison, gate.margin, gate.label)
    )


def test_every_name_is_escaped(page: str) -> None:
    assert "<script" not in page.lower()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "&gt;_&lt;" in page
    assert ">_<" not in page
    assert "&lt;b&gt;model&lt;/b&gt;" in page
    assert "<b>model" not in page
    assert "run &lt;0001&gt;" in page


def test_the_page_is_self_contained(page: str) -> None:
    assert "http://" not in page
    assert "https://" not in page
    sources = re.findall(r'<img src="([^"]*)"', page)
    assert sources
    assert all(s.startswith("data:image/") for s in sources)
    assert not re.search(r"<(link|script|iframe)\b", page)


def test_plots_and_thumbnails_are_valid_images(page: str) -> None:
    sources = re.findall(r'<img src="data:image/(png|jpeg);base64,([^"]+)"', page)
    kinds = [kind for kind, _ in sources]
    assert kinds.count("png") == 5  # histogram, cut at 0, error rates, per rating, precision-recall
    assert kinds.count("jpeg") == 4  # a thumbnail per worst post of the model; the control is perfect
    assert len({data for kind, data in sources if kind == "jpeg"}) == 4
    for _, data in sources:
        with Image.open(io.BytesIO(base64.b64decode(data))) as image:
            image.load()
            assert image.width > 50


def test_tables_carry_the_numbers(page: str) -> None:
    summary = page[page.index('<table class="summary">') :]
    summary = summary[: summary.index("</table>")]
    rows = re.findall(r"<tr><td>(.*?)</td>", summary)
    assert rows == ["control", "&lt;b&gt;model&lt;/b&gt;"]
    assert "<td>1.000</td>" in summary  # the control's average score
    metrics = page[page.index('<table class="metrics">') :]
    assert "kept tags" in metrics
    assert "probabilities" in metrics
    by_rating = page[page.index('<table class="by-rating">') :]
    assert by_rating.index("general") < by_rating.index("sensitive") < by_rating.index("explicit")


def test_outputs_written_together(tmp_path: Path) -> None:
    run = analysis()
    written, errors = write_outputs(
        run,
        json_path=tmp_path / "out.json",
        csv_path=tmp_path / "out.csv",
        report_path=tmp_path / "out.html",
    )
    assert errors == []
    assert [p.name for p in written] == ["out.json", "out.probabilities.npz", "out.csv", "out.html"]
    with (tmp_path / "out.csv").open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 8
    first = rows[0]
    assert (first["tagger"], first["post_id"], first["truth"]) == ("<b>model</b>", "10", ">_< cat rating:g")
    assert float(first["score"]) == 1.0  # >_< and cat and the rating g: all right
    # Post 11 (sensitive, only cat): >_< is wrong, cat right, the rating g wrong: (1 - 2) / 2.
    assert (rows[1]["post_id"], float(rows[1]["score"])) == ("11", -0.5)
    assert float(first["distance_score"]) == pytest.approx(run.distance_scores["<b>model</b>", 10])
    control = [r for r in rows if r["tagger"] == "control"]
    assert {r["score"] for r in control} == {"1"}
    assert {r["distance_score"] for r in control} == {"1"}
    assert {r["inference_s"] for r in rows} == {"0.02"}  # 6 significant digits, no binary noise


def _tag_spans(page: str) -> dict[str, list[str]]:
    """The worst-posts section's tag colouring: class -> tags, in page order."""
    spans: dict[str, list[str]] = {"correct": [], "wrong": [], "missed": []}
    for block in re.findall(r'<div class="tags">(.*?)</div>', page):
        for css, tag in re.findall(r'<span class="(\w+)">(.*?)</span>', block):
            spans[css].append(tag)
    return spans


@pytest.mark.parametrize(
    ("predicted", "truth", "correct", "wrong", "missed"),
    [
        ("g", "g", ["cat", "rating:g"], ["dog"], []),
        ("safe", "g", ["cat", "rating:g"], ["dog"], []),  # a pre-2022 safe is right on g and s
        ("safe", "s", ["cat", "rating:s"], ["dog"], []),
        ("safe", "q", ["cat"], ["dog", "rating:safe"], ["rating:q"]),
        ("e", "g", ["cat"], ["dog", "rating:e"], ["rating:g"]),
    ],
)
def test_the_report_colours_the_rating_by_the_rating_rule(
    predicted: str, truth: str, correct: list[str], wrong: list[str], missed: list[str]
) -> None:
    post = Post(id=1, md5="x", rating=truth, file_ext="png", tags={"cat": G})
    # "dog" is always wrong, so the post is never perfect and the worst-posts section shows it.
    prediction = Prediction(tags={"cat": 0.9, "dog": 0.8}, rating=predicted)
    result = PostResult(
        tagger="t", post_id=post.id, rating=truth, score=score_prediction(post, prediction),
        predicted=("cat", "dog"), predicted_rating=predicted, truth=truth_tags(post, set(TagCategory)),
    )  # fmt: skip
    run = analyse_run([result], ProbabilityCollector(), [post], dataset="d.db", categories=["general"])
    assert _tag_spans(render_report(run)) == {"correct": correct, "wrong": wrong, "missed": missed}


def section(page: str, heading: str) -> str:
    """The page from ``heading`` up to the next h2."""
    start = page.index(heading)
    end = page.find("<h2>", start + len(heading))
    return page[start : end if end >= 0 else len(page)]


def test_errored_posts_are_listed_with_their_reasons() -> None:
    failed = PostResult(
        tagger="control", post_id=99, rating="q", score=None, error="ImageError: cannot decode <the> image"
    )
    page = render_report(analysis(failed))
    errors = section(page, "<h3>errored posts (1)</h3>")
    rows = re.findall(r"<tr><td>(.*?)</td><td>(.*?)</td><td>(.*?)</td></tr>", errors)
    assert rows == [("control", "post99-q", "ImageError: cannot decode &lt;the&gt; image")]
    assert "9 (tagger, post) pairs, 1 errored" in page
    assert "errored posts" not in render_report(analysis())


def test_no_worst_posts_for_a_tagger_whose_posts_are_all_perfect(page: str) -> None:
    worst = section(page, "worst 5 posts per tagger")
    control = worst[worst.index("<h3>control</h3>") :]
    control = control[: control.index("<h3>", 4)] if "<h3>" in control[4:] else control
    assert "all 4 scored posts are perfect" in control
    assert 'class="post"' not in control
    model = worst[worst.index("<h3>&lt;b&gt;model&lt;/b&gt;</h3>") :]
    assert model.count('class="post"') == 4


def test_header_names_dataset_categories_and_package_version(page: str) -> None:
    header = page[: page.index("<h2>results</h2>")]
    cells = dict(re.findall(r"<tr><th>(.*?)</th><td>(.*?)</td></tr>", header))
    assert cells["dataset"] == "data.db"
    assert cells["categories"] == "artist, character, copyright, general, meta"
    assert cells["package"] == f"pytest-tagger-showdown {version('pytest-tagger-showdown')}"
    assert 'class="taggers"' not in header  # nothing recorded per tagger: no empty table


def test_header_shows_what_the_document_records_per_tagger() -> None:
    run = analysis()
    document = dict(run.document)
    document["package_version"] = "9.9.9"
    document["taggers"] = {name: dict(entry) for name, entry in document["taggers"].items()}
    document["taggers"]["<b>model</b>"].update(
        thresholds={"general": 0.35, "character": 0.85},
        provider="CPUExecutionProvider",
        model_fingerprint="sha256:0123abcd",
    )
    document["taggers"]["control"]["provider"] = "none"
    page = render_report(dataclasses.replace(run, document=document))
    header = page[: page.index("<h2>results</h2>")]
    assert "pytest-tagger-showdown 9.9.9" in header
    table = header[header.index('<table class="taggers">') :]
    assert re.findall(r"<th>(.*?)</th>", table) == ["tagger", "thresholds", "provider", "model"]
    rows = re.findall(r"<tr><td>(.*?)</td><td>(.*?)</td><td>(.*?)</td><td>(.*?)</td></tr>", table)
    assert sorted(rows) == [
        (
            "&lt;b&gt;model&lt;/b&gt;",
            "general 0.35, character 0.85",
            "CPUExecutionProvider",
            "sha256:0123abcd",
        ),
        ("control", "-", "none", "-"),
    ]


def test_a_thumbnail_is_upright_as_its_exif_orientation_says() -> None:
    """A 60x40 JPEG stored sideways with Orientation=6 is shown 40 wide and 60 high, as the taggers
    see it and a browser shows the original (before: 60 wide, lying on its side)."""
    from PIL import ExifTags

    from pytest_tagger_showdown.report.html import thumbnail_uri

    exif = Image.Exif()
    exif[ExifTags.Base.Orientation] = 6
    buffer = io.BytesIO()
    Image.new("RGB", (60, 40), (200, 30, 30)).save(buffer, "JPEG", exif=exif)
    uri = thumbnail_uri(buffer.getvalue(), side=120)
    with Image.open(io.BytesIO(base64.b64decode(uri.split(",", 1)[1]))) as shown:
        assert shown.size == (40, 60)
