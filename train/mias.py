"""Read the MIAS MiniMammographic Database in its official layout.

Accepts the distribution as a folder (``Info.txt`` + ``mdbNNN.pgm``) or as the
``all-mias.tar.gz`` archive itself, read in place without extracting.

Info.txt rows are parsed by the runtime's labels reader (``mammo_edge.evaluation.labels``, the one
owner of the row format and its quirks), so training and ``mammo-edge evaluate`` cannot
disagree on what a MIAS image's label, patient or lesion circle is. Here the rows become
one :class:`ImageRecord` per image; x, y keep their bottom-left origin as written, and
``row_from_top`` gives the image-array row. Patients are left/right pairs: mdb001 + mdb002
is patient 1.
"""

from __future__ import annotations

import hashlib
import tarfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mammo_edge.evaluation.labels import (
    MIAS_CLASS_CODES,
    MIAS_IMAGE_SIZE,
    MIAS_SEVERITY_CODES,
    MIAS_TISSUE_CODES,
    LabelsError,
    MiasRow,
    group_mias_rows,
    mias_patient_of,
    parse_mias_info,
)

IMAGE_SIZE = MIAS_IMAGE_SIZE
TISSUE_CODES = MIAS_TISSUE_CODES
CLASS_CODES = MIAS_CLASS_CODES
SEVERITY_CODES = MIAS_SEVERITY_CODES
#: One row of Info.txt (coordinates in pixels, origin bottom-left, or None).
AbnormalityRow = MiasRow


class MiasError(Exception):
    """The MIAS data is missing, malformed or truncated; the message names file and line."""


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
    """Parse the rows of Info.txt with the runtime's parser (``mammo_edge.evaluation.labels``).

    Raises:
        MiasError: a row is malformed or uses an unknown code, naming source and line.
    """
    try:
        return parse_mias_info(text, source)
    except LabelsError as error:
        raise MiasError(str(error)) from None


def group_by_image(rows: list[AbnormalityRow], source: str = "Info.txt") -> list[ImageRecord]:
    """One record per image, in reference order; abnormal if any row is not NORM.

    Raises:
        MiasError: an image is listed both NORM and abnormal.
    """
    try:
        by_reference = group_mias_rows(rows, source)
    except LabelsError as error:
        raise MiasError(str(error)) from None
    records = []
    for reference in sorted(by_reference):
        image_rows = by_reference[reference]
        classes = {row.abnormality_class for row in image_rows}
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

    The runtime's decoder (``mammo_edge.images.decode``) is the one owner of image decoding, so
    training sees exactly the pixels ``mammo-edge predict`` sees.

    Raises:
        MiasError: the file is empty, truncated, corrupt or not 8-bit grayscale.
    """
    from mammo_edge.errors import InputError
    from mammo_edge.images.decode import decode_image_bytes

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
        self.records = group_by_image(self.rows, source=f"{source.name}/Info.txt")
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
