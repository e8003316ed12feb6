"""The dataset-metrics table printed under the showdown table at the end of a run."""

from __future__ import annotations

from tabulate import tabulate

from ..analysis import RunAnalysis

HEADERS = ("tagger", "scores from", "F1@P=R", "at", "micro F1", "macro F1", "MCC", "mAP", "distance score")


def _number(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def format_metrics(analysis: RunAnalysis) -> str:
    """One row per tagger: the dataset-level metrics and the distance-aware score."""
    rows = []
    for summary in analysis.summaries:
        metrics = analysis.metrics.get(summary.tagger)
        if metrics is None:
            continue
        overall = metrics.overall
        point = overall.equal_point
        rows.append(
            (
                summary.tagger,
                metrics.source,
                _number(None if point is None else point.f1),
                _number(None if point is None else point.threshold),
                _number(overall.micro.f1),
                _number(overall.macro.f1),
                _number(overall.mcc),
                _number(overall.mean_average_precision),
                _number(analysis.distance_score(summary.tagger)),
            )
        )
    return tabulate(rows, headers=HEADERS, tablefmt="simple", disable_numparse=True)
