"""Decode a single-frame DICOM image to the model's 8-bit scale.

The mapping follows the DICOM grayscale pipeline (PS3.3 C.11), first view only:

1. Modality LUT: (0028,3000) Modality LUT Sequence, or (0028,1053) Rescale Slope and
   (0028,1052) Rescale Intercept, turn stored values into output units.
2. VOI: a (0028,3010) VOI LUT Sequence if present (its output spans
   ``0 .. 2**LUTDescriptor[2] - 1``), else the first (0028,1050) Window Center /
   (0028,1051) Window Width pair with (0028,1056) VOI LUT Function (output spans the
   modality output range of the next step), else nothing.
3. Without a VOI transform the full range the stored bits can hold,
   ``0 .. 2**BitsStored - 1`` (signed when (0028,0103) Pixel Representation is 1), taken
   through the same rescale, is the range.
4. That range maps linearly to 0..255 (rounded), and (0028,0004) Photometric
   Interpretation MONOCHROME1 is inverted (``255 - value``) so that bright means dense as
   in MONOCHROME2 and in the training images. Presentation LUT Shape INVERSE accompanies
   MONOCHROME1 in DX/MG objects and is not applied a second time.

None of this depends on the pixel values of the file itself, so the same stored pixels
always give the same model input. pydicom is imported only when a DICOM file is read.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np

from mammo_edge.errors import ErrorCode, InputError
from mammo_edge.images.bitdepth import high_bit_depth
from mammo_edge.images.dicom_tags import (
    chest_wall_from_orientation,
    exam_ids,
    laterality,
    pixel_spacing,
    view_position,
)

_COLOUR_INTERPRETATIONS = ("RGB", "YBR_FULL", "YBR_FULL_422", "YBR_ICT", "YBR_RCT")


@dataclass(frozen=True)
class DicomPixels:
    """A decoded DICOM frame on the 8-bit scale, with notes for the result record."""

    pixels: np.ndarray
    bits_stored: int
    warnings: tuple[str, ...]
    #: ``left`` / ``right``: the image side the chest wall is on, from (0020,0020) Patient
    #: Orientation; ``None`` when the file does not say (the pixels decide then).
    chest_wall: str | None = None
    #: (0020,0062) Image Laterality, else (0020,0060) Laterality: ``L``, ``R`` or ``None``.
    laterality: str | None = None
    #: (0010,0020) Patient ID and (0020,000D) Study Instance UID, for grouping an exam.
    patient_id: str | None = None
    study_uid: str | None = None
    #: (0018,1164) Imager Pixel Spacing, else (0028,0030) Pixel Spacing: mm per pixel.
    mm_per_pixel: float | None = None
    #: The mammographic view (``CC``, ``MLO``...; :func:`view_position`), ``None`` unknown.
    view: str | None = None

    @property
    def exam_tags(self) -> tuple[str | None, str | None, str | None, str | None]:
        return self.patient_id, self.study_uid, self.laterality, self.view


def read_dicom_size(dataset) -> tuple[int, int]:
    """Return ``(columns, rows)`` of a dataset, raising DICOM_UNSUPPORTED when absent."""
    rows, columns = dataset.get("Rows"), dataset.get("Columns")
    if not rows or not columns:
        raise InputError(ErrorCode.DICOM_UNSUPPORTED, "DICOM without (0028,0010) Rows/Columns")
    return int(columns), int(rows)


def decode_dicom(data: bytes, check_size) -> DicomPixels:
    """Decode DICOM bytes to a ``(H, W)`` uint8 frame.

    Args:
        data: the whole file.
        check_size: ``check_size(width, height)`` raising InputError for images too small or
            too large; called from the header before the pixel data is decoded.

    Raises:
        InputError: DICOM_NO_PIXELS, DICOM_MULTIFRAME, DICOM_UNSUPPORTED, TRUNCATED, CORRUPT.
    """
    dataset = _read_dataset(data)
    _check_single_image(dataset)
    width, height = read_dicom_size(dataset)
    check_size(width, height)
    photometric, samples = _check_pixel_format(dataset)
    _check_decoder_available(dataset)
    _check_native_length(dataset, width, height, samples)
    stored = _decode_stored(dataset)

    warnings: list[str] = []
    if str(dataset.get("PresentationIntentType", "")).upper() == "FOR PROCESSING":
        warnings.append(
            "DICOM 'FOR PROCESSING' (raw detector) image: the model was trained on "
            "presentation-like film images; prefer the 'FOR PRESENTATION' image"
        )
    if samples != 1 or photometric in _COLOUR_INTERPRETATIONS:
        # pydicom returns RGB for YBR data; weights as cv2.COLOR_RGB2GRAY (ITU-R BT.601).
        gray = stored[..., :3].astype(np.float64) @ np.array([0.299, 0.587, 0.114])
        warnings.append(f"colour DICOM ({photometric}) converted to gray")
        pixels = _to_uint8(gray, *_stored_range(dataset))
    else:
        pixels = _grayscale_to_uint8(stored, dataset, warnings, invert=photometric == "MONOCHROME1")
    return DicomPixels(
        pixels,
        int(dataset.BitsStored),
        tuple(warnings),
        chest_wall_from_orientation(dataset),
        laterality(dataset),
        *exam_ids(dataset),
        pixel_spacing(dataset),
        view_position(dataset),
    )


def _read_dataset(data: bytes):
    """The pydicom dataset of the file's bytes (header and undecoded pixel data)."""
    try:
        import pydicom
        from pydicom.errors import InvalidDicomError
    except ImportError as error:
        raise InputError(
            ErrorCode.DICOM_UNSUPPORTED,
            "reading DICOM needs pydicom: pip install 'mammo-edge[dicom]'",
        ) from error

    try:
        return pydicom.dcmread(io.BytesIO(data), force=True)
    except (EOFError, OSError) as error:
        raise InputError(ErrorCode.TRUNCATED, f"the DICOM file is cut off ({error})") from error
    except (InvalidDicomError, ValueError, KeyError, TypeError, AttributeError) as error:
        raise InputError(ErrorCode.CORRUPT, f"unreadable DICOM header ({error})") from error


