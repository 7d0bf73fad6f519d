"""The prediction record: :class:`PredictionResult`, how it is built, written and read back.

Every input of every verb and engine yields exactly one record; this module is its one
owner:

* :class:`PredictionResult` and :data:`RESULT_FIELDS` (the schema order every output
  format writes; meanings in docs/runtime.md);
* :class:`RecordContext` and :func:`build_record`: a record from a scored (or failed)
  :class:`~mammo_edge.images.pipeline.LoadedImage`, the same in the local and Ray engines and in
  ``serve``;
* :func:`record_from_dict` and :func:`read_records`: the one reader of what
  :mod:`mammo_edge.records.writers` wrote (``json``, ``jsonl`` or ``csv``), used by ``evaluate
  --predictions``, ``--resume``, the Ray engine and ``serve``'s results log;
* :func:`csv_cell` / :func:`csv_cell_text`: a value as a spreadsheet-safe CSV cell, and back.
"""

from __future__ import annotations

import csv
import json
import math
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import TYPE_CHECKING

from mammo_edge.errors import ErrorCode, MammoEdgeError

if TYPE_CHECKING:
    from mammo_edge.images.pipeline import LoadedImage

STATUS_OK = "ok"
STATUS_ERROR = "error"

# Spreadsheets run cells that start with these as formulas; a crafted file name must not.
_FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


@dataclass(frozen=True)
class PredictionResult:
    """The one record every input yields. Field meanings: docs/runtime.md.

    Attributes:
        path: the input path, or ``<array N>`` for the N-th array given.
        status: ``ok`` or ``error``.
        probability: probability of the positive class (``abnormal``); ``None`` on error.
        label: ``normal`` or ``abnormal`` (``probability >= threshold``); ``None`` on error.
        threshold: the decision threshold used.
        model_name, model_version: from the model's metadata.
        model_sha256: SHA-256 of the model file that scored it.
        provider: the onnxruntime execution provider that ran the model.
        image_format: the format found in the content; ``None`` when not decoded.
        warnings: notes such as colour converted to gray or a misleading file extension.
        error_code: a stable :class:`~mammo_edge.errors.ErrorCode` value on error.
        error_message: what failed and what to do, on error.
        exam: the exam the image belongs to (DICOM Patient ID/Study Instance UID, or
            ``mias patient N``); ``None`` when unknown (:mod:`mammo_edge.exams`).
        laterality: ``L`` or ``R`` when known.
        view: the view (``CC``, ``MLO``...) when known; mini-MIAS images are ``MLO``.
        view_group: ``exam`` when the image was weighed against the other breast of its
            exam (the model's pair head and paired operating point), ``single_view`` when
            it was scored alone (the single-view head and point); ``None`` on error.
        operating_point: the name of the operating point whose threshold labelled it
            (``balanced``, ``triage``; ``default`` for a model with one threshold,
            ``custom threshold`` for ``--threshold``); ``view_group`` says which family.
        partner: the paths of the exam's other images, ``;``-separated.
        breast_probability: the highest probability among the views of this breast.
        exam_probability: the highest probability among the exam's images.
        network_probability: for a model with a stacking head, the network's own
            probability before the head combined it with the image's full-resolution
            evidence (:mod:`mammo_edge.model.heads`); else ``None``.
    """

    path: str
    status: str
    probability: float | None
    label: str | None
    threshold: float
    model_name: str
    model_version: str
    model_sha256: str
    provider: str
    image_format: str | None = None
    warnings: tuple[str, ...] = ()
    error_code: str | None = None
    error_message: str | None = None
    exam: str | None = None
    laterality: str | None = None
    view: str | None = None
    view_group: str | None = None
    partner: str | None = None
    breast_probability: float | None = None
    exam_probability: float | None = None
    network_probability: float | None = None
    operating_point: str | None = None

    @property
    def ok(self) -> bool:
        """True when the input was scored."""
        return self.status == STATUS_OK

    def as_dict(self) -> dict:
        """The record as plain JSON-ready values, fields in schema order."""
        record = asdict(self)
        record["warnings"] = list(self.warnings)
        return record


#: Result fields in the order every output format writes them.
RESULT_FIELDS = tuple(field.name for field in fields(PredictionResult))

#: Fields read back as numbers; the rest are text (``warnings`` a tuple of text).
_FLOAT_FIELDS = (
    "probability",
    "threshold",
    "breast_probability",
    "exam_probability",
    "network_probability",
)
#: Fields that are text even when absent from a record read back.
_REQUIRED_TEXT = ("path", "status", "model_name", "model_version", "model_sha256", "provider")


@dataclass(frozen=True)
class RecordContext:
    """What every record of one model run carries besides the per-image result.

    Attributes:
        threshold: decision threshold; ``probability >= threshold`` is the positive class.
        class_names: ``(negative, positive)`` from the model's metadata.
        model_name, model_version: from the model's metadata.
        model_sha256: SHA-256 of the model bytes that scored.
        provider: the onnxruntime execution provider that ran the model.
        operating_point: the name of the point ``threshold`` belongs to.
    """

    threshold: float
    class_names: tuple[str, str]
    model_name: str
    model_version: str
    model_sha256: str
    provider: str
    operating_point: str | None = None


