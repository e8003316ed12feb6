"""The ``--showdown-report`` page: one self-contained HTML file, viewable offline, without scripts.

Plots and thumbnails are embedded as ``data:`` URIs; every piece of text that comes from a dataset,
a tagger or a user (tag names such as ``>_<``, tagger names, file names) goes through
:func:`html.escape`, so no tag can break or script the page.
"""

from __future__ import annotations

import base64
import html
import io
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from statistics import fmean
from typing import TYPE_CHECKING, Any, Final

from .. import atomic
from ..analysis import RunAnalysis
from ..compare import COMPARISON_HEADERS, RunComparison, comparison_rows
from ..errors import ShowdownError
from ..metrics import SliceMetrics
from ..probabilities import SOURCE_PROBABILITIES
from ..results import PostResult
from ..results import package_version as installed_version
from ..tag_distance import SOURCES
from ..tags import RATING_NAMES, RATINGS, predicted_rating_tag
from . import plots
from .table import HEADERS, summary_row

if TYPE_CHECKING:
    from matplotlib.figure import Figure

#: Fetches a post's image bytes (``Dataset.image``); errors leave the thumbnail out.
ImageSource = Callable[[int], bytes]

THUMBNAIL_SIDE = 160

_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1200px; color: #222; }
h1 { margin-bottom: 0.2em; } h2 { margin-top: 1.6em; border-bottom: 1px solid #ccc; }
p.meta, p.note { color: #555; }
table { border-collapse: collapse; margin: 0.6em 0; font-size: 0.92em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: right; }
th:first-child, td:first-child { text-align: left; }
table.metrics td:nth-child(2), table.by-rating td:nth-child(2), table.by-category td:nth-child(2)
  { text-align: left; }
th { background: #f3f3f3; }
table.run th, table.run td, table.errors th, table.errors td, table.taggers th, table.taggers td
  { text-align: left; }
td:first-child { white-space: nowrap; }
figure { display: inline-block; width: 48%; margin: 0.5em 0.5%; vertical-align: top; }
figure img { width: 100%; }
.post { display: flex; gap: 1em; border: 1px solid #ddd; padding: 0.6em; margin: 0.6em 0; }
.post img { width: 160px; height: auto; object-fit: contain; background: #eee; flex: none; }
.tags span { display: inline-block; margin: 0.1em; padding: 0 0.35em; border-radius: 3px; }
.correct { background: #d8f0d8; } .wrong { background: #f6d5d5; } .missed { background: #e6e6e6; }
.drop { color: #b00; font-weight: bold; }
"""


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


def _number(value: float | None, digits: int = 3) -> str:
    return "-" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.{digits}f}"


def _table(headers: Sequence[str], rows: Iterable[Sequence[object]], *, css: str = "") -> str:
    head = "".join(f"<th>{_e(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{_e(cell)}</td>" for cell in row) + "</tr>\n" for row in rows)
    return f'<table class="{_e(css)}"><thead><tr>{head}</tr></thead><tbody>\n{body}</tbody></table>'


def _png_uri(data: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(data).decode("ascii")


def _figure(figure: Figure, caption: str) -> str:
    return (
        f'<figure><img src="{_png_uri(plots.png(figure))}" alt="{_e(caption)}">'
        f"<figcaption>{_e(caption)}</figcaption></figure>"
    )


def thumbnail_uri(image: bytes, side: int = THUMBNAIL_SIDE) -> str:
    """A small JPEG of an image as a data URI (transparency flattened on white), turned upright as
    its EXIF orientation says, as the taggers see it (and as a browser shows the original)."""
    from ..taggers.preprocess import composite_on_white, decode_image, upright

    picture = composite_on_white(upright(decode_image(image)))
    picture.thumbnail((side, side))
    buffer = io.BytesIO()
    picture.save(buffer, format="JPEG", quality=82)
    return "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def _summary_table(analysis: RunAnalysis) -> str:
    rows = [
        (*summary_row(s, mark_cached=False), _number(analysis.distance_score(s.tagger)))
        for s in analysis.summaries
    ]
    table = _table((*HEADERS, "distance score"), rows, css="summary")
    return f"{table}\n<p>distance score: {_e(SOURCES[analysis.distance_source])}</p>"


def _metrics_cells(m: SliceMetrics) -> list[str]:
    point = m.equal_point
    return [
        str(m.posts),
        str(m.tags),
        _number(m.micro.precision),
        _number(m.micro.recall),
        _number(m.micro.f1),
        _number(m.macro.f1),
        _number(m.mcc),
        "-" if point is None else f"{point.f1:.3f} @ {point.threshold:.3f}",
        _number(m.mean_average_precision),
    ]


_METRIC_HEADERS = ("posts", "true tags", "micro P", "micro R", "micro F1", "macro F1", "MCC", "F1@P=R", "mAP")


def _metrics_section(analysis: RunAnalysis) -> str:
    rows = [
        [name, m.source, str(m.vocabulary), *_metrics_cells(m.overall)]
        for name, m in analysis.metrics.items()
    ]
    parts = [_table(("tagger", "scores from", "vocabulary", *_METRIC_HEADERS), rows, css="metrics")]
    fallback = [name for name, m in analysis.metrics.items() if m.source != SOURCE_PROBABILITIES]
    if fallback:
        parts.append(
            f'<p class="note">{_e(", ".join(fallback))}: no probabilities (no model vocabulary), so '
            "its kept tags serve as 0/1 scores: AP, the sweep and F1@P=R are degenerate there.</p>"
        )
    outside = {name: m.truth_outside_vocabulary for name, m in analysis.metrics.items()}
    if any(outside.values()):
        listed = ", ".join(f"{name} {count}" for name, count in outside.items())
        parts.append(
            '<p class="note">These metrics judge each tagger on its own vocabulary; true tags it '
            f"cannot output are left out (the score counts them as missed): {_e(listed)}.</p>"
        )
    rating_rows = [
        [name, RATING_NAMES.get(rating, rating), *_metrics_cells(sliced)]
        for name, m in analysis.metrics.items()
        for rating, sliced in m.by_rating.items()
    ]
    category_rows = [
        [name, category, *_metrics_cells(sliced)]
        for name, m in analysis.metrics.items()
        for category, sliced in m.by_category.items()
    ]
    parts.append("<h3>per rating</h3>")
    parts.append(_table(("tagger", "rating", *_METRIC_HEADERS), rating_rows, css="by-rating"))
    parts.append("<h3>per tag category</h3>")
    parts.append(_table(("tagger", "category", *_METRIC_HEADERS), category_rows, css="by-category"))
    return "\n".join(parts)


def _rating_scores(results: Sequence[PostResult]) -> dict[str, dict[str, float]]:
    grouped: dict[str, dict[str, list[float]]] = {}
    for r in results:
        if r.score is not None:
            grouped.setdefault(r.tagger, {}).setdefault(r.rating, []).append(r.score.score)
    return {t: {rating: fmean(v) for rating, v in by.items()} for t, by in grouped.items()}


def _plots_section(analysis: RunAnalysis) -> str:
    scores: dict[str, list[float]] = {}
    for r in analysis.results:
        if r.score is not None:
            scores.setdefault(r.tagger, []).append(r.score.score)
    ordered = {s.tagger: scores.get(s.tagger, []) for s in analysis.summaries}
    errors: dict[str, list[float | None]] = {}
    for s in analysis.summaries:
        wrong_ratings = [
            float(r.score.incorrect_ratings) for r in analysis.results if r.tagger == s.tagger and r.score
        ]
        errors[s.tagger] = [
            s.incorrect_per_image,
            fmean(wrong_ratings) if wrong_ratings else None,
            s.practical_per_image,
        ]
    by_rating = _rating_scores(analysis.results)
    ratings = [r for r in RATINGS if any(r in v for v in by_rating.values())]
    curves = {
        name: (m.sweep.recall.tolist(), m.sweep.precision.tolist()) for name, m in analysis.metrics.items()
    }
    points = {
        name: (m.overall.equal_point.recall, m.overall.equal_point.precision)
        for name, m in analysis.metrics.items()
        if m.overall.equal_point is not None
    }
    colours = plots.tagger_colours([*ordered, *curves])
    figures = [
        _figure(plots.score_histogram(ordered, colours), "score histogram per tagger"),
        _figure(plots.score_histogram(ordered, colours, cut_at_zero=True), "score histogram, cut at 0"),
        _figure(
            plots.grouped_bars(
                errors,
                ["incorrect tags", "incorrect ratings", "practical (tags - ratings)"],
                colours,
                title="error rates",
                ylabel="per image",
            ),
            "error rates per image",
        ),
        _figure(
            plots.grouped_bars(
                {t: [by_rating.get(t, {}).get(r) for r in ratings] for t in ordered},
                [RATING_NAMES[r] for r in ratings],
                colours,
                title="average score per rating",
                ylabel="avg score",
            ),
            "average score per rating",
        ),
        _figure(plots.pr_curves(curves, colours, points), "precision-recall curves"),
    ]
    return "\n".join(figures)


def _post_tags(result: PostResult) -> str:
    truth = set(result.truth)
    predicted = set(result.predicted)
    if result.predicted_rating is not None:
        predicted.add(predicted_rating_tag(result.predicted_rating, result.rating))
    spans = [
        *(f'<span class="correct">{_e(t)}</span>' for t in sorted(predicted & truth)),
        *(f'<span class="wrong">{_e(t)}</span>' for t in sorted(predicted - truth)),
        *(f'<span class="missed">{_e(t)}</span>' for t in sorted(truth - predicted)),
    ]
    return " ".join(spans)


def _worst_section(analysis: RunAnalysis, images: ImageSource | None, worst: int) -> str:
    """Each tagger's lowest-scoring posts; a tagger whose every scored post is perfect gets one line."""
    parts = [
        '<p class="note">Tags: <span class="correct">correct</span> <span class="wrong">wrong</span> '
        '<span class="missed">missed</span>.</p>'
    ]
    thumbnails: dict[int, str] = {}
    for summary in analysis.summaries:
        scored = [r for r in analysis.results if r.tagger == summary.tagger and r.score is not None]
        ranked = sorted(scored, key=lambda r: (r.score.score if r.score else 0.0, r.post_id))[:worst]
        parts.append(f"<h3>{_e(summary.tagger)}</h3>")
        if all(r.score is not None and r.score.score == 1.0 for r in ranked):  # worst is perfect
            what = "no scored post" if not ranked else f"all {len(scored)} scored posts are perfect (score 1)"
            parts.append(f'<p class="note">{_e(what)}: nothing to show.</p>')
            continue
        for result in ranked:
            if images is not None and result.post_id not in thumbnails:
                try:
                    thumbnails[result.post_id] = thumbnail_uri(images(result.post_id))
                except ShowdownError:
                    thumbnails[result.post_id] = ""
            uri = thumbnails.get(result.post_id, "")
            image = f'<img src="{uri}" alt="{_e(result.label)}">' if uri else ""
            score = result.score.score if result.score else None
            distance = analysis.distance_scores.get((result.tagger, result.post_id))
            parts.append(
                f'<div class="post">{image}<div><b>{_e(result.label)}</b> score {_number(score)}, '
                f"distance score {_number(distance)}, rating {_e(result.rating)} predicted "
                f"{_e(result.predicted_rating or '-')}"
                f'<div class="tags">{_post_tags(result)}</div></div></div>'
            )
    return "\n".join(parts)


def _comparison_section(comparison: RunComparison, margin: float, label: str) -> str:
    rows = comparison_rows(comparison, margin)
    headers = COMPARISON_HEADERS
    return (
        f'<p class="meta">against {_e(label)}; paired bootstrap over posts, margin {margin:.3f}</p>'
        + _table(headers, rows, css="comparison")
    )


PACKAGE: Final = "pytest-tagger-showdown"
#: What the header shows per tagger, and the keys of a tagger's entry in the results document that
#: may carry it (recorded by the run where known: thresholds, provider, model fingerprint).
TAGGER_FACTS: Final = {
    "thresholds": ("thresholds",),
    "provider": ("provider", "providers", "execution_provider"),
    "model": ("model_fingerprint", "fingerprint", "model_revision"),
}


def package_version(document: Mapping[str, Any]) -> str:
    """The package version that produced the document: recorded in it, else the installed one."""
    recorded = document.get("package_version")
    return str(recorded) if recorded else installed_version()


def _fact_text(value: object) -> str:
    if isinstance(value, Mapping):
        return ", ".join(f"{key} {_fact_text(item)}" for key, item in value.items())
    if isinstance(value, list | tuple):
        return ", ".join(_fact_text(item) for item in value)
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def tagger_facts(document: Mapping[str, Any]) -> dict[str, dict[str, str]]:
    """Per tagger, the :data:`TAGGER_FACTS` its document entry records (only those it has)."""
    facts: dict[str, dict[str, str]] = {}
    for name, entry in document.get("taggers", {}).items():
        found = {}
        for fact, keys in TAGGER_FACTS.items():
            value = next(
                (entry[k] for k in keys if isinstance(entry, Mapping) and entry.get(k) is not None), None
            )
            if value is not None:
                found[fact] = _fact_text(value)
        facts[name] = found
    return facts


def _header(analysis: RunAnalysis, subtitle: str) -> str:
    """What produced the page: dataset, categories, package version and, per tagger, what the run recorded."""
    document = analysis.document
    errors = sum(1 for r in analysis.results if r.error is not None)
    categories = ", ".join(document.get("categories", ()))
    stopped = "interrupted (Ctrl-C): only the posts that ran; not gated, not saved as history"
    rows = [
        *([("run", stopped)] if document.get("interrupted") else []),
        ("dataset", str(document.get("dataset", "?"))),
        ("categories", "; ".join(part for part in (categories, subtitle.strip().rstrip(";")) if part)),
        ("results", f"{len(analysis.results)} (tagger, post) pairs, {errors} errored"),
        ("package", f"{PACKAGE} {package_version(document)}"),
        ("created", str(document.get("created", "-"))),
    ]  # fmt: skip
    parts = [
        '<table class="run"><tbody>'
        + "".join(f"<tr><th>{_e(key)}</th><td>{_e(value)}</td></tr>" for key, value in rows)
        + "</tbody></table>"
    ]
    facts = tagger_facts(document)
    shown = [fact for fact in TAGGER_FACTS if any(fact in found for found in facts.values())]
    if shown:
        parts.append(
            _table(
                ("tagger", *shown),
                ([name, *(found.get(fact, "-") for fact in shown)] for name, found in facts.items()),
                css="taggers",
            )
        )
    return "\n".join(parts)


def _errors_section(analysis: RunAnalysis) -> str:
    """Every post that errored, with its reason (nothing when none did)."""
    failed = sorted((r for r in analysis.results if r.error is not None), key=lambda r: (r.tagger, r.post_id))
    if not failed:
        return ""
    rows = [(r.tagger, r.label, r.error) for r in failed]
    return f"<h3>errored posts ({len(failed)})</h3>\n" + _table(
        ("tagger", "post", "reason"), rows, css="errors"
    )


def render_report(
    analysis: RunAnalysis,
    *,
    title: str = "tagger showdown",
    subtitle: str = "",
    images: ImageSource | None = None,
    comparison: tuple[RunComparison, float, str] | None = None,
    worst: int = 5,
) -> str:
    """The whole page; ``comparison`` is (comparison, margin, the compared run's name) when there is one."""
    sections = [
        f"<h1>{_e(title)}</h1>",
        _header(analysis, subtitle),
        "<h2>results</h2>",
        _summary_table(analysis),
        _errors_section(analysis),
        "<h2>dataset metrics</h2>",
        _metrics_section(analysis),
    ]
    if comparison is not None:
        sections += ["<h2>comparison</h2>", _comparison_section(*comparison)]
    sections += [
        "<h2>plots</h2>",
        _plots_section(analysis),
        f"<h2>worst {worst} posts per tagger</h2>",
        _worst_section(analysis, images, worst),
    ]
    body = "\n".join(sections)
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f"<title>{_e(title)}</title>\n<style>{_STYLE}</style>\n</head>\n<body>\n{body}\n</body>\n</html>\n"
    )


def write_report(path: Path, page: str) -> None:
    """Write the page atomically."""
    atomic.write_text(path, page)


def report_for(
    analysis: RunAnalysis,
    path: Path,
    *,
    images: ImageSource | None = None,
    comparison: tuple[RunComparison, float, str] | None = None,
    subtitle: str = "",
) -> None:
    """Render and write the report for a run."""
    write_report(path, render_report(analysis, images=images, comparison=comparison, subtitle=subtitle))
