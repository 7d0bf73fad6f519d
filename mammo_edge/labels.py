"""Ground-truth labels for ``mammo-edge evaluate``: read a labels file, match it to inputs.

Two formats, told apart by content (not by file name):

* a CSV with a header naming the columns ``image`` and ``label``, and optionally
  ``patient``, ``group`` and ``finding`` (free text; other columns are ignored). ``image``
  is a file name (``mdb003.pgm``), a stem (``mdb003``) or a path
  (``scans/left/mdb003.pgm``); ``label`` is ``0``/``1`` or ``normal``/``abnormal``. Comma
  or semicolon separated, UTF-8 (a byte-order mark is fine);
* the MIAS ``Info.txt``: rows ``mdbNNN T CLASS [SEVERITY X Y RADIUS]``. An image is abnormal
  when any of its rows is not ``NORM``; its patient is its left/right pair (mdb001 and
  mdb002 are patient 1); its group is the background tissue (fatty, fatty-glandular,
  dense-glandular) and its finding the abnormality class(es).

This module is the one owner of Info.txt rows (:func:`parse_mias_info`): training's MIAS
reader (``train/mias.py``) parses through it, so training and ``mammo-edge evaluate``
cannot disagree on an image's label, patient or lesion circle. Info.txt quirks (database
README notes 1-4): one row per abnormality, so an image can have several rows (mdb005);
normal rows are ``mdbNNN T NORM`` with no severity or coordinates; some rows have no
coordinates (``*NOTE 3*`` for widely distributed calcifications, or simply missing, as
mdb059); x, y have their origin at the bottom-left corner.

Matching never drops anything silently: inputs without a label and labels without an input
are returned for the caller to report, and a label that could belong to two inputs, or two
labels for one input, is an error naming the line.
"""

from __future__ import annotations

import csv
import io
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path, PurePath

from .errors import MammoEdgeError

#: MIAS background tissue codes (Info.txt column 2).
MIAS_TISSUE_CODES = {"F": "fatty", "G": "fatty-glandular", "D": "dense-glandular"}
#: MIAS abnormality class codes (Info.txt column 3).
MIAS_CLASS_CODES = {
    "CALC": "calcification",
    "CIRC": "circumscribed mass",
    "SPIC": "spiculated mass",
    "MISC": "ill-defined mass",
    "ARCH": "architectural distortion",
    "ASYM": "asymmetry",
    "NORM": "normal",
}
#: MIAS severity codes (Info.txt column 4, abnormal rows only).
MIAS_SEVERITY_CODES = {"B": "benign", "M": "malignant"}
#: MIAS images are 1024 x 1024 pixels; Info.txt coordinates lie inside.
MIAS_IMAGE_SIZE = 1024
MIAS_REFERENCE = re.compile(r"^mdb(\d{3})$")
_MIAS_ROW = re.compile(r"^\s*mdb\w*\s")
_MIAS_NO_COORDINATES = "*NOTE 3*"

LABEL_VALUES = {"0": 0, "1": 1, "normal": 0, "abnormal": 1}
CSV_REQUIRED = ("image", "label")
CSV_OPTIONAL = ("patient", "group", "finding")


class LabelsError(MammoEdgeError):
    """The labels file is missing, malformed or ambiguous; the message names file and line."""


@dataclass(frozen=True)
class LabelRecord:
    """The truth for one image.

    Attributes:
        image: the image reference as written (name, stem or path; ``mdbNNN`` for MIAS).
        label: 0 normal, 1 abnormal.
        line: line of the labels file it came from (the first row, for MIAS).
        patient: patient identifier, or ``None`` (then the image is its own patient).
        group: subgroup for per-group metrics (MIAS: background tissue), or ``None``.
        finding: what the truth is (MIAS: the abnormality class codes), or ``None``;
            carried to the output, not used by any metric.
    """

    image: str
    label: int
    line: int
    patient: str | None = None
    group: str | None = None
    finding: str | None = None


@dataclass(frozen=True)
class Labels:
    """A parsed labels file: ``file_format`` is ``"csv"`` or ``"mias-info"``."""

    records: tuple[LabelRecord, ...]
    source: Path
    file_format: str