def build_record(item: LoadedImage, context: RecordContext) -> PredictionResult:
    """The :class:`PredictionResult` of one scored (or failed) item."""
    common = {
        "path": item.path,
        "threshold": context.threshold,
        "model_name": context.model_name,
        "model_version": context.model_version,
        "model_sha256": context.model_sha256,
        "provider": context.provider,
        "image_format": item.image_format,
        "warnings": tuple(item.warnings),
        "exam": item.view.exam if item.view else None,
        "laterality": item.view.laterality if item.view else None,
        "view": item.view.view if item.view else None,
        "network_probability": item.network_probability,
    }
    if item.ok and item.probability is not None:
        negative, positive = context.class_names
        label = positive if item.probability >= context.threshold else negative
        return PredictionResult(
            status=STATUS_OK,
            probability=item.probability,
            label=label,
            operating_point=context.operating_point,
            **common,
        )
    return PredictionResult(
        status=STATUS_ERROR,
        probability=None,
        label=None,
        error_code=item.error_code or ErrorCode.INFERENCE_FAILED.value,
        error_message=item.error_message or "the input was not scored",
        **common,
    )


class RecordsError(MammoEdgeError):
    """A records file or record cannot be read; the message names the file and line."""


def record_from_dict(record: object, where: str = "record") -> PredictionResult:
    """The :class:`PredictionResult` a written record holds (the reader of ``as_dict``).

    Accepts what any writer produced: JSON values, or CSV text (empty cell = ``None``,
    warnings joined with ``"; "``). Unknown keys (e.g. explain's ``peak_x``) are ignored.

    Raises:
        RecordsError: no ``path``/``status``, a number field that is not a number, or an
            ``ok`` record without a finite probability (``where`` names the place).
    """
    if not isinstance(record, dict) or "path" not in record or "status" not in record:
        raise RecordsError(f"{where}: a record needs path and status")
    values = {name: None if record.get(name) == "" else record.get(name) for name in RESULT_FIELDS}
    try:
        for name in _FLOAT_FIELDS:
            if values[name] is not None:
                values[name] = float(values[name])
    except (TypeError, ValueError):
        raise RecordsError(f"{where}: probability and threshold must be numbers") from None
    if values["status"] == STATUS_OK and (
        values["probability"] is None or not math.isfinite(values["probability"])
    ):
        raise RecordsError(f"{where}: an ok record has no probability")
    warnings = values["warnings"] or ()
    values["warnings"] = tuple(warnings.split("; ") if isinstance(warnings, str) else warnings)
    for name in _REQUIRED_TEXT:
        values[name] = "" if values[name] is None else str(values[name])
    return PredictionResult(**values)


def record_from_json(text: str) -> PredictionResult:
    """A :class:`PredictionResult` back from one JSON line (as a Ray actor sends it)."""
    return record_from_dict(json.loads(text))


def read_records(path: Path) -> list[PredictionResult]:
    """Read back every record of a ``predict --format json|jsonl|csv`` file.

    Raises:
        RecordsError: the file is missing or unreadable, of another format (e.g. the
            table), holds no record, or a record is malformed (the line is named).
    """
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise RecordsError(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError) as error:
        raise RecordsError(f"{path}: cannot read: {error}") from None
    rows = _numbered_rows(text, path)
    records = [record_from_dict(row, f"{path} line {number}") for number, row in rows]
    if not records:
        raise RecordsError(f"{path}: no records")
    return records


def _numbered_rows(text: str, path: Path) -> list[tuple[int, object]]:
    """``(line number, record dict)`` for each record of a json, jsonl or csv text."""
    stripped = text.lstrip()
    try:
        if stripped.startswith("["):
            return list(enumerate(json.loads(text), start=1))
        if stripped.startswith("{"):
            return [
                (number, json.loads(line))
                for number, line in enumerate(text.splitlines(), start=1)
                if line.strip()
            ]
    except json.JSONDecodeError as error:
        raise RecordsError(f"{path} line {error.lineno}: not valid JSON ({error.msg})") from None
    reader = csv.DictReader(text.splitlines())
    if not {"path", "status"} <= set(reader.fieldnames or ()):
        raise RecordsError(
            f"{path}: not a predict output; write one with "
            "'mammo-edge predict ... --format jsonl -o FILE' (or csv)"
        )
    return [(reader.line_num, csv_row_values(row)) for row in reader]


def csv_row_values(row: dict) -> dict:
    """A CSV row read back: empty cells are ``None``, formula guards removed."""
    return {
        key: None if cell is None or cell == "" else csv_cell_text(cell)
        for key, cell in row.items()
    }


def csv_cell(value: object) -> str:
    """A record value as a CSV cell: ``None`` empty, lists joined, formulas neutralised."""
    if value is None:
        return ""
    if isinstance(value, list):
        value = "; ".join(value)
    if isinstance(value, float):
        return repr(value)
    text = str(value)
    if text.startswith(_FORMULA_PREFIXES):
        return "'" + text
    return text


def csv_cell_text(cell: str) -> str:
    """Undo the formula guard of :func:`csv_cell` on a cell read back (``'=x`` -> ``=x``)."""
    if cell.startswith("'") and cell[1:].startswith(_FORMULA_PREFIXES):
        return cell[1:]
    return cell
