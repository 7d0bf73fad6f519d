"""How a bench run is written: one JSON object, CSV rows, or a table for the terminal.

``{"machine": {...}, "rows": [...]}`` with the fields of
:class:`~mammo_edge.bench.machine.MachineFacts` and :class:`~mammo_edge.bench.run.BenchRow`
(medians over the rounds); the table adds each figure's min-max over the rounds, the
batch search and what was not timed.
"""

from __future__ import annotations

import csv
from dataclasses import asdict
from pathlib import Path

from mammo_edge.bench.run import ROW_FIELDS, BenchReport, BenchResult

#: Digits kept in JSON and CSV for each kind of figure.
_DIGITS = {"end_to_end_share": 3, "cold_start_s": 3, "studies_per_hour": 0}


def as_json(report: BenchReport) -> dict:
    """``{"machine": {...}, "rows": [...]}``: plain values, figures rounded (see _DIGITS)."""
    return {"machine": asdict(report.machine), "rows": [_row_values(r) for r in report.results]}


def write_csv(report: BenchReport, path: Path) -> None:
    """The rows of :func:`as_json` as CSV, one header line of :data:`ROW_FIELDS`."""
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=ROW_FIELDS)
        writer.writeheader()
        for result in report.results:
            writer.writerow(_row_values(result))


def _row_values(result: BenchResult) -> dict:
    values = asdict(result.row)
    for name, value in values.items():
        if isinstance(value, float):
            digits = _DIGITS.get(name, 2)
            values[name] = round(value) if digits == 0 else round(value, digits)
    return values


def as_table(report: BenchReport) -> str:
    """A Markdown table of the rows (median, with min-max over the rounds), then notes."""
    header = [
        "model",
        "precision",
        "device (provider)",
        "batch",
        "threads x streams",
        "model alone, images/s",
        "end to end, images/s",
        "share",
        "latency p50 / p95, ms",
        "peak RSS, MB",
        "cold start, s",
        "studies/hour",
    ]
    lines = [_cells(header), _cells(["---"] * len(header))]
    for result in report.results:
        lines.append(_cells(_table_cells(result)))
    return "\n".join([*lines, "", *_notes(report)])


def _table_cells(result: BenchResult) -> list[str]:
    row, spreads = result.row, result.spreads
    provider = row.provider.removesuffix("ExecutionProvider")
    threads = "default" if row.threads is None else str(row.threads)
    return [
        row.model,
        row.precision,
        f"{row.device} ({provider})",
        str(row.batch),
        f"{threads} x {row.streams}",
        _ranged(spreads["model_alone_images_per_s"], 1),
        _ranged(spreads["end_to_end_images_per_s"], 1),
        _ranged(spreads["end_to_end_share"], 2),
        f"{row.latency_ms_p50:.1f} / {row.latency_ms_p95:.1f}",
        f"{row.peak_rss_mb:.0f}",
        _ranged(spreads["cold_start_s"], 2),
        f"{row.studies_per_hour:,.0f}",
    ]


def _notes(report: BenchReport) -> list[str]:
    machine, settings = report.machine, report.settings
    gpu = f"; GPU {machine.gpu}" if machine.gpu else "; no GPU found"
    notes = [
        f"Median of {settings.rounds} interleaved round(s), min-max in brackets; {report.images}.",
        f"Machine: {machine.cpu}, {machine.cores} cores ({', '.join(machine.isa_flags) or '-'})"
        f"{gpu}; onnxruntime {machine.onnxruntime_version} "
        f"({', '.join(machine.providers)}); mammo-edge {machine.mammo_edge_version}.",
    ]
    for result in report.results:
        row = result.row
        searched = ", ".join(f"{b}: {rate:.1f}" for b, rate in sorted(result.batch_rates.items()))
        notes.append(f"{row.model} on {row.device}: batch search (images/s) {searched}.")
        if row.batch != result.predict_batch:
            notes.append(
                f"  `mammo-edge predict` takes batch {result.predict_batch} here by default; "
                f"add `--batch-size {row.batch}` for the rate above."
            )
        if result.errors:
            failed = ", ".join(f"{n} {code}" for code, n in sorted(result.errors.items()))
            notes.append(
                f"  {sum(result.errors.values())} file(s) did not load ({failed}): counted, "
                f"not timed; {result.timed} timed."
            )
    return notes


def _ranged(figure, digits: int) -> str:
    if figure.rounds == 1:
        return f"{figure.median:.{digits}f}"
    return f"{figure.median:.{digits}f} ({figure.min:.{digits}f}-{figure.max:.{digits}f})"


def _cells(values: list[str]) -> str:
    return "| " + " | ".join(values) + " |"
