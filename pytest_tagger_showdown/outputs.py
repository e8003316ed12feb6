"""The top of the package: everything a finished run writes, the files and the terminal summary.

Nothing below this module writes a run's outputs; they all read the one :class:`RunAnalysis`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from .analysis import RunAnalysis
from .compare import CompareGate, format_comparison
from .probabilities import save_stores
from .report.csv_export import write_csv
from .report.html import report_for
from .report.metrics_table import format_metrics
from .report.table import format_table
from .results import write_results
from .tag_distance import SOURCES

#: Writes one line of the terminal summary (pytest's ``TerminalReporter.write_line`` fits).
LineWriter = Callable[..., None]


def probabilities_path(json_path: Path) -> Path:
    """Where the probability store of a ``--showdown-json`` file goes: ``NAME.probabilities.npz``."""
    return json_path.with_name(f"{json_path.stem}.probabilities.npz")


def write_outputs(
    analysis: RunAnalysis,
    *,
    json_path: Path | None = None,
    csv_path: Path | None = None,
    report_path: Path | None = None,
    images: Callable[[int], bytes] | None = None,
    gate: CompareGate | None = None,
    subtitle: str = "",
) -> list[Path]:
    """Write the files asked for; returns their paths. The JSON brings its probability store along."""
    written: list[Path] = []
    if json_path is not None:
        write_results(json_path, analysis.document)
        save_stores(probabilities_path(json_path), analysis.stores)
        written += [json_path, probabilities_path(json_path)]
    if csv_path is not None:
        write_csv(csv_path, analysis.results, analysis.distance_scores)
        written.append(csv_path)
    if report_path is not None:
        comparison = None if gate is None else (gate.comparison, gate.margin, gate.label)
        report_for(analysis, report_path, images=images, comparison=comparison, subtitle=subtitle)
        written.append(report_path)
    return written


def write_summary(
    write_line: LineWriter,
    analysis: RunAnalysis,
    *,
    categories_label: str,
    gate: CompareGate | None,
    baseline_failures: Sequence[str],
    written: Sequence[Path],
) -> None:
    """The terminal summary: the table, the dataset metrics, the comparison, the files written and
    the gates' failures (in red)."""
    write_line(f"scored over {categories_label}")
    write_line(format_table(analysis.summaries))
    if analysis.metrics:
        write_line("dataset metrics (over each tagger's vocabulary):")
        write_line(format_metrics(analysis))
        write_line(f"distance score: {SOURCES[analysis.distance_source]}")
    if gate is not None:
        write_line(f"compared with {gate.label} (paired bootstrap, 95% CI):")
        write_line(format_comparison(gate.comparison, gate.margin))
    for path in written:
        write_line(f"written: {path}")
    for failure in baseline_failures:
        write_line(f"FAIL baseline: {failure}", red=True, bold=True)
    for failure in gate.failures if gate is not None else ():
        write_line(f"FAIL compare: {failure}", red=True, bold=True)
