"""Read any supported image into the model's 8-bit grayscale scale.

Every reader ends in the same place: a ``(H, W)`` uint8 array, values 0..255, ready for
:func:`mammo_edge.images.preprocess.to_model_input`. How values reach 8 bits (docs/runtime.md):

* 8-bit files are used as they are.
* 16-bit PNG and TIFF (and uint16 arrays) map the full container range linearly,
  ``round(v * 255 / 65535)``, unless every value fits in 10, 12 or 14 bits: that is
  high-bit data stored unscaled (a common export of 12-bit detectors), mapped from
  ``0 .. 2**bits - 1`` with a warning saying so (:func:`high_bit_depth`).
* PGM/PNM map their declared maxval, ``round(v * 255 / maxval)`` (for MIAS, maxval 255,
  this is the identity).
* DICOM follows its own grayscale pipeline, see :mod:`mammo_edge.images.dicom`.
* Colour images become gray with ITU-R BT.601 weights (``cv2.COLOR_BGR2GRAY``) and a warning;
  their colourfulness is kept for :mod:`mammo_edge.images.guard`. An alpha channel is ignored
  (with a warning when some pixels are transparent); a fully transparent image is refused.
* A TIFF with more than one full-resolution page is refused (TIFF_MULTIPAGE), never
  scored from its first page.

No rule looks at the brightest or darkest pixel of the image, so a prediction never
depends on per-image normalisation.

Format is decided by content (magic bytes), not by the file name; a name that disagrees
with the content adds a warning. A decompression-bomb guard refuses images whose header
announces more than :data:`MAX_PIXELS` pixels before decoding them.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from mammo_edge.errors import ErrorCode, InputError
from mammo_edge.images.bitdepth import HIGH_BIT_DEPTHS, high_bit_depth  # noqa: F401  (public here too)
from mammo_edge.images.headers import parse_pnm_header, read_header, sniff_format

#: Largest image accepted, in pixels (8192 x 8192). Full-field digital mammograms are at
#: most about 4096 x 5600 (23 M pixels).
MAX_PIXELS = 8192 * 8192
#: Largest file accepted, in bytes, before anything is read.
MAX_FILE_BYTES = 1 << 30
#: Shortest side accepted, in pixels: nothing smaller can be a mammogram.
MIN_SIDE = 32

#: File name endings and the format they promise.
EXTENSION_FORMATS = {
    ".pgm": "pnm",
    ".pnm": "pnm",
    ".ppm": "pnm",
    ".pbm": "pnm",
    ".png": "png",
    ".jpg": "jpeg",
    ".jpeg": "jpeg",
    ".jpe": "jpeg",
    ".tif": "tiff",
    ".tiff": "tiff",
    ".bmp": "bmp",
    ".dcm": "dicom",
    ".dicom": "dicom",
}

_FORMAT_NAMES = {
    "pnm": "PGM/PNM",
    "png": "PNG",
    "jpeg": "JPEG",
    "tiff": "TIFF",
    "bmp": "BMP",
    "dicom": "DICOM",
    "array": "array",
}


@dataclass(frozen=True)
class DecodedImage:
    """One image on the model's 8-bit scale.

    Attributes:
        pixels: ``(H, W)`` uint8 array, 0..255.
        image_format: the format found in the content (``pnm``, ``png``, ``jpeg``, ``tiff``,
            ``bmp``, ``dicom`` or ``array``).
        source_bits: bits per sample before mapping to 8 (8, 16, or DICOM Bits Stored).
        warnings: notes for the result record (colour converted, extension mismatch, ...).
    """

    pixels: np.ndarray
    image_format: str
    source_bits: int
    warnings: tuple[str, ...] = ()
    #: Side of the image the chest wall is on when the file says so (DICOM Patient
    #: Orientation), else ``None``; breast-aware preprocessing then reads the pixels.
    chest_wall: str | None = None
    #: :func:`mammo_edge.images.guard.colourfulness` before conversion to gray (0 for gray input).
    colourfulness: float = 0.0
    #: DICOM (Patient ID, Study Instance UID, laterality, view) for grouping an exam.
    exam_tags: tuple[str | None, str | None, str | None, str | None] | None = None
    #: mm per pixel when the file says (DICOM Imager Pixel Spacing), else ``None``.
    mm_per_pixel: float | None = None


def load_image(path: str | os.PathLike, max_pixels: int = MAX_PIXELS) -> DecodedImage:
    """Read an image file and map it to 8-bit grayscale.

    Args:
        path: a PGM/PNM, PNG, JPEG, TIFF, BMP or DICOM file (format found by content).
        max_pixels: the decompression-bomb limit; larger images raise TOO_LARGE.

    Returns:
        The decoded image.

    Raises:
        InputError: with a stable :class:`~mammo_edge.errors.ErrorCode` and the path.
    """
    path = Path(path)
    try:
        try:
            size = path.stat().st_size
        except FileNotFoundError as error:
            raise InputError(ErrorCode.NOT_FOUND, "no such file") from error
        except OSError as error:
            raise InputError(
                ErrorCode.UNREADABLE, f"cannot read the file: {error.strerror}"
            ) from error
        if path.is_dir():
            try:
                with os.scandir(path):
                    pass
            except OSError as error:
                raise InputError(
                    ErrorCode.UNREADABLE,
                    f"cannot list the folder: {error.strerror or error}; its images were "
                    "not scored (check its permissions)",
                ) from error
            raise InputError(ErrorCode.UNREADABLE, "this is a folder, not a file")
        if size == 0:
            raise InputError(ErrorCode.EMPTY_FILE, "the file is empty (0 bytes)")
        if size > MAX_FILE_BYTES:
            raise InputError(
                ErrorCode.TOO_LARGE,
                f"the file has {size:,} bytes, above the {MAX_FILE_BYTES:,}-byte limit",
            )
        try:
            data = path.read_bytes()
        except OSError as error:
            reason = error.strerror or str(error)
            raise InputError(ErrorCode.UNREADABLE, f"cannot read the file: {reason}") from error
        return decode_image_bytes(data, suffix=path.suffix.lower(), max_pixels=max_pixels)
    except InputError as error:
        error.path = str(path)
        if error.code == ErrorCode.NOT_AN_IMAGE and path.suffix.lower() in (".txt", ".lst"):
            error.message += f"; to read it as a list of paths, pass @{path} or --from-list"
        raise


def decode_image_bytes(data: bytes, suffix: str = "", max_pixels: int = MAX_PIXELS) -> DecodedImage:
    """Decode the bytes of an image file; see :func:`load_image`.

    Args:
        data: the whole file content.
        suffix: the lower-case file extension (``".png"``), used only to warn when it
            disagrees with the content and to accept preamble-less DICOM.
        max_pixels: the decompression-bomb limit.
    """
    if not data:
        raise InputError(ErrorCode.EMPTY_FILE, "the file is empty (0 bytes)")
    image_format = sniff_format(data, suffix)
    warnings: list[str] = []
    promised = EXTENSION_FORMATS.get(suffix)
    if promised is not None and promised != image_format:
        warnings.append(
            f"the file is {_FORMAT_NAMES[image_format]} although its name ends in {suffix}; "
            f"decoded as {_FORMAT_NAMES[image_format]}"
        )

    def check_size(width: int, height: int) -> None:
        _check_size(width, height, max_pixels)

    if image_format == "dicom":
        from mammo_edge.images.dicom import decode_dicom

        decoded = decode_dicom(data, check_size)
        return DecodedImage(
            decoded.pixels,
            "dicom",
            decoded.bits_stored,
            (*warnings, *decoded.warnings),
            decoded.chest_wall,
            exam_tags=decoded.exam_tags,
            mm_per_pixel=decoded.mm_per_pixel,
        )

    header = read_header(data, image_format)
    if header.width is not None and header.height is not None:
        check_size(header.width, header.height)
    if header.truncation is not None:
        raise InputError(ErrorCode.TRUNCATED, header.truncation)
    if header.pages > 1:
        raise InputError(
            ErrorCode.TIFF_MULTIPAGE,
            f"the TIFF holds {header.pages} full-resolution pages (pages 0 to "
            f"{header.pages - 1}); which one is the mammogram cannot be told, so none was "
            "scored. Save the page to score as its own file",
        )
    if image_format == "pnm" and data[:2] in (b"P2", b"P5"):
        values, max_value = _decode_pgm(data)
    else:
        values = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), cv2.IMREAD_UNCHANGED)
        if values is None:
            raise InputError(
                ErrorCode.CORRUPT,
                f"the {_FORMAT_NAMES[image_format]} pixel data could not be decoded",
            )
        max_value = None
    check_size(values.shape[1], values.shape[0])
    return _finish(values, image_format, max_value, warnings)


def image_from_array(array: np.ndarray) -> DecodedImage:
    """Bring an in-memory image onto the 8-bit scale with the same rules as files.

    Args:
        array: ``(H, W)`` grayscale or ``(H, W, 3|4)`` BGR(A) colour, uint8 (used as is)
            or uint16 (full range, ``round(v * 255 / 65535)``).

    Raises:
        InputError: UNSUPPORTED_FORMAT for other dtypes or shapes, TOO_SMALL, TOO_LARGE.
    """
    if not isinstance(array, np.ndarray):
        raise InputError(
            ErrorCode.UNSUPPORTED_FORMAT, f"expected a numpy array, got {type(array).__name__}"
        )
    if array.dtype not in (np.uint8, np.uint16):
        raise InputError(
            ErrorCode.UNSUPPORTED_FORMAT,
            f"array dtype {array.dtype} is not supported; pass uint8 (0..255) or uint16",
        )
    if array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[2] not in (1, 2, 3, 4)):
        raise InputError(
            ErrorCode.UNSUPPORTED_FORMAT,
            f"expected an (H, W) or (H, W, 3) image array, got shape {array.shape}",
        )
    _check_size(array.shape[1], array.shape[0], MAX_PIXELS)
    return _finish(np.ascontiguousarray(array), "array", None, [])


def _check_size(width: int, height: int, max_pixels: int) -> None:
    if width * height > max_pixels:
        raise InputError(
            ErrorCode.TOO_LARGE,
            f"the image is {width} x {height} = {width * height:,} pixels, above the "
            f"{max_pixels:,}-pixel limit that guards against decompression bombs",
        )
    if min(width, height) < MIN_SIDE:
        raise InputError(
            ErrorCode.TOO_SMALL,
            f"the image is {width} x {height} pixels; a mammogram needs at least "
            f"{MIN_SIDE} pixels on each side",
        )


def _decode_pgm(data: bytes) -> tuple[np.ndarray, int]:
    """Decode a grayscale PGM (P5 binary or P2 plain) keeping its declared maxval."""
    width, height, maxval, offset = parse_pnm_header(data)
    count = width * height
    if data[:2] == b"P5":
        dtype = np.dtype(">u2") if maxval > 255 else np.dtype(np.uint8)
        values = np.frombuffer(data, dtype=dtype, count=count, offset=offset)
        values = values.astype(np.uint16) if maxval > 255 else values  # big-endian to native
    else:
        tokens = data[offset:].split()
        if len(tokens) < count:
            raise InputError(
                ErrorCode.TRUNCATED, f"the PGM holds {len(tokens)} of {count} pixel values"
            )
        try:
            values = np.array(tokens[:count], dtype=np.int64)
        except ValueError as error:
            raise InputError(ErrorCode.CORRUPT, "the plain PGM holds a non-number") from error
        values = values.astype(np.uint16 if maxval > 255 else np.uint8)
    return values.reshape(height, width), maxval


def _finish(
    values: np.ndarray, image_format: str, max_value: int | None, warnings: list[str]
) -> DecodedImage:
    """Convert colour to gray and map the value range to uint8."""
    if values.dtype not in (np.uint8, np.uint16):
        raise InputError(
            ErrorCode.UNSUPPORTED_FORMAT,
            f"{values.dtype} samples are not supported; use 8- or 16-bit integer images",
        )
    colour_measure = 0.0
    if values.ndim == 3:
        values, colour_measure = _to_gray(values, warnings)
    bits = 16 if values.dtype == np.uint16 else 8
    if max_value is None:
        max_value = 65535 if bits == 16 else 255
    if max_value == 255 and bits == 8:
        return DecodedImage(
            values, image_format, bits, tuple(warnings), colourfulness=colour_measure
        )
    if bits == 16 and max_value == 65535:
        depth = high_bit_depth(values)
        if depth is not None:
            max_value = 2**depth - 1
            bits = depth
            warnings.append(
                f"16-bit {_FORMAT_NAMES[image_format]} whose values all fit in {depth} bits "
                f"(largest {int(values.max())}): read as {depth}-bit data, 0..{max_value} "
                "mapped to 0..255"
            )
    # Integer rounding of v * 255 / max_value; uint32 cannot overflow (65535 * 255 < 2**32).
    widened = np.minimum(values.astype(np.uint32), max_value)
    pixels = ((widened * 255 + max_value // 2) // max_value).astype(np.uint8)
    return DecodedImage(pixels, image_format, bits, tuple(warnings), colourfulness=colour_measure)


def _to_gray(values: np.ndarray, warnings: list[str]) -> tuple[np.ndarray, float]:
    """One channel, and the colourfulness of the colour it came from (0 for gray)."""
    from mammo_edge.images.guard import colourfulness

    channels = values.shape[2]
    if channels == 1:
        return values[:, :, 0], 0.0
    if channels in (2, 4):  # gray + alpha, BGRA
        alpha = values[:, :, -1]
        opaque = np.iinfo(values.dtype).max
        if not alpha.any():
            raise InputError(
                ErrorCode.FULLY_TRANSPARENT,
                "every pixel is fully transparent (alpha 0): nothing in the image is "
                "visible. Export the image without transparency",
            )
        see_through = float(np.mean(alpha < opaque))
        if see_through:
            warnings.append(
                f"alpha channel ignored: {see_through:.1%} of the pixels are partly or "
                "fully transparent"
            )
        if channels == 2:
            return np.ascontiguousarray(values[:, :, 0]), 0.0
    colour = values[:, :, :3]
    if np.array_equal(colour[:, :, 0], colour[:, :, 1]) and np.array_equal(
        colour[:, :, 0], colour[:, :, 2]
    ):
        return np.ascontiguousarray(colour[:, :, 0]), 0.0  # gray stored as RGB: no conversion
    warnings.append("colour image converted to gray")
    contiguous = np.ascontiguousarray(colour)
    return cv2.cvtColor(contiguous, cv2.COLOR_BGR2GRAY), colourfulness(contiguous)
