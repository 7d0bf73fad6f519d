"""The cells of a labels CSV or dataset manifest, one row at a time: the one CSV parser.

``mammo-edge evaluate --labels`` (:mod:`mammo_edge.evaluation.labels`) and the dataset manifest
(:mod:`mammo_edge.evaluation.dataset_manifest`, read by training and calibration) both parse their
CSV here, so a row means the same thing to every reader. A row is either a
:class:`ManifestRow` or a :class:`RowProblem` saying, in words, why it cannot be used; the
caller decides whether a problem stops the file (``evaluate``) or is listed among the
rejected rows (a training manifest).

Columns (case-insensitive; other columns are ignored):

* ``image`` (required): a path, relative to the CSV's folder, or (labels files) a name or
  stem; ``label`` (required): ``0``/``1`` or ``normal``/``abnormal``;
* ``patient``, ``study``, ``laterality`` (``L``/``R``, ``left``/``right``), ``view``
  (``CC``, ``MLO``...), ``finding``, ``group``, ``split``: optional text;
* lesion geometry, optional: ``x``, ``y``, ``radius`` in image pixels with the origin at the
  top-left corner, or ``mask`` (the path of a binary mask image, relative to the CSV).

Comma or semicolon separated, UTF-8 (a byte-order mark is fine).
"""

from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass
from pathlib import Path

from mammo_edge.errors import MammoEdgeError

LABEL_VALUES = {"0": 0, "1": 1, "normal": 0, "abnormal": 1}
CSV_REQUIRED = ("image", "label")
CSV_OPTIONAL = ("patient", "group", "finding")
MANIFEST_REQUIRED = ("image", "label", "patient")
MANIFEST_OPTIONAL = ("study", "laterality", "view", "finding", "group", "split")
GEOMETRY_COLUMNS = ("x", "y", "radius", "mask")
LATERALITY_VALUES = {"l": "L", "left": "L", "r": "R", "right": "R"}


class LabelsError(MammoEdgeError):
    """The labels file is missing, malformed or ambiguous; the message names file and line."""


@dataclass(frozen=True)
class ManifestRow:
    """One usable CSV row. Empty optional cells are ``None``.

    Attributes:
        line: the file's line number (1 = the header).
        image: the ``image`` cell as written.
        label: 0 normal, 1 abnormal.
        x, y, radius: a lesion circle in image pixels, origin top-left, or ``None``.
        mask: the ``mask`` cell (a path relative to the CSV), or ``None``.
    """

    line: int
    image: str
    label: int
    patient: str | None = None
    study: str | None = None
    laterality: str | None = None
    view: str | None = None
    finding: str | None = None
    group: str | None = None
    split: str | None = None
    x: float | None = None
    y: float | None = None
    radius: float | None = None
    mask: str | None = None

    @property
    def has_geometry(self) -> bool:
        """Whether the row places a lesion (a circle or a mask)."""
        return self.radius is not None or self.mask is not None


@dataclass(frozen=True)
class RowProblem:
    """A row that cannot be used: its line, its ``image`` cell and why, in words."""

    line: int
    image: str
    reason: str


@dataclass(frozen=True)
class CsvTable:
    """A parsed CSV: its lower-cased header and one entry per non-empty data row."""

    columns: tuple[str, ...]
    rows: tuple[ManifestRow | RowProblem, ...]


def read_text(path: Path) -> str:
    """The file's text (UTF-8, a byte-order mark dropped; latin-1 when not UTF-8).

    Raises:
        LabelsError: the file is missing or unreadable.
    """
    if not path.is_file():
        raise LabelsError(f"{path}: no such labels file")
    try:
        data = path.read_bytes()
    except OSError as error:
        raise LabelsError(f"{path}: cannot read: {error.strerror}") from error
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return data.decode("latin-1")  # Info.txt is plain ASCII/latin-1


def first_content_line(text: str) -> tuple[int, str] | None:
    """(line number, stripped text) of the first non-blank line, or ``None``."""
    for number, line in enumerate(text.splitlines(), start=1):
        if line.strip():
            return number, line.strip()
    return None


def header_columns(line: str) -> tuple[str, list[str]]:
    """(delimiter, lower-cased column names) of a CSV header line."""
    delimiter = ";" if ";" in line and "," not in line else ","
    return delimiter, [cell.strip().lower() for cell in line.split(delimiter)]