@dataclass(frozen=True)
class LabelMatch:
    """Inputs paired with their labels, and everything that did not pair.

    Attributes:
        matched: ``(input path, record)`` in input order.
        inputs_without_label: input paths no label row names, in input order.
        labels_without_input: label rows no input matches, in file order.
    """

    matched: tuple[tuple[str, LabelRecord], ...]
    inputs_without_label: tuple[str, ...]
    labels_without_input: tuple[LabelRecord, ...]


@dataclass(frozen=True)
class MiasRow:
    """One row of Info.txt. Coordinates are in pixels, origin bottom-left, or None.

    Attributes:
        reference: ``mdbNNN``.
        tissue: background tissue code (``F``, ``G``, ``D``; :data:`MIAS_TISSUE_CODES`).
        abnormality_class: class code (:data:`MIAS_CLASS_CODES`), ``NORM`` for normal.
        severity: ``B`` or ``M``; None on NORM rows.
        x, y, radius: the lesion circle, or None (NORM rows, ``*NOTE 3*``, or omitted).
        line_number: line of Info.txt the row came from.
    """

    reference: str
    tissue: str
    abnormality_class: str
    severity: str | None
    x: int | None
    y: int | None
    radius: int | None
    line_number: int

    @property
    def row_from_top(self) -> int | None:
        """The y coordinate converted to an array row index (origin top-left)."""
        return None if self.y is None else MIAS_IMAGE_SIZE - 1 - self.y


def parse_mias_info(text: str, source: str = "Info.txt") -> list[MiasRow]:
    """Parse the rows of a MIAS Info.txt (lines starting with ``mdb``; the header is skipped).

    Raises:
        LabelsError: a row is malformed or uses an unknown code (the message names
            ``source`` and the line), or no line is an image row.
    """
    rows = []
    for line_number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if not stripped.startswith("mdb"):
            continue  # the free-text header and notes
        rows.append(_parse_mias_row(stripped, f"{source} line {line_number}", line_number))
    if not rows:
        raise LabelsError(f"{source}: no image rows (lines starting with 'mdb') found")
    return rows


def _parse_mias_row(line: str, where: str, line_number: int) -> MiasRow:
    coordinates_omitted = _MIAS_NO_COORDINATES in line
    fields = line.replace(_MIAS_NO_COORDINATES, "").split()
    if len(fields) < 3:
        raise LabelsError(f"{where}: expected 'mdbNNN TISSUE CLASS ...', got {line!r}")
    reference, tissue, abnormality_class = fields[:3]
    if not MIAS_REFERENCE.match(reference):
        raise LabelsError(f"{where}: bad reference {reference!r} (expected mdbNNN)")
    if tissue not in MIAS_TISSUE_CODES:
        raise LabelsError(f"{where}: unknown background tissue {tissue!r} (expected F, G or D)")
    if abnormality_class not in MIAS_CLASS_CODES:
        raise LabelsError(
            f"{where}: unknown abnormality class {abnormality_class!r} "
            f"(expected one of {', '.join(MIAS_CLASS_CODES)})"
        )
    rest = fields[3:]
    if abnormality_class == "NORM":
        if rest:
            raise LabelsError(f"{where}: a NORM row has extra columns {rest}")
        return MiasRow(reference, tissue, "NORM", None, None, None, None, line_number)
    if not rest:
        raise LabelsError(f"{where}: abnormal row lacks severity (B or M)")
    severity, coordinates = rest[0], rest[1:]
    if severity not in MIAS_SEVERITY_CODES:
        raise LabelsError(f"{where}: unknown severity {severity!r} (expected B or M)")
    if coordinates_omitted and coordinates:
        raise LabelsError(f"{where}: '*NOTE 3*' row should have no coordinates, got {coordinates}")
    if len(coordinates) not in (0, 3):
        raise LabelsError(f"{where}: expected x y radius or nothing, got {coordinates}")
    if not coordinates:
        return MiasRow(
            reference, tissue, abnormality_class, severity, None, None, None, line_number
        )
    try:
        x, y, radius = (int(value) for value in coordinates)
    except ValueError:
        raise LabelsError(f"{where}: coordinates must be integers, got {coordinates}") from None
    if not (0 <= x < MIAS_IMAGE_SIZE and 0 <= y < MIAS_IMAGE_SIZE and radius > 0):
        raise LabelsError(f"{where}: coordinates out of range: x={x} y={y} radius={radius}")
    return MiasRow(reference, tissue, abnormality_class, severity, x, y, radius, line_number)


