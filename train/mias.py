"""Read the MIAS MiniMammographic Database in its official layout.

Accepts the distribution as a folder (``Info.txt`` + ``mdbNNN.pgm``) or as the
``all-mias.tar.gz`` archive itself, read in place without extracting.

Info.txt quirks handled here (database README notes 1-4):
- one row per abnormality, so an image can have several rows (mdb005);
- normal rows are ``mdbNNN T NORM`` with no severity or coordinates;
- some rows have no coordinates (``*NOTE 3*`` for widely distributed calcifications,
  or simply missing, as mdb059);
- x, y have their origin at the bottom-left corner (we keep them as written and expose
  ``row_from_top`` for image-array indexing);
- patients are left/right pairs: mdb001 + mdb002 is patient 1.
"""

from __future__ import annotations

import hashlib
import tarfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mammo_edge.labels import (
    MIAS_CLASS_CODES,
    MIAS_REFERENCE,
    MIAS_TISSUE_CODES,
    mias_patient_of,
)

IMAGE_SIZE = 1024
# The codes and the patient rule are shared with the runtime's labels reader, so training
# and `mammo-edge evaluate` cannot disagree on what a MIAS image's label or patient is.
TISSUE_CODES = MIAS_TISSUE_CODES
CLASS_CODES = MIAS_CLASS_CODES
SEVERITY_CODES = {"B": "benign", "M": "malignant"}
_REFERENCE = MIAS_REFERENCE
_NO_COORDINATES = "*NOTE 3*"


class MiasError(Exception):
    """The MIAS data is missing, malformed or truncated; the message names file and line."""


@dataclass(frozen=True)
class AbnormalityRow:
    """One row of Info.txt. Coordinates are in pixels, origin bottom-left, or None."""

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
        return None if self.y is None else IMAGE_SIZE - 1 - self.y


@dataclass(frozen=True)
class ImageRecord:
    """One mammogram: abnormal (label 1) when any of its Info.txt rows is not NORM."""

    reference: str
    patient_id: int
    tissue: str
    label: int
    rows: tuple[AbnormalityRow, ...]

    @property
    def number(self) -> int:
        return int(self.reference[3:])


def patient_of(reference: str) -> int:
    """Patient number of an image: mdb001 and mdb002 are patient 1, mdb003/mdb004 patient 2."""
    return mias_patient_of(reference)


def parse_info(text: str, source: str = "Info.txt") -> list[AbnormalityRow]:
    """Parse the rows of Info.txt (lines starting with ``mdb``; the header is skipped).

    Raises:
        MiasError: a row is malformed or uses an unknown code, naming source and line.
    """
    rows = []
    for line_number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if not stripped.startswith("mdb"):
            continue
        rows.append(_parse_row(stripped, source, line_number))
    if not rows:
        raise MiasError(f"{source}: no image rows (lines starting with 'mdb') found")
    return rows


def _parse_row(line: str, source: str, line_number: int) -> AbnormalityRow:
    where = f"{source} line {line_number}"
    coordinates_omitted = _NO_COORDINATES in line
    fields = line.replace(_NO_COORDINATES, "").split()
    if len(fields) < 3:
        raise MiasError(f"{where}: expected at least 3 columns, got {line!r}")
    reference, tissue, abnormality_class = fields[:3]
    if not _REFERENCE.match(reference):
        raise MiasError(f"{where}: bad reference {reference!r} (expected mdbNNN)")
    if tissue not in TISSUE_CODES:
        raise MiasError(f"{where}: unknown background tissue {tissue!r} (expected F, G or D)")
    if abnormality_class not in CLASS_CODES:
        raise MiasError(
            f"{where}: unknown abnormality class {abnormality_class!r} "
            f"(expected one of {', '.join(CLASS_CODES)})"
        )
    rest = fields[3:]
    if abnormality_class == "NORM":
        if rest:
            raise MiasError(f"{where}: a NORM row has extra columns {rest}")
        return AbnormalityRow(reference, tissue, "NORM", None, None, None, None, line_number)
    if not rest:
        raise MiasError(f"{where}: abnormal row lacks severity (B or M)")
    severity, coordinates = rest[0], rest[1:]
    if severity not in SEVERITY_CODES:
        raise MiasError(f"{where}: unknown severity {severity!r} (expected B or M)")
    if coordinates_omitted and coordinates:
        raise MiasError(f"{where}: '*NOTE 3*' row should have no coordinates, got {coordinates}")
    if len(coordinates) not in (0, 3):
        raise MiasError(f"{where}: expected x y radius or nothing, got {coordinates}")
    if not coordinates:
        return AbnormalityRow(
            reference, tissue, abnormality_class, severity, None, None, None, line_number
        )
    try:
        x, y, radius = (int(value) for value in coordinates)
    except ValueError:
        raise MiasError(f"{where}: coordinates must be integers, got {coordinates}") from None
    if not (0 <= x < IMAGE_SIZE and 0 <= y < IMAGE_SIZE and radius > 0):
        raise MiasError(f"{where}: coordinates out of range: x={x} y={y} radius={radius}")
    return AbnormalityRow(reference, tissue, abnormality_class, severity, x, y, radius, line_number)


def group_by_image(rows: list[AbnormalityRow]) -> list[ImageRecord]:
    """One record per image, in reference order; abnormal if any row is not NORM."""
    by_reference: dict[str, list[AbnormalityRow]] = {}
    for row in rows:
        by_reference.setdefault(row.reference, []).append(row)
    records = []
    for reference in sorted(by_reference):
        image_rows = by_reference[reference]
        classes = {row.abnormality_class for row in image_rows}
        if "NORM" in classes and len(image_rows) > 1:
            line = image_rows[1].line_number
            raise MiasError(f"Info.txt line {line}: {reference} is listed both NORM and abnormal")
        records.append(
            ImageRecord(
                reference=reference,
                patient_id=patient_of(reference),
                tissue=image_rows[0].tissue,
                label=0 if classes == {"NORM"} else 1,
                rows=tuple(image_rows),
            )
        )
    return records