def parse_table(text: str, source: Path, required: tuple[str, ...] = CSV_REQUIRED) -> CsvTable:
    """Parse every row of a labels CSV or manifest.

    Raises:
        LabelsError: the file is empty, its header lacks a ``required`` column, or it has
            a header but no data rows. Problems of single rows are returned, not raised.
    """
    header = first_content_line(text)
    if header is None:
        raise LabelsError(f"{source}: the labels file is empty")
    line_number, first = header
    delimiter, columns = header_columns(first)
    missing = [name for name in required if name not in columns]
    if missing:
        raise LabelsError(
            f"{source} line {line_number}: header lacks column(s) {', '.join(missing)}; "
            f"expected {','.join(required)} (optional "
            f"{','.join(name for name in MANIFEST_OPTIONAL + GEOMETRY_COLUMNS)})"
        )
    reader = csv.reader(io.StringIO(text), delimiter=delimiter)
    names: list[str] | None = None
    rows: list[ManifestRow | RowProblem] = []
    for cells in reader:
        if not any(cell.strip() for cell in cells):
            continue
        if names is None:
            names = [cell.strip().lower() for cell in cells]
            continue
        rows.append(parse_row(names, cells, reader.line_num))
    if not rows:
        raise LabelsError(f"{source}: a header but no label rows")
    return CsvTable(tuple(names or ()), tuple(rows))


def parse_row(names: list[str], cells: list[str], line: int) -> ManifestRow | RowProblem:
    """One data row under the header ``names``: a :class:`ManifestRow` or the problem."""
    if len(cells) != len(names):
        image = cells[names.index("image")].strip() if "image" in names[: len(cells)] else ""
        return RowProblem(line, image, f"expected {len(names)} cells, found {len(cells)}: {cells}")
    values = dict(zip(names, (cell.strip() for cell in cells), strict=True))
    image = values["image"]
    if not image:
        return RowProblem(line, image, "the image cell is empty")
    label = LABEL_VALUES.get(values["label"].lower())
    if label is None:
        return RowProblem(
            line, image, f"label {values['label']!r} for {image!r} must be 0, 1, normal or abnormal"
        )
    laterality = values.get("laterality") or None
    if laterality is not None:
        laterality = LATERALITY_VALUES.get(laterality.lower())
        if laterality is None:
            return RowProblem(
                line, image, f"laterality {values['laterality']!r} must be L, R, left or right"
            )
    geometry = _geometry(values)
    if isinstance(geometry, str):
        return RowProblem(line, image, geometry)
    if label == 0 and (geometry[2] is not None or geometry[3] is not None):
        return RowProblem(line, image, "lesion geometry on an image labelled normal")
    view = values.get("view") or None
    return ManifestRow(
        line,
        image,
        label,
        patient=values.get("patient") or None,
        study=values.get("study") or None,
        laterality=laterality,
        view=view.upper() if view else None,
        finding=values.get("finding") or None,
        group=values.get("group") or None,
        split=values.get("split") or None,
        x=geometry[0],
        y=geometry[1],
        radius=geometry[2],
        mask=geometry[3],
    )


def _geometry(values: dict[str, str]):
    """``(x, y, radius, mask)``, or the problem in words."""
    mask = values.get("mask") or None
    circle = [values.get(name) or None for name in ("x", "y", "radius")]
    if all(value is None for value in circle):
        return None, None, None, mask
    if mask is not None:
        return "give a lesion as x, y, radius or as a mask, not both"
    if any(value is None for value in circle):
        given = ", ".join(
            name for name, value in zip(("x", "y", "radius"), circle, strict=True) if value
        )
        return f"a lesion circle needs x, y and radius (found only {given})"
    try:
        x, y, radius = (float(value) for value in circle)  # type: ignore[arg-type]
    except ValueError:
        return f"x, y and radius must be numbers, got {circle}"
    if not all(math.isfinite(value) for value in (x, y, radius)):
        return f"x, y and radius must be finite, got {circle}"
    if x < 0 or y < 0 or radius <= 0:
        return f"x and y must be >= 0 and radius > 0 (top-left origin), got {circle}"
    return x, y, radius, None
