"""What an image file's header says, read without decoding pixels: for the dataset manifest.

A manifest can list thousands of full-field images, so checking them must not decode them:
:func:`inspect_image_file` reads a DICOM header with pydicom's ``stop_before_pixels`` (the
exam tags that fill a manifest's empty cells, and Rows/Columns) and any other format's
header with :mod:`mammo_edge.images.headers` (size, completeness).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from mammo_edge.errors import InputError
from mammo_edge.images.headers import read_header, sniff_format


@dataclass(frozen=True)
class ImageFacts:
    """What an image's header says, for filling empty cells (all ``None`` outside DICOM)."""

    image_format: str
    patient: str | None = None
    study: str | None = None
    laterality: str | None = None
    view: str | None = None
    #: pixel size when the header says, to refuse a lesion outside the image.
    width: int | None = None
    height: int | None = None


def inspect_image_file(path: Path) -> ImageFacts | str:
    """Check an image file by its header, and read a DICOM's exam tags; never decodes pixels.

    Returns:
        :class:`ImageFacts`, or why the file cannot be used (missing file, empty file,
        unreadable image...).
    """
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        return f"missing file {path}"
    except OSError as error:
        return f"unreadable image: {error.strerror or error}"
    if path.is_dir():
        return f"unreadable image: {path} is a folder"
    if size == 0:
        return "unreadable image: the file is empty (0 bytes)"
    try:
        with path.open("rb") as handle:
            start = handle.read(132)
        image_format = sniff_format(start, path.suffix.lower())
        if image_format == "dicom":
            return _dicom_facts(path)
        header = read_header(path.read_bytes(), image_format)
    except InputError as error:
        return f"unreadable image: {error.message}"
    except OSError as error:
        return f"unreadable image: {error.strerror or error}"
    if header.truncation is not None:
        return f"unreadable image: {header.truncation}"
    return ImageFacts(image_format, width=header.width, height=header.height)


def _dicom_facts(path: Path) -> ImageFacts | str:
    """The exam tags of a DICOM file's header (pixel data not read)."""
    try:
        import pydicom
    except ImportError:
        return "unreadable image: reading DICOM needs pydicom: pip install 'mammo-edge[dicom]'"
    from mammo_edge.images.dicom_tags import laterality, view_position

    try:
        dataset = pydicom.dcmread(str(path), stop_before_pixels=True, force=True)
    except Exception as error:  # pydicom raises many kinds on a damaged header
        return f"unreadable image: unreadable DICOM header ({type(error).__name__}: {error})"
    if not dataset.get("Rows") or not dataset.get("Columns"):
        return "unreadable image: DICOM without (0028,0010) Rows / (0028,0011) Columns"

    def text(keyword: str) -> str | None:
        return str(dataset.get(keyword, "") or "").strip() or None

    return ImageFacts(
        "dicom",
        patient=text("PatientID"),
        study=text("StudyInstanceUID"),
        laterality=laterality(dataset),
        view=view_position(dataset),
        width=int(dataset.Columns),
        height=int(dataset.Rows),
    )