def _check_single_image(dataset) -> None:
    """Refuse objects without (7FE0,0010) Pixel Data and multi-frame (0028,0008) images."""
    if "PixelData" not in dataset:
        if "FloatPixelData" in dataset or "DoubleFloatPixelData" in dataset:
            raise InputError(ErrorCode.DICOM_UNSUPPORTED, "float DICOM pixel data is not supported")
        kind = dataset.get("SOPClassUID")
        described = f" (SOP class {kind.name})" if kind is not None else ""
        raise InputError(
            ErrorCode.DICOM_NO_PIXELS,
            f"the DICOM object has no (7FE0,0010) Pixel Data{described}; it is not an image",
        )
    frames = int(dataset.get("NumberOfFrames", 1) or 1)
    if frames > 1:
        raise InputError(
            ErrorCode.DICOM_MULTIFRAME,
            f"the DICOM image has {frames} frames (tomosynthesis or cine); "
            "only single-frame 2-D mammograms can be scored",
        )


def _check_pixel_format(dataset) -> tuple[str, int]:
    """(0028,0004) Photometric Interpretation (upper case) and (0028,0002) Samples per
    Pixel, refusing interpretations not handled and data without (0028,0101) Bits Stored or
    (0028,0100) Bits Allocated."""
    photometric = str(dataset.get("PhotometricInterpretation", "MONOCHROME2")).upper()
    samples = int(dataset.get("SamplesPerPixel", 1) or 1)
    if photometric not in ("MONOCHROME1", "MONOCHROME2", *_COLOUR_INTERPRETATIONS):
        raise InputError(
            ErrorCode.DICOM_UNSUPPORTED,
            f"(0028,0004) Photometric Interpretation {photometric} is not supported",
        )
    if "BitsStored" not in dataset or "BitsAllocated" not in dataset:
        raise InputError(
            ErrorCode.DICOM_UNSUPPORTED, "DICOM without (0028,0101) Bits Stored / Bits Allocated"
        )
    return photometric, samples


def _decode_stored(dataset) -> np.ndarray:
    """The stored values of the pixel data (pydicom's ``pixel_array``)."""
    try:
        return dataset.pixel_array
    except (NotImplementedError, RuntimeError, ValueError, EOFError) as error:
        # A decoder exists (checked before), so a failure here means damaged pixel data.
        raise InputError(
            ErrorCode.CORRUPT, f"cannot decode the DICOM pixel data ({error})"
        ) from error


def _transfer_syntax(dataset) -> str:
    meta = getattr(dataset, "file_meta", None)
    uid = meta.get("TransferSyntaxUID") if meta is not None else None
    return f"{uid} ({uid.name})" if uid is not None else "(unknown)"


def _check_decoder_available(dataset) -> None:
    """Raise DICOM_UNSUPPORTED when no installed plugin decodes the transfer syntax."""
    from pydicom.pixels import get_decoder

    meta = getattr(dataset, "file_meta", None)
    uid = meta.get("TransferSyntaxUID") if meta is not None else None
    if uid is None:
        return  # pydicom assumes a native syntax for files without file meta
    try:
        decoder = get_decoder(uid)
    except NotImplementedError as error:
        raise InputError(
            ErrorCode.DICOM_UNSUPPORTED,
            f"no decoder exists for transfer syntax {_transfer_syntax(dataset)}",
        ) from error
    if not decoder.is_available:
        raise InputError(
            ErrorCode.DICOM_UNSUPPORTED,
            f"cannot decode transfer syntax {_transfer_syntax(dataset)}: a codec is missing "
            f"({'; '.join(decoder.missing_dependencies)}). "
            "Install them with pip install 'mammo-edge[dicom]'",
        )


def _check_native_length(dataset, width: int, height: int, samples: int) -> None:
    meta = getattr(dataset, "file_meta", None)
    uid = meta.get("TransferSyntaxUID") if meta is not None else None
    if uid is not None and uid.is_compressed:
        return
    expected = width * height * samples * int(dataset.BitsAllocated) // 8
    found = len(dataset.PixelData)
    if found < expected:
        raise InputError(
            ErrorCode.TRUNCATED,
            f"the DICOM pixel data has {found} bytes, Rows x Columns x Bits Allocated "
            f"needs {expected}",
        )


