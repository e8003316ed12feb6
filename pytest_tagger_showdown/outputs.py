"""The top of the package: everything a finished run writes, the files and the terminal summary.

Nothing below this module writes a run's outputs; they all read the one :class:`RunAnalysis`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from .analysis import RunAnalysis
from .compare import CompareGate, format_comparison
from .errors import ShowdownError
from .probabilities import probabilities_path, save_stores
from .report.csv_export import write_csv
from .report.html import report_for
from .report.metrics_table import format_metrics
from .report.runtime_table import format_runtimes
from .report.table import format_table
from .results import write_results
from .tag_distance import SOURCES

#: Writes one line of the terminal summary (pytest's ``TerminalReporter.write_line`` fits).
LineWriter = Callable[..., None]


def write_outputs(
    analysis: RunAnalysis,
    *,
    json_path: Path | None = None,
    csv_path: Path | None = None,
    report_path: Path | None = None,
    images: Callable[[int], bytes] | None = None,
    gate: CompareGate | None = None,
    subtitle: str = "",
) -> tuple[list[Path], list[str]]:
    """Write the files asked for; returns the paths written and, per file that could not be written,
    a line naming it and the error (the others are still written). The JSON brings its probability
    store along."""
    comparison = None
    if gate is not None:
        label = f"{gate.label} ({gate.remark})" if gate.remark else gate.label
        comparison = (gate.comparison, gate.margin, label)
    jobs: list[tuple[Path, Callable[[Path], object]]] = []
    if json_path is not None:
        jobs.append((json_path, lambda path: write_results(path, analysis.document)))
        jobs.append((probabilities_path(json_path), lambda path: save_stores(path, analysis.stores)))
    if csv_path is not None:
        jobs.append((csv_path, lambda path: write_csv(path, analysis.results, analysis.distance_scores)))
    if report_path is not None:
        jobs.append(
            (
                report_path,
                lambda path: report_for(
                    analysis, path, images=images, comparison=comparison, subtitle=subtitle
                ),
            )
        )
    written: list[Path] = []
    errors: list[str] = []
    for path, write in jobs:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            write(path)
        except (OSError, ShowdownError) as exc:
            errors.append(f"cannot write {path}: {exc}")
        else:
            written.append(path)
    return written, errors


def summary_tables(
    analysis: RunAnalysis,
    *,
    categories_label: str,
    provider: str | None = None,
    gate: CompareGate | None,
) -> list[str]:
    """The terminal summary's tables: the table, the runtimes, the dataset metrics and the
    comparison, one row per tagger each, whatever the dataset's size. Rendered once, so a run can
    let go of its per-post results before the terminal shows them (:meth:`RunAnalysis.released`)."""
    on = f"; ONNX taggers on {provider}" if provider else ""
    lines = [f"scored over {categories_label}{on}", format_table(analysis.summaries)]
    lines += ["runtime per image (seconds: preprocessing + inference):"]
    lines += [format_runtimes(analysis.summaries, analysis.results)]
    if analysis.metrics:
        lines += ["dataset metrics (over each tagger's vocabulary):", format_metrics(analysis)]
        lines += [f"distance score: {SOURCES[analysis.distance_source]}"]
    if gate is not None:
        lines += [
            f"compared with {gate.label} (paired bootstrap, 95% CI; Holm over {len(gate.comparison.taggers)} "
            "tagger(s), family-wise 5%):",
            *([f"note: {gate.remark}"] if gate.remark else []),
            format_comparison(gate.comparison, gate.margin),
        ]
    return lines


def write_summary(
    write_line: LineWriter,
    tables: Sequence[str],
    *,
    verdicts: Sequence[tuple[str, str | None]],
    written: Sequence[Path],
    errors: Sequence[str] = (),
    notes: Sequence[str] = (),
) -> None:
    """The terminal summary: the tables (:func:`summary_tables`), the files written, the files that
    could not be written, the gates' notes (a tagger judged over some posts only) and failures (in
    red)."""
    for line in tables:
        write_line(line)
    for path in written:
        write_line(f"written: {path}")
    for error in errors:
        write_line(f"FAIL output: {error}", red=True, bold=True)
    for note in notes:
        write_line(f"note: {note}")
    for kind, failure in verdicts:
        if failure is not None:
            write_line(f"FAIL {kind}: {failure}", red=True, bold=True)
