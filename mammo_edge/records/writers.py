"""Write prediction results as a table, JSON, JSON Lines or CSV, one record at a time.

Every writer emits each record as soon as it gets it and flushes, so an interrupted run
keeps every result finished before the interruption. JSON is written as a list whose
closing bracket comes at :meth:`ResultWriter.close`; use ``jsonl`` or ``csv`` when a run
may be killed. The fields and their order are :data:`~mammo_edge.records.record.RESULT_FIELDS`.
"""

from __future__ import annotations

import csv
import json
from typing import TextIO

from mammo_edge.records.record import RESULT_FIELDS, PredictionResult, csv_cell

FORMATS = ("table", "json", "jsonl", "csv")


class ResultWriter:
    """Base class: ``write`` one result at a time, ``close`` once at the end."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream

    def write(self, result: PredictionResult) -> None:
        raise NotImplementedError

    def close(self) -> None:
        self.stream.flush()


class JsonLinesWriter(ResultWriter):
    """One JSON object per line."""

    def write(self, result: PredictionResult) -> None:
        self.stream.write(json.dumps(result.as_dict(), ensure_ascii=False) + "\n")
        self.stream.flush()


class JsonWriter(ResultWriter):
    """A JSON list of objects, written element by element."""

    def __init__(self, stream: TextIO) -> None:
        super().__init__(stream)
        self.count = 0
        self.stream.write("[")

    def write(self, result: PredictionResult) -> None:
        separator = ",\n  " if self.count else "\n  "
        self.stream.write(separator + json.dumps(result.as_dict(), ensure_ascii=False))
        self.stream.flush()
        self.count += 1

    def close(self) -> None:
        self.stream.write("\n]\n" if self.count else "]\n")
        super().close()


class CsvWriter(ResultWriter):
    """RFC 4180 CSV with a header row; warnings joined with ``"; "``; empty for ``None``.

    Args:
        stream: where rows go.
        header: write the header row first (``False`` when appending to a file that has it).
    """

    def __init__(self, stream: TextIO, header: bool = True) -> None:
        super().__init__(stream)
        self.csv = csv.writer(stream)
        if header:
            self.csv.writerow(RESULT_FIELDS)
            self.stream.flush()

    def write(self, result: PredictionResult) -> None:
        record = result.as_dict()
        self.csv.writerow([csv_cell(record[name]) for name in RESULT_FIELDS])
        self.stream.flush()


class TableWriter(ResultWriter):
    """Aligned columns for people: path, status, probability, label, and a note."""

    def __init__(self, stream: TextIO, path_width: int = 40) -> None:
        super().__init__(stream)
        self.path_width = max(4, min(path_width, 70))
        self.stream.write(self._row("PATH", "STATUS", "PROBABILITY", "LABEL", "NOTE") + "\n")
        self.stream.flush()

    def _row(self, path: str, status: str, probability: str, label: str, note: str) -> str:
        line = f"{path:<{self.path_width}}  {status:<6}  {probability:>11}  {label:<8}  {note}"
        return line.rstrip()

    def write(self, result: PredictionResult) -> None:
        if result.ok:
            probability = f"{result.probability:.4f}"
            note = "; ".join(result.warnings)
        else:
            probability = "-"
            note = f"{result.error_code}: {result.error_message}"
        label = result.label or "-"
        self.stream.write(self._row(result.path, result.status, probability, label, note) + "\n")
        self.stream.flush()


#: Formats whose files can be appended to (``--resume``): one record per line.
APPENDABLE_FORMATS = ("jsonl", "csv")


def open_writer(
    output_format: str, stream: TextIO, path_width: int = 40, append: bool = False
) -> ResultWriter:
    """Make the writer for ``output_format`` (one of :data:`FORMATS`) over ``stream``.

    Args:
        output_format: ``table``, ``json``, ``jsonl`` or ``csv``.
        stream: where records go.
        path_width: the table's path column width.
        append: continue a file that already holds records (no second CSV header); only
            for :data:`APPENDABLE_FORMATS`.
    """
    if append and output_format not in APPENDABLE_FORMATS:
        raise ValueError(f"only {' and '.join(APPENDABLE_FORMATS)} files can be appended to")
    if output_format == "table":
        return TableWriter(stream, path_width)
    if output_format == "json":
        return JsonWriter(stream)
    if output_format == "jsonl":
        return JsonLinesWriter(stream)
    if output_format == "csv":
        return CsvWriter(stream, header=not append)
    raise ValueError(f"format must be one of {', '.join(FORMATS)}; got {output_format!r}")
