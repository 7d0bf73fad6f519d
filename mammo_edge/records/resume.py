"""Continue an interrupted run: which inputs a jsonl or csv results file already holds.

``mammo-edge predict --resume -o results.jsonl`` reads the file before scoring. Each record
names its input by ``path``; those inputs are skipped and the new records appended, so
every input ends up in the file exactly once. What a crash can leave is handled here:

* a half-written last record (the process died mid-line: no final newline, or a last line
  that does not parse, or a CSV row with too few cells) is cut off, and that input is
  scored again;
* damage anywhere else (a bad line in the middle, a CSV header that is not mammo-edge's)
  stops with :class:`ResumeError` rather than guess.

Records scored by another model (``model_sha256``) or at another ``threshold`` would make
one file mix two models' answers, so they are refused unless ``force`` is given.
``json`` (one list) and ``table`` files cannot be continued.
"""

from __future__ import annotations

import codecs
import csv
import json
from dataclasses import dataclass
from pathlib import Path

from mammo_edge.errors import MammoEdgeError
from mammo_edge.records.record import RESULT_FIELDS, STATUS_OK, csv_cell_text
from mammo_edge.records.writers import APPENDABLE_FORMATS


class ResumeError(MammoEdgeError):
    """The results file cannot be continued; the message says why and what to do."""


@dataclass(frozen=True)
class ResumeState:
    """What an existing results file holds, after any repair.

    Attributes:
        done: the ``path`` of every record in the file.
        failed: the paths among ``done`` whose record is an error.
        records: how many records the file holds.
        repaired_bytes: bytes of a half-written last record that were cut off (0 if none).
        empty: the file is absent or holds nothing yet (a CSV header is still needed).
    """

    done: frozenset[str]
    failed: frozenset[str]
    records: int
    repaired_bytes: int
    empty: bool


def prepare_resume(
    path: Path,
    output_format: str,
    *,
    model_sha256: str,
    threshold: float,
    force: bool = False,
) -> ResumeState:
    """Read ``path``, cut a half-written last record off it, and say which inputs it holds.

    Args:
        path: the ``--output`` file (absent is fine: nothing is done yet).
        output_format: ``jsonl`` or ``csv``.
        model_sha256: SHA-256 of the model of this run; records from another are refused.
        threshold: this run's decision threshold; records at another are refused.
        force: accept records of another model or threshold.

    Returns:
        The :class:`ResumeState`. The file is modified only to cut a half-written record.

    Raises:
        ResumeError: the format cannot be resumed, the file is damaged before its last
            record, is not a mammo-edge results file, or comes from another model.
    """
    if output_format not in APPENDABLE_FORMATS:
        raise ResumeError(
            f"--resume works with --format {' or '.join(APPENDABLE_FORMATS)} (one record per "
            f"line); a {output_format} file cannot be continued. Rerun without --resume, or "
            "use jsonl or csv for long runs."
        )
    if not path.exists():
        return ResumeState(frozenset(), frozenset(), 0, 0, empty=True)
    try:
        data = path.read_bytes()
    except OSError as error:
        raise ResumeError(f"cannot read {path} to resume: {error.strerror}") from error
    if output_format == "jsonl":
        records, keep = _read_jsonl(data, path)
    else:
        records, keep = _read_csv(data, path)
    _check_same_run(records, path, model_sha256, threshold, force)
    repaired = len(data) - keep
    if repaired:
        try:
            with path.open("r+b") as handle:
                handle.truncate(keep)
        except OSError as error:
            raise ResumeError(
                f"cannot repair {path} (cut its half-written last record): {error.strerror}"
            ) from error
    done = frozenset(record["path"] for record in records)
    failed = frozenset(record["path"] for record in records if record["status"] != STATUS_OK)
    empty = keep == 0 or (output_format == "csv" and _is_only_bom(data[:keep]))
    return ResumeState(done, failed, len(records), repaired, empty)


