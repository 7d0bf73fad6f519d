"""The MIAS ``Info.txt``: the one parser of its rows, for training and ``evaluate`` alike.

Rows read ``mdbNNN TISSUE CLASS [SEVERITY X Y RADIUS]``. Quirks (database README notes
1-4): one row per abnormality, so an image can have several rows (mdb005); normal rows are
``mdbNNN T NORM`` with no severity or coordinates; some rows have no coordinates
(``*NOTE 3*`` for widely distributed calcifications, or simply missing, as mdb059); x, y
have their origin at the bottom-left corner (:attr:`MiasRow.row_from_top` turns y into an
array row). Patients are left/right pairs: mdb001 and mdb002 are patient 1.

Training's MIAS reader (``train/mias.py``) and ``mammo-edge evaluate``
(:mod:`mammo_edge.evaluation.labels`) both parse through here, so they cannot disagree on an image's
label, patient or lesion circle.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from mammo_edge.evaluation.manifest_rows import LabelsError

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


def looks_like_mias_info(text: str) -> bool:
    """Whether any line of ``text`` is an Info.txt image row (``mdb... `` then a space)."""
    return any(_MIAS_ROW.match(line) for line in text.splitlines())


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


@dataclass(frozen=True)
class MiasImageLabel:
    """The truth of one MIAS image as ``evaluate`` reads it (see :func:`mias_image_labels`).

    Attributes:
        image: ``mdbNNN``; line: its first Info.txt line; patient: the pair number;
        group: the background tissue in words; finding: the class codes, ``+``-joined.
    """

    image: str
    label: int
    line: int
    patient: str
    group: str
    finding: str


def mias_image_labels(text: str, source: Path) -> list[MiasImageLabel]:
    """One entry per image: abnormal when any row is not NORM (rows grouped by reference)."""
    by_reference = group_mias_rows(parse_mias_info(text, str(source)), str(source))
    records = []
    for reference, image_rows in by_reference.items():
        classes = [row.abnormality_class for row in image_rows]
        records.append(
            MiasImageLabel(
                image=reference,
                label=int(classes != ["NORM"]),
                line=image_rows[0].line_number,
                patient=str(mias_patient_of(reference)),
                group=MIAS_TISSUE_CODES[image_rows[0].tissue],
                finding="+".join(dict.fromkeys(classes)),
            )
        )
    return records