def group_mias_rows(rows: Sequence[MiasRow], source: str = "Info.txt") -> dict[str, list[MiasRow]]:
    """Rows by image reference, in order of first appearance.

    Raises:
        LabelsError: an image is listed both NORM and abnormal (naming both lines).
    """
    by_reference: dict[str, list[MiasRow]] = {}
    for row in rows:
        by_reference.setdefault(row.reference, []).append(row)
    for reference, image_rows in by_reference.items():
        classes = {row.abnormality_class for row in image_rows}
        if "NORM" in classes and len(image_rows) > 1:
            raise LabelsError(
                f"{source} line {image_rows[1].line_number}: {reference} is listed both NORM "
                f"and abnormal (first on line {image_rows[0].line_number})"
            )
    return by_reference


def mias_patient_of(reference: str) -> int:
    """Patient number of a MIAS image: mdb001 and mdb002 are patient 1, mdb003 patient 2."""
    match = MIAS_REFERENCE.match(reference)
    if not match:
        raise ValueError(f"not a MIAS reference: {reference!r}")
    return (int(match.group(1)) + 1) // 2


def read_labels(path: str | os.PathLike) -> Labels:
    """Read a labels CSV or a MIAS Info.txt (recognised by content).

    Raises:
        LabelsError: the file is missing, unreadable, of neither format, or has a bad or
            duplicated row (the message names the line).
    """
    source = Path(path)
    if not source.is_file():
        raise LabelsError(f"{source}: no such labels file")
    try:
        data = source.read_bytes()
    except OSError as error:
        raise LabelsError(f"{source}: cannot read: {error.strerror}") from error
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = data.decode("latin-1")  # Info.txt is plain ASCII/latin-1
    header = _first_content_line(text)
    if header is None:
        raise LabelsError(f"{source}: the labels file is empty")
    line_number, first = header
    delimiter = ";" if ";" in first and "," not in first else ","
    columns = [cell.strip().lower() for cell in first.split(delimiter)]
    if "image" in columns or "label" in columns:
        missing = [name for name in CSV_REQUIRED if name not in columns]
        if missing:
            raise LabelsError(
                f"{source} line {line_number}: header lacks column(s) {', '.join(missing)}; "
                f"expected {','.join(CSV_REQUIRED)} (optional {','.join(CSV_OPTIONAL)})"
            )
        records = _parse_csv(text, delimiter, source)
        return Labels(records, source, "csv")
    if any(_MIAS_ROW.match(line) for line in text.splitlines()):
        return Labels(_parse_mias_info(text, source), source, "mias-info")
    raise LabelsError(
        f"{source}: not a labels file. Expected a CSV whose header names the columns "
        f"{','.join(CSV_REQUIRED)} (optional {','.join(CSV_OPTIONAL)}), or a MIAS Info.txt "
        f"(rows 'mdbNNN TISSUE CLASS ...'); line {line_number} reads {first[:60]!r}"
    )


def _first_content_line(text: str) -> tuple[int, str] | None:
    for number, line in enumerate(text.splitlines(), start=1):
        if line.strip():
            return number, line.strip()
    return None


def _parse_csv(text: str, delimiter: str, source: Path) -> tuple[LabelRecord, ...]:
    reader = csv.reader(io.StringIO(text), delimiter=delimiter)
    header: list[str] | None = None
    records: list[LabelRecord] = []
    first_line: dict[str, int] = {}
    for row in reader:
        line = reader.line_num
        if not any(cell.strip() for cell in row):
            continue
        if header is None:
            header = [cell.strip().lower() for cell in row]
            continue
        where = f"{source} line {line}"
        if len(row) != len(header):
            raise LabelsError(f"{where}: expected {len(header)} cells, found {len(row)}: {row}")
        cells = dict(zip(header, (cell.strip() for cell in row), strict=True))
        image = cells["image"]
        if not image:
            raise LabelsError(f"{where}: the image cell is empty")
        label = LABEL_VALUES.get(cells["label"].lower())
        if label is None:
            raise LabelsError(
                f"{where}: label {cells['label']!r} for {image!r} must be 0, 1, normal or abnormal"
            )
        if image in first_line:
            raise LabelsError(
                f"{where}: {image!r} is labelled again (first on line {first_line[image]}); "
                f"keep one row per image"
            )
        first_line[image] = line
        records.append(
            LabelRecord(
                image=image,
                label=label,
                line=line,
                patient=cells.get("patient") or None,
                group=cells.get("group") or None,
                finding=cells.get("finding") or None,
            )
        )
    if not records:
        raise LabelsError(f"{source}: a header but no label rows")
    return tuple(records)