def _read_jsonl(data: bytes, path: Path) -> tuple[list[dict], int]:
    """Records of a jsonl file and the byte length of its complete, valid prefix."""
    keep = data.rfind(b"\n") + 1  # a last line without its newline was cut mid-write
    lines = data[:keep].split(b"\n")[:-1]
    records: list[dict] = []
    offset = 0
    for number, line in enumerate(lines, start=1):
        try:
            record = json.loads(line)
            if not isinstance(record, dict) or not isinstance(record.get("path"), str):
                raise ValueError("not a mammo-edge record")
        except ValueError as error:
            if number == len(lines):  # the crash hit the last line
                return records, offset
            raise ResumeError(
                f"line {number} of {path} is not a mammo-edge JSON record ({error}); the file "
                "is damaged before its end. Fix or remove that line, or write to a new file."
            ) from None
        records.append(record)
        offset += len(line) + 1
    return records, keep


def _read_csv(data: bytes, path: Path) -> tuple[list[dict], int]:
    """Records of a csv file and the byte length of its complete, valid prefix."""
    bom = codecs.BOM_UTF8 if data.startswith(codecs.BOM_UTF8) else b""
    keep = data.rfind(b"\n") + 1
    try:
        text = data[len(bom) : keep].decode("utf-8")
    except UnicodeDecodeError as error:
        raise ResumeError(f"{path} is not UTF-8 text ({error}); write to a new file.") from None
    lines = text.splitlines(keepends=True)
    if not lines:
        return [], 0
    reader = csv.reader(iter(lines))
    rows: list[tuple[list[str], int]] = []  # each row with the line count read after it
    try:
        for row in reader:
            rows.append((row, reader.line_num))
    except csv.Error:
        rows.append(([], len(lines)))  # an unfinished quoted cell: the crash hit the end
    header = rows[0][0] if rows else []
    if tuple(header) != RESULT_FIELDS:
        raise ResumeError(
            f"{path} does not start with mammo-edge's CSV header ({','.join(RESULT_FIELDS)}); "
            "resume only files that mammo-edge wrote."
        )
    records: list[dict] = []
    good_lines = rows[0][1]
    for position, (row, lines_read) in enumerate(rows[1:], start=1):
        if len(row) != len(RESULT_FIELDS):
            if position == len(rows) - 1:
                break
            raise ResumeError(
                f"row {position + 1} of {path} has {len(row)} cells, not "
                f"{len(RESULT_FIELDS)}; the file is damaged before its end. Fix or remove "
                "that row, or write to a new file."
            )
        record = dict(zip(RESULT_FIELDS, (csv_cell_text(cell) for cell in row), strict=True))
        records.append(record)
        good_lines = lines_read
    kept_text = "".join(lines[:good_lines])
    return records, len(bom) + len(kept_text.encode("utf-8"))


def _check_same_run(
    records: list[dict], path: Path, model_sha256: str, threshold: float, force: bool
) -> None:
    if force:
        return
    models = sorted({str(record.get("model_sha256")) for record in records} - {model_sha256})
    if models:
        raise ResumeError(
            f"{path} holds records scored by another model (SHA-256 {models[0][:12]}...; this "
            f"run's is {model_sha256[:12]}...). Resume with the same --model, write to a new "
            "file, or pass --force to mix them."
        )
    for record in records:
        try:
            recorded = float(record.get("threshold"))  # type: ignore[arg-type]
        except (TypeError, ValueError):
            recorded = None
        if recorded is None or abs(recorded - threshold) > 1e-12:
            raise ResumeError(
                f"{path} holds records labelled at threshold {record.get('threshold')}; this "
                f"run uses {threshold:g}. Resume with the same --threshold, write to a new "
                "file, or pass --force to mix them."
            )


def _is_only_bom(data: bytes) -> bool:
    return data in (b"", codecs.BOM_UTF8)
