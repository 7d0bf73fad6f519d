"""Exception types and the stable error codes that appear in result records.

An input that cannot be scored becomes an error *record* carrying one of the codes in
:class:`ErrorCode`; the codes are part of the output schema (docs/runtime.md) and never
change meaning. A model that cannot be used raises :class:`ModelError` instead: without a
model no input can be scored, so the CLI stops with exit code 1.
"""

from __future__ import annotations

from enum import Enum


class ErrorCode(str, Enum):
    """Why one input produced no probability. Values are the strings written to results."""

    NOT_FOUND = "NOT_FOUND"
    """The path does not exist, or a glob pattern matched no file."""
    UNREADABLE = "UNREADABLE"
    """The file exists but the operating system refused to read it (permissions, I/O)."""
    EMPTY_FILE = "EMPTY_FILE"
    """The file has zero bytes."""
    NOT_AN_IMAGE = "NOT_AN_IMAGE"
    """The content is not any image format (e.g. a text file named ``.png``)."""
    UNSUPPORTED_FORMAT = "UNSUPPORTED_FORMAT"
    """A recognised image kind the runtime does not read (GIF, WebP, float TIFF, ...)."""
    TRUNCATED = "TRUNCATED"
    """The file ends before its pixel data is complete."""
    CORRUPT = "CORRUPT"
    """The header is readable but the pixel data could not be decoded."""
    TOO_SMALL = "TOO_SMALL"
    """A side is shorter than the minimum a mammogram can have."""
    TOO_LARGE = "TOO_LARGE"
    """More pixels (or bytes) than the decompression-bomb guard allows."""
    DICOM_NO_PIXELS = "DICOM_NO_PIXELS"
    """A DICOM file without (7FE0,0010) Pixel Data, e.g. a structured report or DICOMDIR."""
    DICOM_MULTIFRAME = "DICOM_MULTIFRAME"
    """A DICOM file with more than one frame (tomosynthesis, cine); score 2-D views only."""
    DICOM_UNSUPPORTED = "DICOM_UNSUPPORTED"
    """DICOM that cannot be decoded here: missing pydicom or codec, or an unusable layout."""
    TIFF_MULTIPAGE = "TIFF_MULTIPAGE"
    """A TIFF holding more than one full-resolution page: which page is the mammogram is not
    for the runtime to guess, so none is scored (the message gives the page count)."""
    FULLY_TRANSPARENT = "FULLY_TRANSPARENT"
    """An image whose alpha channel is 0 everywhere: nothing in it is visible."""
    NO_BREAST_FOUND = "NO_BREAST_FOUND"
    """The image decoded, but it does not look like a mammogram (blank or uniform frame, a
    page of text, a photograph, a small crop): checked for every model before it runs."""
    INFERENCE_FAILED = "INFERENCE_FAILED"
    """onnxruntime failed on the batch holding this input, or returned a non-finite value."""
    NOT_A_MAMMOGRAM = "NOT_A_MAMMOGRAM"
    """A DICOM image that is not a mammogram ((0008,0060) Modality not MG and (0018,0015)
    Body Part Examined not BREAST), or not an image class the service scores
    (``mammo-edge serve``)."""
    DICOM_FOR_PROCESSING = "DICOM_FOR_PROCESSING"
    """A DICOM 'FOR PROCESSING' (raw detector) image received by ``mammo-edge serve``, which
    scores only what a radiologist would see ('FOR PRESENTATION')."""
    STUDY_QUARANTINED = "STUDY_QUARANTINED"
    """``mammo-edge serve`` could not finish this instance's study (scoring it or writing its
    SR or overlays failed on every attempt): the study's received instances were moved to
    ``spool/failed/`` and are not retried until an operator moves them back."""


class MammoEdgeError(Exception):
    """Base class of every error the runtime raises on purpose."""


class InputError(MammoEdgeError):
    """One input cannot be scored. Carries a stable :class:`ErrorCode` and a message for people.

    Args:
        code: the stable error code written to the result record.
        message: what failed and, where possible, what to do about it.
        path: the input the error belongs to (a file path or an array label).
    """

    def __init__(self, code: ErrorCode, message: str, path: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.path = path

    def __str__(self) -> str:
        where = f"{self.path}: " if self.path else ""
        return f"{where}{self.message} [{self.code.value}]"


class ModelError(MammoEdgeError):
    """The model cannot be found, verified, loaded or run with the requested settings."""


class OutputError(MammoEdgeError):
    """A results file cannot be used: it is one of the inputs, or another run is writing it.

    Raised before anything is read or written, so the CLI stops with exit code 1 and no
    file (input or output) has been touched.
    """


class ProviderError(ModelError):
    """The requested execution provider (device) is not available in this onnxruntime."""
