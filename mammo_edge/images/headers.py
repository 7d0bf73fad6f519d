"""Recognise an image file by its first bytes and read its size without decoding pixels.

Knowing width and height from the header lets :mod:`mammo_edge.images.decode` refuse a
decompression bomb (a small file that decodes to billions of pixels) before any pixel
buffer is allocated, and knowing where the pixel data should end lets it report a
truncated file as TRUNCATED instead of scoring a half-grey image (libjpeg, for one,
silently fills a cut-off JPEG with grey).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from mammo_edge.errors import ErrorCode, InputError

#: Formats the runtime decodes; the value is the name written to result records.
SUPPORTED_FORMATS = ("pnm", "png", "jpeg", "tiff", "bmp", "dicom")

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_PNM_WHITESPACE = b" \t\r\n\x0b\x0c"

# Image kinds recognised only so that the error says "unsupported" rather than "not an image".
_UNSUPPORTED_SIGNATURES = (
    (b"GIF87a", "GIF"),
    (b"GIF89a", "GIF"),
    (b"\x00\x00\x00\x0cjP  \r\n\x87\n", "JPEG 2000"),
    (b"\xffO\xffQ", "JPEG 2000 codestream"),
    (b"v/1\x01", "OpenEXR"),
    (b"8BPS", "Photoshop"),
    (b"%PDF", "PDF"),
)


@dataclass(frozen=True)
class ImageHeader:
    """What the first bytes of a file say about it.

    Attributes:
        image_format: one of :data:`SUPPORTED_FORMATS`.
        width, height: pixel size, or ``None`` where the header could not tell (the size is
            then checked after decoding).
        truncation: why the pixel data is incomplete, or ``None`` when it looks complete.
            Reported after the size check, so a forged huge header reads TOO_LARGE.
        pages: full-resolution images in the file (TIFF pages; reduced-resolution copies
            and transparency masks, NewSubfileType bits 0 and 2, do not count).
    """

    image_format: str
    width: int | None = None
    height: int | None = None
    truncation: str | None = None
    pages: int = 1


def sniff_format(data: bytes, suffix: str = "") -> str:
    """Name the image format of ``data`` from its magic bytes.

    Args:
        data: the whole file (or at least its first 132 bytes).
        suffix: the lower-case file extension, used only to accept DICOM files written
            without the 128-byte preamble and ``DICM`` prefix (they have no magic bytes).

    Returns:
        One of :data:`SUPPORTED_FORMATS`.

    Raises:
        InputError: UNSUPPORTED_FORMAT for a known image kind the runtime does not read,
            NOT_AN_IMAGE for anything else.
    """
    if len(data) >= 132 and data[128:132] == b"DICM":
        return "dicom"
    if data.startswith(_PNG_SIGNATURE):
        return "png"
    if data.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if data[:4] in (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+"):
        return "tiff"
    if data.startswith(b"BM") and len(data) >= 26:
        return "bmp"
    if len(data) >= 3 and data[0:1] == b"P" and data[1:2] in b"123456" and data[2:3].isspace():
        return "pnm"
    # A DICOM file without preamble starts straight with a (0002,xxxx) or (0008,xxxx) tag.
    if suffix in (".dcm", ".dicom", "") and data[:2] in (b"\x02\x00", b"\x08\x00"):
        return "dicom"
    for signature, name in _UNSUPPORTED_SIGNATURES:
        if data.startswith(signature):
            raise InputError(
                ErrorCode.UNSUPPORTED_FORMAT,
                f"{name} files are not supported; convert to PNG, TIFF, PGM or DICOM",
            )
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        raise InputError(
            ErrorCode.UNSUPPORTED_FORMAT, "WebP files are not supported; convert to PNG"
        )
    raise InputError(
        ErrorCode.NOT_AN_IMAGE,
        "the content is not a PGM, PNG, JPEG, TIFF, BMP or DICOM image",
    )


def read_header(data: bytes, image_format: str) -> ImageHeader:
    """Read the size of an image of a known format and check the file is complete.

    Raises:
        InputError: TRUNCATED when the file ends inside the header; CORRUPT when the header
            is malformed. A file whose pixel data is cut short is reported in
            :attr:`ImageHeader.truncation` instead.
    """
    reader = _HEADER_READERS.get(image_format)
    if reader is None:
        return ImageHeader(image_format)
    try:
        return reader(data)
    except (struct.error, IndexError) as error:
        raise InputError(ErrorCode.TRUNCATED, f"the {image_format} header is cut off") from error


def parse_pnm_header(data: bytes) -> tuple[int, int, int, int]:
    """Parse a Netpbm (PBM/PGM/PPM) header.

    Returns:
        ``(width, height, maxval, pixel_offset)``; ``maxval`` is 1 for bitmaps.
    """
    kind = data[:2]
    wanted = 2 if kind in (b"P1", b"P4") else 3
    values: list[int] = []
    position = 2
    while len(values) < wanted:
        while position < len(data) and (data[position] in _PNM_WHITESPACE or data[position] == 35):
            if data[position] == 35:  # "#": a comment runs to the end of the line
                end_of_line = data.find(b"\n", position)
                position = len(data) if end_of_line < 0 else end_of_line + 1
            else:
                position += 1
        start = position
        while position < len(data) and 48 <= data[position] <= 57:
            position += 1
        if position == len(data):
            raise InputError(ErrorCode.TRUNCATED, "the PNM header is cut off")
        if start == position:
            raise InputError(ErrorCode.CORRUPT, "malformed PNM header: expected a number")
        values.append(int(data[start:position]))
    width, height = values[0], values[1]
    maxval = values[2] if wanted == 3 else 1
    if not 0 < maxval <= 65535:
        raise InputError(ErrorCode.CORRUPT, f"PNM maxval must be 1..65535, found {maxval}")
    return width, height, maxval, position + 1  # one whitespace byte ends the header


def _pnm_header(data: bytes) -> ImageHeader:
    width, height, maxval, offset = parse_pnm_header(data)
    kind = data[:2]
    if kind in (b"P4", b"P5", b"P6"):
        channels = 3 if kind == b"P6" else 1
        if kind == b"P4":
            expected = (width + 7) // 8 * height
        else:
            expected = width * height * channels * (2 if maxval > 255 else 1)
        if len(data) - offset < expected:
            truncation = (
                f"the file holds {len(data) - offset} pixel bytes, the header announces {expected}"
            )
            return ImageHeader("pnm", width, height, truncation)
    return ImageHeader("pnm", width, height)


def _png_header(data: bytes) -> ImageHeader:
    if data[12:16] != b"IHDR":
        raise InputError(ErrorCode.CORRUPT, "PNG without an IHDR chunk")
    width, height = struct.unpack(">II", data[16:24])
    # Walk the chunk list: a file cut short has no IEND chunk.
    position = 8
    while True:
        if position + 8 > len(data):
            return ImageHeader("png", width, height, "the PNG file ends before its IEND chunk")
        (length,) = struct.unpack(">I", data[position : position + 4])
        chunk_type = data[position + 4 : position + 8]
        position += 12 + length
        if position > len(data):
            truncation = f"the PNG file ends inside its {chunk_type.decode('latin-1')} chunk"
            return ImageHeader("png", width, height, truncation)
        if chunk_type == b"IEND":
            return ImageHeader("png", width, height)


# Start-of-frame markers carry the image size; C4 (DHT), C8 (JPG) and CC (DAC) do not.
_JPEG_SOF_MARKERS = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}


def _jpeg_header(data: bytes) -> ImageHeader:
    position = 2
    while position + 4 <= len(data):
        if data[position] != 0xFF:
            raise InputError(ErrorCode.CORRUPT, "malformed JPEG: expected a marker")
        marker = data[position + 1]
        if marker == 0xFF:  # fill byte
            position += 1
            continue
        if marker in (0x01, *range(0xD0, 0xD9)):
            position += 2
            continue
        (length,) = struct.unpack(">H", data[position + 2 : position + 4])
        if marker in _JPEG_SOF_MARKERS:
            height, width = struct.unpack(">HH", data[position + 5 : position + 9])
            # Entropy-coded data never holds FF D9 (0xFF is byte-stuffed), so a complete
            # file ends with the EOI marker, give or take zero padding.
            truncation = None
            if not data.rstrip(b"\x00").endswith(b"\xff\xd9"):
                truncation = "the JPEG file ends before its end-of-image marker"
            return ImageHeader("jpeg", width, height, truncation)
        if marker == 0xDA:  # start of scan before any frame header
            break
        position += 2 + length
    raise InputError(ErrorCode.CORRUPT, "JPEG without a frame header (SOF)")


_TIFF_TYPE_SIZES = {1: 1, 3: 2, 4: 4, 16: 8}  # BYTE, SHORT, LONG, LONG8
_TIFF_TYPE_CODES = {1: "B", 3: "H", 4: "I", 16: "Q"}


def _tiff_header(data: bytes) -> ImageHeader:
    order = "<" if data[:2] == b"II" else ">"
    big = data[2:4] in (b"+\x00", b"\x00+")
    if big:
        (ifd_offset,) = struct.unpack(order + "Q", data[8:16])
        count_format, entry_size, inline_size, value_format = "Q", 20, 8, "Q"
    else:
        (ifd_offset,) = struct.unpack(order + "I", data[4:8])
        count_format, entry_size, inline_size, value_format = "H", 12, 4, "I"
    count_size = struct.calcsize(count_format)
    if ifd_offset + count_size > len(data):
        raise InputError(ErrorCode.TRUNCATED, "the TIFF file ends before its first directory")
    (entry_count,) = struct.unpack(order + count_format, data[ifd_offset : ifd_offset + count_size])
    tags: dict[int, tuple[int, ...]] = {}
    for index in range(entry_count):
        start = ifd_offset + count_size + index * entry_size
        if big:
            tag, value_type, count = struct.unpack(order + "HHQ", data[start : start + 12])
        else:
            tag, value_type, count = struct.unpack(order + "HHI", data[start : start + 8])
        if tag not in (256, 257, 273, 279, 324, 325) or value_type not in _TIFF_TYPE_SIZES:
            continue
        size = _TIFF_TYPE_SIZES[value_type] * count
        field = data[start + entry_size - inline_size : start + entry_size]
        if size > inline_size:
            (value_offset,) = struct.unpack(order + value_format, field)
            field = data[value_offset : value_offset + size]
        fmt = order + _TIFF_TYPE_CODES[value_type] * count
        tags[tag] = struct.unpack(fmt, field[:size])
    if 256 not in tags or 257 not in tags:
        raise InputError(ErrorCode.CORRUPT, "TIFF without ImageWidth/ImageLength tags")
    offsets = tags.get(273) or tags.get(324) or ()
    byte_counts = tags.get(279) or tags.get(325) or ()
    ends = [offset + count for offset, count in zip(offsets, byte_counts, strict=False)]
    truncation = None
    if ends and max(ends) > len(data):
        truncation = f"the TIFF file has {len(data)} bytes, its strips reach byte {max(ends)}"
    pages = _tiff_pages(data, order, big, ifd_offset)
    return ImageHeader("tiff", tags[256][0], tags[257][0], truncation, pages)


#: TIFF directories followed at most: a loop in a forged file must end.
_TIFF_MAX_DIRECTORIES = 1024


def _tiff_pages(data: bytes, order: str, big: bool, ifd_offset: int) -> int:
    """Full-resolution pages in the chain of image file directories (IFDs).

    A directory whose NewSubfileType (254) has bit 0 (reduced resolution, e.g. a
    thumbnail) or bit 2 (transparency mask) set is not a page.
    """
    count_format, entry_size, head, next_format = (
        ("Q", 20, "HHQ", "Q") if big else ("H", 12, "HHI", "I")
    )
    count_size = struct.calcsize(count_format)
    next_size = struct.calcsize(next_format)
    pages, seen = 0, set()
    while ifd_offset and ifd_offset not in seen and len(seen) < _TIFF_MAX_DIRECTORIES:
        seen.add(ifd_offset)
        if ifd_offset + count_size > len(data):
            break
        (entry_count,) = struct.unpack(
            order + count_format, data[ifd_offset : ifd_offset + count_size]
        )
        subfile_type = 0
        for index in range(entry_count):
            start = ifd_offset + count_size + index * entry_size
            if start + entry_size > len(data):
                break
            tag, value_type, _count = struct.unpack(
                order + head, data[start : start + struct.calcsize(head)]
            )
            if tag == 254 and value_type in (3, 4):
                value_start = start + entry_size - (8 if big else 4)
                code = "H" if value_type == 3 else "I"
                (subfile_type,) = struct.unpack(
                    order + code, data[value_start : value_start + struct.calcsize(code)]
                )
        pages += not subfile_type & 0b101
        link = ifd_offset + count_size + entry_count * entry_size
        if link + next_size > len(data):
            break
        (ifd_offset,) = struct.unpack(order + next_format, data[link : link + next_size])
    return max(pages, 1)


def _bmp_header(data: bytes) -> ImageHeader:
    (pixel_offset,) = struct.unpack("<I", data[10:14])
    (info_size,) = struct.unpack("<I", data[14:18])
    if info_size == 12:  # OS/2 BITMAPCOREHEADER
        width, height = struct.unpack("<HH", data[18:22])
        bits, compression = struct.unpack("<H", data[24:26])[0], 0
    else:
        width, height = struct.unpack("<ii", data[18:26])
        bits, compression = struct.unpack("<HI", data[28:34])
    height = abs(height)  # negative height means rows stored top-down
    truncation = None
    if compression == 0 and width > 0:
        row_bytes = (bits * width + 31) // 32 * 4
        if len(data) < pixel_offset + row_bytes * height:
            truncation = "the BMP file ends inside its pixel data"
    return ImageHeader("bmp", width, height, truncation)


_HEADER_READERS = {
    "pnm": _pnm_header,
    "png": _png_header,
    "jpeg": _jpeg_header,
    "tiff": _tiff_header,
    "bmp": _bmp_header,
}