def _parse_mias_info(text: str, source: Path) -> tuple[LabelRecord, ...]:
    """One record per image: abnormal when any row is not NORM (rows grouped by reference)."""
    by_reference = group_mias_rows(parse_mias_info(text, str(source)), str(source))
    records = []
    for reference, image_rows in by_reference.items():
        classes = [row.abnormality_class for row in image_rows]
        records.append(
            LabelRecord(
                image=reference,
                label=int(classes != ["NORM"]),
                line=image_rows[0].line_number,
                patient=str(mias_patient_of(reference)),
                group=MIAS_TISSUE_CODES[image_rows[0].tissue],
                finding="+".join(dict.fromkeys(classes)),
            )
        )
    return tuple(records)


def match_labels(inputs: Sequence[str], labels: Labels) -> LabelMatch:
    """Pair each input path with its label row.

    A label's ``image`` matches an input by path (when it holds a ``/``: the input's path
    ends with those components, or both resolve to the same file, relative to the working
    folder or to the labels file's folder), else by file name, else by stem.

    Raises:
        LabelsError: a label row matches two inputs, or two rows match one input.
    """
    by_name: dict[str, list[int]] = {}
    by_stem: dict[str, list[int]] = {}
    for index, path in enumerate(inputs):
        pure = PurePath(path)
        by_name.setdefault(pure.name, []).append(index)
        by_stem.setdefault(pure.stem, []).append(index)
    resolved = [os.path.normcase(os.path.abspath(path)) for path in inputs]
    owner: dict[int, LabelRecord] = {}
    without_input: list[LabelRecord] = []
    for record in labels.records:
        found = _candidates(record.image, inputs, resolved, by_name, by_stem, labels.source)
        where = f"{labels.source} line {record.line}"
        if len(found) > 1:
            shown = ", ".join(inputs[index] for index in found[:4])
            raise LabelsError(
                f"{where}: {record.image!r} matches {len(found)} inputs ({shown}); "
                f"name the image by a longer path, or pass each file once"
            )
        if not found:
            without_input.append(record)
            continue
        index = found[0]
        if index in owner:
            raise LabelsError(
                f"{where}: {record.image!r} labels {inputs[index]}, already labelled by "
                f"{owner[index].image!r} on line {owner[index].line}"
            )
        owner[index] = record
    matched = tuple((inputs[index], owner[index]) for index in sorted(owner))
    unlabelled = tuple(path for index, path in enumerate(inputs) if index not in owner)
    return LabelMatch(matched, unlabelled, tuple(without_input))


def _candidates(
    image: str,
    inputs: Sequence[str],
    resolved: list[str],
    by_name: dict[str, list[int]],
    by_stem: dict[str, list[int]],
    labels_source: Path,
) -> list[int]:
    normalised = image.replace("\\", "/")
    if "/" not in normalised:
        return by_name.get(image) or by_stem.get(image) or []
    key_parts = [part for part in PurePath(normalised).parts if part not in (".", "")]
    targets = {
        os.path.normcase(os.path.abspath(normalised)),
        os.path.normcase(os.path.abspath(labels_source.parent / normalised)),
    }
    found = []
    for index, path in enumerate(inputs):
        parts = PurePath(path.replace("\\", "/")).parts
        ends_with = ".." not in key_parts and tuple(parts[-len(key_parts) :]) == tuple(key_parts)
        if resolved[index] in targets or ends_with:
            found.append(index)
    return found