def decode_pgm(data: bytes, name: str) -> np.ndarray:
    """Decode a MIAS PGM to a (H, W) uint8 array through mammo-edge's own reader.

    The runtime's decoder (``mammo_edge.imageio``) is the one owner of image decoding, so
    training sees exactly the pixels ``mammo-edge predict`` sees.

    Raises:
        MiasError: the file is empty, truncated, corrupt or not 8-bit grayscale.
    """
    from mammo_edge.errors import InputError
    from mammo_edge.imageio import decode_image_bytes

    if not data:
        raise MiasError(f"{name}: file is empty")
    try:
        decoded = decode_image_bytes(data, suffix=".pgm")
    except InputError as error:
        kind = error.code.value.lower().replace("_", " ")
        raise MiasError(f"{name}: {kind}: {error.message}") from None
    if decoded.image_format != "pnm" or decoded.source_bits != 8:
        raise MiasError(
            f"{name}: expected an 8-bit grayscale PGM, got {decoded.image_format} "
            f"with {decoded.source_bits} bits"
        )
    return decoded.pixels


class MiasDataset:
    """The MIAS distribution, from a folder or from ``all-mias.tar.gz``.

    Attributes:
        source: the folder or archive path.
        rows: every Info.txt row.
        records: one ImageRecord per image listed, in reference order.
    """

    def __init__(self, source: Path, info_text: str) -> None:
        self.source = source
        self.rows = parse_info(info_text, source=f"{source.name}/Info.txt")
        self.records = group_by_image(self.rows)
        self._members: dict[str, tarfile.TarInfo] | None = None
        self._archive: tarfile.TarFile | None = None

    def __len__(self) -> int:
        return len(self.records)

    def record(self, reference: str) -> ImageRecord:
        for record in self.records:
            if record.reference == reference:
                return record
        raise KeyError(reference)

    def read_bytes(self, reference: str) -> bytes:
        name = f"{reference}.pgm"
        if self.source.is_dir():
            path = self.source / name
            if not path.is_file():
                raise MiasError(f"{path}: listed in Info.txt but missing")
            return path.read_bytes()
        archive = self._open_archive()
        member = self._members.get(name)  # type: ignore[union-attr]
        if member is None:
            raise MiasError(f"{self.source}: {name} is listed in Info.txt but not in the archive")
        extracted = archive.extractfile(member)
        if extracted is None:
            raise MiasError(f"{self.source}: {name} is not a regular file")
        try:
            return extracted.read()
        except (tarfile.TarError, OSError, EOFError) as error:
            raise MiasError(f"{self.source}: cannot read {name}: {error}") from error

    def read_image(self, reference: str) -> np.ndarray:
        """The image as a (1024, 1024) uint8 array."""
        return decode_pgm(self.read_bytes(reference), f"{self.source.name}:{reference}.pgm")

    def verify_images(self) -> None:
        """Read every listed image once, so bad data fails before any training starts.

        Raises:
            MiasError: listing every missing, empty, truncated or unreadable image.
        """
        problems = []
        for record in self.records:
            try:
                self.read_image(record.reference)
            except MiasError as error:
                problems.append(str(error))
        if problems:
            shown = "\n  ".join(problems[:10])
            more = f"\n  ... and {len(problems) - 10} more" if len(problems) > 10 else ""
            raise MiasError(f"{len(problems)} unusable image(s):\n  {shown}{more}")

    def sha256(self) -> str:
        """SHA-256 of the data used: the archive file, or Info.txt + every listed PGM."""
        digest = hashlib.sha256()
        if self.source.is_file():
            with self.source.open("rb") as handle:
                for block in iter(lambda: handle.read(1 << 20), b""):
                    digest.update(block)
            return digest.hexdigest()
        digest.update((self.source / "Info.txt").read_bytes())
        for record in self.records:
            digest.update(self.read_bytes(record.reference))
        return digest.hexdigest()

    def _open_archive(self) -> tarfile.TarFile:
        if self._archive is None:
            self._archive = tarfile.open(self.source, "r:*")
            self._members = {
                Path(member.name).name: member
                for member in self._archive.getmembers()
                if member.isfile()
            }
        return self._archive


def open_mias(path: str | Path) -> MiasDataset:
    """Open the MIAS distribution at ``path`` (a folder or a .tar/.tar.gz archive).

    Raises:
        MiasError: the path is missing, is not MIAS, or Info.txt is malformed.
    """
    source = Path(path)
    if not source.exists():
        raise MiasError(f"{source}: no such file or folder")
    if source.is_dir():
        info = source / "Info.txt"
        if not info.is_file():
            raise MiasError(f"{source}: no Info.txt; is this the MIAS folder?")
        return MiasDataset(source, info.read_text(encoding="latin-1"))
    try:
        with tarfile.open(source, "r:*") as archive:
            for member in archive:
                if Path(member.name).name == "Info.txt" and member.isfile():
                    handle = archive.extractfile(member)
                    text = handle.read().decode("latin-1")  # type: ignore[union-attr]
                    break
            else:
                raise MiasError(f"{source}: archive has no Info.txt; is this all-mias.tar.gz?")
    except (tarfile.TarError, OSError, EOFError) as error:
        raise MiasError(f"{source}: not a readable tar archive ({error})") from error
    return MiasDataset(source, text)
