"""mammo_edge.images.decode, headers and dicom: every format, the 8-bit mapping, every bad input."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest
from conftest import synthetic_mammogram, write_dicom

from mammo_edge.errors import ErrorCode, InputError
from mammo_edge.images.decode import MIN_SIDE, decode_image_bytes, image_from_array, load_image

PIXELS = synthetic_mammogram(96, 80)
# The same picture on 16 bits: v * 257 maps back to exactly v under round(v * 255 / 65535).
PIXELS_16 = PIXELS.astype(np.uint16) * 257


def write_pgm(path: Path, values: np.ndarray, maxval: int = 255, plain: bool = False) -> Path:
    height, width = values.shape
    header = f"{'P2' if plain else 'P5'}\n# a comment\n{width} {height}\n{maxval}\n".encode()
    if plain:
        body = " ".join(str(int(v)) for v in values.ravel()).encode() + b"\n"
    else:
        body = values.astype(">u2" if maxval > 255 else np.uint8).tobytes()
    path.write_bytes(header + body)
    return path


def encoded(extension: str, values: np.ndarray) -> bytes:
    ok, buffer = cv2.imencode(extension, values)
    assert ok
    return buffer.tobytes()


def expect_error(code: ErrorCode, path: Path) -> InputError:
    with pytest.raises(InputError) as caught:
        load_image(path)
    assert caught.value.code is code, caught.value
    assert caught.value.path == str(path)
    return caught.value


# --- formats ---------------------------------------------------------------------------


@pytest.mark.parametrize("plain", [False, True], ids=["P5", "P2"])
def test_pgm_8_bit_is_read_exactly(tmp_path, plain):
    image = load_image(write_pgm(tmp_path / "a.pgm", PIXELS, plain=plain))
    assert image.image_format == "pnm" and image.source_bits == 8 and image.warnings == ()
    np.testing.assert_array_equal(image.pixels, PIXELS)


def test_pgm_8_bit_matches_opencv_on_a_mias_style_file(tmp_path):
    path = write_pgm(tmp_path / "mias.pgm", PIXELS)
    np.testing.assert_array_equal(load_image(path).pixels, cv2.imread(str(path), 0))


def test_pgm_16_bit_maps_its_maxval_to_255(tmp_path):
    image = load_image(write_pgm(tmp_path / "a.pgm", PIXELS_16, maxval=65535))
    assert image.source_bits == 16
    np.testing.assert_array_equal(image.pixels, PIXELS)
    # A 12-bit PGM declares maxval 4095: full brightness is 4095, not 65535.
    twelve_bit = np.rint(PIXELS.astype(np.float64) * 4095 / 255).astype(np.uint16)
    image = load_image(write_pgm(tmp_path / "b.pgm", twelve_bit, maxval=4095))
    np.testing.assert_array_equal(image.pixels, PIXELS)


def test_png_8_and_16_bit(tmp_path):
    (tmp_path / "a.png").write_bytes(encoded(".png", PIXELS))
    (tmp_path / "b.png").write_bytes(encoded(".png", PIXELS_16))
    eight, sixteen = load_image(tmp_path / "a.png"), load_image(tmp_path / "b.png")
    assert (eight.image_format, eight.source_bits) == ("png", 8)
    assert (sixteen.image_format, sixteen.source_bits) == ("png", 16)
    np.testing.assert_array_equal(eight.pixels, PIXELS)
    np.testing.assert_array_equal(sixteen.pixels, PIXELS)
    assert sixteen.warnings == ()


@pytest.mark.parametrize("bits", [10, 12, 14])
@pytest.mark.parametrize("suffix", [".png", ".tiff"])
def test_high_bit_data_in_a_16_bit_container_is_scaled_with_a_warning(tmp_path, bits, suffix):
    """10/12/14-bit values stored unscaled in a 16-bit file (a common detector export) map
    from 0..2**bits-1, not from 0..65535 (which made them near-black), and say so."""
    top = 2**bits - 1
    high_bit = np.round(PIXELS.astype(np.float64) * top / 255).astype(np.uint16)
    (tmp_path / f"high{suffix}").write_bytes(encoded(suffix, high_bit))
    image = load_image(tmp_path / f"high{suffix}")
    assert np.array_equal(image.pixels, PIXELS)  # back to the 8-bit original exactly
    assert image.source_bits == bits
    assert any(f"fit in {bits} bits" in warning for warning in image.warnings), image.warnings


def test_16_bit_data_using_the_top_bits_keeps_the_full_range(tmp_path):
    full = PIXELS.astype(np.uint16) * 257  # 0..65535
    (tmp_path / "full.png").write_bytes(encoded(".png", full))
    image = load_image(tmp_path / "full.png")
    assert np.array_equal(image.pixels, PIXELS) and image.warnings == ()


def test_jpeg(tmp_path):
    (tmp_path / "a.jpg").write_bytes(encoded(".jpg", PIXELS))
    image = load_image(tmp_path / "a.jpg")
    assert image.image_format == "jpeg" and image.pixels.shape == PIXELS.shape
    assert np.abs(image.pixels.astype(int) - PIXELS).mean() < 3  # lossy, but close


@pytest.mark.parametrize("values", [PIXELS, PIXELS_16], ids=["8-bit", "16-bit"])
def test_tiff(tmp_path, values):
    (tmp_path / "a.tif").write_bytes(encoded(".tiff", values))
    image = load_image(tmp_path / "a.tif")
    assert image.image_format == "tiff"
    np.testing.assert_array_equal(image.pixels, PIXELS)


def test_bmp(tmp_path):
    (tmp_path / "a.bmp").write_bytes(encoded(".bmp", PIXELS))
    image = load_image(tmp_path / "a.bmp")
    assert image.image_format == "bmp"
    np.testing.assert_array_equal(image.pixels, PIXELS)


def test_colour_image_becomes_gray_with_a_warning(tmp_path):
    colour = np.dstack([PIXELS, PIXELS // 2, 255 - PIXELS])
    (tmp_path / "c.png").write_bytes(encoded(".png", colour))
    image = load_image(tmp_path / "c.png")
    np.testing.assert_array_equal(image.pixels, cv2.cvtColor(colour, cv2.COLOR_BGR2GRAY))
    assert any("colour image converted to gray" in warning for warning in image.warnings)


def test_gray_stored_as_rgb_is_taken_without_warning(tmp_path):
    (tmp_path / "g.png").write_bytes(encoded(".png", np.dstack([PIXELS] * 3)))
    image = load_image(tmp_path / "g.png")
    np.testing.assert_array_equal(image.pixels, PIXELS)
    assert image.warnings == ()


def test_arrays_follow_the_same_rules():
    np.testing.assert_array_equal(image_from_array(PIXELS).pixels, PIXELS)
    np.testing.assert_array_equal(image_from_array(PIXELS_16).pixels, PIXELS)
    with pytest.raises(InputError) as caught:
        image_from_array(PIXELS.astype(np.float32))
    assert caught.value.code is ErrorCode.UNSUPPORTED_FORMAT
    with pytest.raises(InputError) as caught:
        image_from_array(np.zeros((4, 4), np.uint8))
    assert caught.value.code is ErrorCode.TOO_SMALL


def test_extension_disagreeing_with_content_decodes_by_content_and_warns(tmp_path):
    (tmp_path / "really_png.pgm").write_bytes(encoded(".png", PIXELS))
    image = load_image(tmp_path / "really_png.pgm")
    assert image.image_format == "png"
    np.testing.assert_array_equal(image.pixels, PIXELS)
    assert any("ends in .pgm" in warning for warning in image.warnings)


# --- DICOM -----------------------------------------------------------------------------

pydicom = pytest.importorskip("pydicom")


def test_dicom_monochrome2_and_inverted_monochrome1_equal_the_pgm(tmp_path):
    pgm = load_image(write_pgm(tmp_path / "a.pgm", PIXELS_16, maxval=65535)).pixels
    mono2 = load_image(write_dicom(tmp_path / "m2.dcm", PIXELS_16))
    mono1 = load_image(write_dicom(tmp_path / "m1.dcm", 65535 - PIXELS_16, "MONOCHROME1"))
    assert mono2.image_format == "dicom" and mono2.source_bits == 16
    np.testing.assert_array_equal(mono2.pixels, pgm)
    np.testing.assert_array_equal(mono1.pixels, pgm)


def test_dicom_8_bit_monochrome2(tmp_path):
    image = load_image(write_dicom(tmp_path / "a.dcm", PIXELS))
    np.testing.assert_array_equal(image.pixels, PIXELS)


def test_dicom_window_applies_in_rescaled_units(tmp_path):
    # Stored 12-bit values; rescale to output units 2 * v - 1000. The window spans exactly
    # the output range of PIXELS_12, so windowed pixels must reproduce PIXELS.
    stored = (PIXELS.astype(np.uint16) * 16).astype(np.uint16)  # 0..4080
    slope, intercept = 2.0, -1000.0
    low, high = intercept, 255 * 16 * slope + intercept
    # LINEAR window (PS3.3 C.11.2.1.2): centre - 0.5 and width - 1 span low..high.
    window = ((low + high) / 2 + 0.5, high - low + 1)
    path = write_dicom(
        tmp_path / "w.dcm", stored, bits_stored=12, rescale=(slope, intercept), window=window
    )
    image = load_image(path)
    # Output range of the window is the rescaled 12-bit range: -1000 .. 4095 * 2 - 1000.
    out_low, out_high = intercept, 4095 * slope + intercept
    expected_units = (PIXELS.astype(np.float64) / 255) * (out_high - out_low) + out_low
    expected = np.rint((expected_units - out_low) * 255 / (out_high - out_low))
    np.testing.assert_array_equal(image.pixels, expected.astype(np.uint8))


def test_dicom_window_outside_clips_and_rescale_is_not_ignored(tmp_path):
    stored = np.full((64, 64), 1000, np.uint16)
    stored[:, 32:] = 3000
    # With rescale 1, -0 the window 2000 +- 500 would clip to black and white...
    plain = load_image(write_dicom(tmp_path / "p.dcm", stored, bits_stored=12, window=(2000, 1000)))
    assert plain.pixels[0, 0] == 0 and plain.pixels[0, 63] == 255
    # ...but rescale -1000 moves 3000 to 2000: the window centre, mid-gray.
    shifted = write_dicom(
        tmp_path / "s.dcm", stored, bits_stored=12, rescale=(1.0, -1000.0), window=(2000, 1000)
    )
    assert 120 <= load_image(shifted).pixels[0, 63] <= 135


def test_dicom_without_window_uses_bits_stored_range(tmp_path):
    stored = PIXELS.astype(np.uint16) * 16  # 12-bit data
    image = load_image(write_dicom(tmp_path / "b.dcm", stored, bits_stored=12))
    expected = np.rint(stored.astype(np.float64) * 255 / 4095).astype(np.uint8)
    np.testing.assert_array_equal(image.pixels, expected)


def test_dicom_voi_lut_sequence_is_applied(tmp_path):
    from pydicom.dataset import Dataset
    from pydicom.sequence import Sequence

    stored = (PIXELS.astype(np.uint16) * 16).astype(np.uint16)
    item = Dataset()
    lut = (4095 - np.arange(4096)) * 16  # an inverting LUT with 16-bit output
    item.add_new("LUTDescriptor", "US", [4096, 0, 16])
    item.add_new("LUTData", "US", [int(v) for v in lut])
    path = write_dicom(
        tmp_path / "lut.dcm", stored, bits_stored=12, extra={"VOILUTSequence": Sequence([item])}
    )
    image = load_image(path)
    expected = np.rint((4095 - stored.astype(np.float64)) * 16 * 255 / 65535).astype(np.uint8)
    np.testing.assert_array_equal(image.pixels, expected)


@pytest.mark.parametrize("syntax", ["RLELossless", "JPEG2000Lossless"])
def test_compressed_dicom_decodes_like_uncompressed(tmp_path, syntax):
    import pydicom.uid

    path = write_dicom(tmp_path / "raw.dcm", PIXELS_16)
    dataset = pydicom.dcmread(path)
    try:
        dataset.compress(getattr(pydicom.uid, syntax))
    except RuntimeError as error:  # no encoder plugin installed: nothing to decode
        pytest.skip(f"cannot encode {syntax} here: {error}")
    dataset.save_as(tmp_path / "compressed.dcm", enforce_file_format=True)
    np.testing.assert_array_equal(load_image(tmp_path / "compressed.dcm").pixels, PIXELS)


def test_dicom_with_damaged_compressed_pixels_is_corrupt(tmp_path):
    from pydicom.encaps import encapsulate
    from pydicom.uid import RLELossless

    path = write_dicom(tmp_path / "bad.dcm", PIXELS)
    dataset = pydicom.dcmread(path)
    dataset.file_meta.TransferSyntaxUID = RLELossless  # decoded by pydicom itself
    dataset.PixelData = encapsulate([b"\x00" * 100])
    dataset["PixelData"].VR = "OB"
    dataset.save_as(path, enforce_file_format=True)
    expect_error(ErrorCode.CORRUPT, path)


def test_dicom_in_a_video_transfer_syntax_is_unsupported(tmp_path):
    from pydicom.encaps import encapsulate
    from pydicom.uid import MPEG2MPML

    path = write_dicom(tmp_path / "video.dcm", PIXELS)
    dataset = pydicom.dcmread(path)
    dataset.file_meta.TransferSyntaxUID = MPEG2MPML  # pydicom has no decoder for it
    dataset.PixelData = encapsulate([b"\x00" * 100])
    dataset["PixelData"].VR = "OB"
    dataset.save_as(path, enforce_file_format=True)
    error = expect_error(ErrorCode.DICOM_UNSUPPORTED, path)
    assert MPEG2MPML in error.message


def test_dicom_multiframe_is_rejected(tmp_path):
    path = write_dicom(tmp_path / "m.dcm", np.stack([PIXELS, PIXELS]), frames=2)
    error = expect_error(ErrorCode.DICOM_MULTIFRAME, path)
    assert "2 frames" in error.message


def test_dicom_without_pixel_data_is_rejected(tmp_path):
    error = expect_error(
        ErrorCode.DICOM_NO_PIXELS, write_dicom(tmp_path / "n.dcm", PIXELS, with_pixels=False)
    )
    assert "Pixel Data" in error.message


def test_dicom_with_short_pixel_data_is_truncated(tmp_path):
    path = write_dicom(tmp_path / "t.dcm", PIXELS_16)
    dataset = pydicom.dcmread(path)
    dataset.PixelData = dataset.PixelData[: len(dataset.PixelData) // 2]
    dataset.save_as(path, enforce_file_format=True)
    expect_error(ErrorCode.TRUNCATED, path)


def test_dicom_file_cut_inside_pixel_data_is_truncated(tmp_path):
    path = write_dicom(tmp_path / "cut.dcm", PIXELS_16)
    path.write_bytes(path.read_bytes()[:-5000])  # cut inside the pixel data
    error = expect_error(ErrorCode.TRUNCATED, path)
    assert "needs 15360" in error.message


def test_dicom_palette_colour_is_unsupported(tmp_path):
    path = write_dicom(tmp_path / "p.dcm", PIXELS, photometric="PALETTE COLOR")
    expect_error(ErrorCode.DICOM_UNSUPPORTED, path)


def test_dicom_huge_rows_columns_are_refused_before_decoding(tmp_path):
    path = write_dicom(tmp_path / "h.dcm", PIXELS)
    dataset = pydicom.dcmread(path)
    dataset.Rows = dataset.Columns = 60000
    dataset.save_as(path, enforce_file_format=True)
    expect_error(ErrorCode.TOO_LARGE, path)


# --- bad inputs ------------------------------------------------------------------------


def test_missing_file(tmp_path):
    expect_error(ErrorCode.NOT_FOUND, tmp_path / "absent.png")


def test_zero_byte_file(tmp_path):
    (tmp_path / "empty.png").write_bytes(b"")
    expect_error(ErrorCode.EMPTY_FILE, tmp_path / "empty.png")


def test_text_file_is_not_an_image(tmp_path):
    (tmp_path / "notes.png").write_text("patient notes, not pixels\n")
    expect_error(ErrorCode.NOT_AN_IMAGE, tmp_path / "notes.png")


def test_gif_is_unsupported(tmp_path):
    (tmp_path / "a.gif").write_bytes(b"GIF89a" + b"\x00" * 64)
    expect_error(ErrorCode.UNSUPPORTED_FORMAT, tmp_path / "a.gif")


@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("a.pgm", b"P5\n80 96\n255\n" + PIXELS.tobytes()[:3000]),
        ("a.png", encoded(".png", PIXELS)[:-30]),
        ("a.jpg", encoded(".jpg", PIXELS)[:600]),
        ("a.tif", encoded(".tiff", PIXELS)[:2000]),
        ("a.bmp", encoded(".bmp", PIXELS)[:4000]),
        ("header.pgm", b"P5\n80 9"),
    ],
)
def test_truncated_files(tmp_path, name, content):
    (tmp_path / name).write_bytes(content)
    expect_error(ErrorCode.TRUNCATED, tmp_path / name)


def test_one_by_one_image_is_too_small(tmp_path):
    (tmp_path / "dot.png").write_bytes(encoded(".png", np.zeros((1, 1), np.uint8)))
    error = expect_error(ErrorCode.TOO_SMALL, tmp_path / "dot.png")
    assert str(MIN_SIDE) in error.message


def _png_claiming(width: int, height: int) -> bytes:
    """A PNG whose IHDR announces ``width`` x ``height`` but holds almost no data."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    chunk = lambda kind, body: (  # noqa: E731
        struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
    )
    idat = zlib.compress(b"\x00" * 64)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("bomb.png", _png_claiming(100_000, 100_000)),
        ("bomb.pgm", b"P5\n100000 100000\n255\n" + b"\x00" * 1024),
    ],
)
def test_huge_dimensions_are_refused_from_the_header(tmp_path, name, content):
    (tmp_path / name).write_bytes(content)
    error = expect_error(ErrorCode.TOO_LARGE, tmp_path / name)
    assert "100000 x 100000" in error.message


def test_pixel_limit_is_adjustable(tmp_path):
    path = write_pgm(tmp_path / "a.pgm", PIXELS)
    with pytest.raises(InputError) as caught:
        load_image(path, max_pixels=1000)
    assert caught.value.code is ErrorCode.TOO_LARGE


def test_unreadable_file(tmp_path, monkeypatch):
    path = write_pgm(tmp_path / "locked.pgm", PIXELS)

    def refuse(self):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(Path, "read_bytes", refuse)
    error = expect_error(ErrorCode.UNREADABLE, path)
    assert "Permission denied" in error.message


def test_folder_given_as_file(tmp_path):
    expect_error(ErrorCode.UNREADABLE, tmp_path)


def test_garbage_after_a_valid_header_is_corrupt(tmp_path):
    content = encoded(".png", PIXELS)
    damaged = content[:40] + bytes(len(content) - 52) + content[-12:]  # zeroed IDAT data
    with pytest.raises(InputError) as caught:
        decode_image_bytes(damaged, ".png")
    assert caught.value.code is ErrorCode.CORRUPT