def _stored_range(dataset, bits: int | None = None) -> tuple[float, float]:
    """The range the modality output can span, as pydicom's apply_windowing defines it.

    ``bits`` overrides (0028,0101) Bits Stored (high-bit data found in a 16-bit one).
    """
    bits = int(dataset.BitsStored) if bits is None else bits
    if dataset.get("ModalityLUTSequence"):
        return 0.0, float(2 ** int(dataset.ModalityLUTSequence[0].LUTDescriptor[2]) - 1)
    if int(dataset.get("PixelRepresentation", 0)) == 0:
        low, high = 0.0, float(2**bits - 1)
    else:
        low, high = float(-(2 ** (bits - 1))), float(2 ** (bits - 1) - 1)
    slope, intercept = dataset.get("RescaleSlope"), dataset.get("RescaleIntercept")
    if slope is not None and intercept is not None:
        low, high = low * float(slope) + float(intercept), high * float(slope) + float(intercept)
    return low, high


def _grayscale_to_uint8(
    stored: np.ndarray, dataset, warnings: list[str], invert: bool
) -> np.ndarray:
    """The 8-bit image of a grayscale frame (MONOCHROME1 inverted when ``invert``).

    Every step of the pipeline is a function of the stored value alone, so for 8- and
    16-bit integer data it runs once per possible value (256 or 65,536) and the frame is
    looked up in that table: the same pixels as transforming the frame itself, without its
    float64 copies (100 MB each for a 4.5k x 2.8k frame, several alive at once).
    """
    if stored.dtype.kind in "ui" and stored.dtype.itemsize in (1, 2):
        stored = stored.astype(stored.dtype.newbyteorder("="), copy=False)
        unsigned = np.dtype(f"u{stored.dtype.itemsize}")
        codes = np.arange(2 ** (8 * stored.dtype.itemsize), dtype=unsigned).view(stored.dtype)
        values, low, high = _grayscale_pipeline(stored, dataset, warnings, codes=codes)
        table = _to_uint8(values, low, high)
        return (255 - table if invert else table)[stored.view(unsigned)]
    values, low, high = _grayscale_pipeline(stored, dataset, warnings)
    pixels = _to_uint8(values, low, high)
    return 255 - pixels if invert else pixels


def _grayscale_pipeline(
    stored: np.ndarray, dataset, warnings: list[str], codes: np.ndarray | None = None
) -> tuple[np.ndarray, float, float]:
    """Apply Modality LUT then VOI; return values and the range that maps to 0..255.

    ``codes``: transform these values instead of ``stored`` (a table of every stored
    value); warnings about the value range still come from ``stored``.
    """
    from pydicom.pixels import apply_modality_lut, apply_voi, apply_windowing

    values = apply_modality_lut(stored if codes is None else codes, dataset)
    voi_sequence = dataset.get("VOILUTSequence")
    if voi_sequence and "LUTDescriptor" in voi_sequence[0] and "LUTData" in voi_sequence[0]:
        if not np.issubdtype(values.dtype, np.integer):
            values = np.rint(values).astype(np.int64)  # LUT inputs are integers
        output_bits = int(voi_sequence[0].LUTDescriptor[2])
        return apply_voi(values, dataset, 0), 0.0, float(2**output_bits - 1)
    low, high = _stored_range(dataset)
    if "WindowCenter" in dataset and "WindowWidth" in dataset:
        try:
            return apply_windowing(values, dataset, 0), low, high
        except ValueError as error:
            warnings.append(f"window ignored ({error}); full stored range used")
    used_bits = int(np.abs(stored).max()).bit_length() if stored.size else 0
    bits_stored = int(dataset.BitsStored)
    depth = high_bit_depth(stored, bits_stored)
    if (
        depth is not None
        and int(dataset.get("PixelRepresentation", 0)) == 0
        and not dataset.get("ModalityLUTSequence")
    ):
        # Bits Stored 16 but values of a 12-bit detector: the writer copied Bits Allocated.
        warnings.append(
            f"no window in the file, Bits Stored 16 but the values all fit in {depth} bits "
            f"(largest {int(stored.max())}): read as {depth}-bit data, 0..{2**depth - 1} "
            "mapped to 0..255"
        )
        low, high = _stored_range(dataset, bits=depth)
        return values, low, high
    if bits_stored > 8 and used_bits <= bits_stored - 4:
        warnings.append(
            f"no window in the file and values use only {used_bits} of "
            f"{int(dataset.BitsStored)} Bits Stored; the image maps dark to 8 bits"
        )
    return values, low, high


def _to_uint8(values: np.ndarray, low: float, high: float) -> np.ndarray:
    """Map ``low..high`` linearly onto 0..255 with rounding; values outside are clipped."""
    if high == low:
        return np.zeros(values.shape, dtype=np.uint8)
    scaled = (np.asarray(values, dtype=np.float64) - low) * (255.0 / (high - low))
    return np.clip(np.rint(scaled), 0, 255).astype(np.uint8)
