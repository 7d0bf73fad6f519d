"""mammo_edge.images.dicom: the grayscale pipeline as a look-up table, in bounded memory."""

from __future__ import annotations

import io
import tracemalloc

import numpy as np
import pytest
from conftest import write_dicom

pydicom = pytest.importorskip("pydicom")

from mammo_edge.images import dicom  # noqa: E402

# A 4.5k x 2.8k detector frame, 12 bits in 16, as full-field digital mammograms come.
LARGE_ROWS, LARGE_COLUMNS = 4500, 2800


def _frame_by_frame(data: bytes) -> np.ndarray:
    """The 8-bit image computed on the whole frame in float64, as before the table."""
    dataset = pydicom.dcmread(io.BytesIO(data))
    values, low, high = dicom._grayscale_pipeline(dataset.pixel_array, dataset, [])
    pixels = dicom._to_uint8(values, low, high)
    return 255 - pixels if dataset.PhotometricInterpretation == "MONOCHROME1" else pixels


@pytest.mark.parametrize(
    "options",
    [
        {"bits_stored": 12, "window": (2000, 3000)},
        {"bits_stored": 12, "rescale": (0.5, -100.0), "window": (900, 1500)},
        {"bits_stored": 12, "photometric": "MONOCHROME1", "rescale": (2.0, 7.0)},
        {"bits_stored": 16},
        {"bits_stored": 12, "window": (2000, 3000), "extra": {"VOILUTFunction": "SIGMOID"}},
        {"signed": True, "bits_stored": 12, "rescale": (1.0, 1024.0), "window": (500, 2500)},
        {"eight_bit": True, "window": (128, 200)},
    ],
)
def test_the_table_gives_the_pixels_of_the_frame_by_frame_pipeline(tmp_path, options):
    options = dict(options)
    rng = np.random.default_rng(3)
    if options.pop("signed", False):
        stored = rng.integers(-2048, 2048, (60, 50)).astype(np.int16)
        extra = {"PixelRepresentation": 1, **options.pop("extra", {})}
    elif options.pop("eight_bit", False):
        stored = rng.integers(0, 256, (60, 50)).astype(np.uint8)
        extra = options.pop("extra", {})
    else:
        high = 2 ** options["bits_stored"]
        stored = rng.integers(0, high, (60, 50)).astype(np.uint16)
        extra = options.pop("extra", {})
    path = write_dicom(tmp_path / "frame.dcm", stored, extra=extra, **options)
    data = path.read_bytes()
    decoded = dicom.decode_dicom(data, lambda width, height: None)
    np.testing.assert_array_equal(decoded.pixels, _frame_by_frame(data))


def test_a_large_16_bit_frame_decodes_without_float_copies(tmp_path):
    rng = np.random.default_rng(0)
    stored = rng.integers(0, 4096, (LARGE_ROWS, LARGE_COLUMNS)).astype(np.uint16)
    path = write_dicom(
        tmp_path / "large.dcm", stored, bits_stored=12, rescale=(1.0, -10.0), window=(2000, 3000)
    )
    data = path.read_bytes()
    del stored
    tracemalloc.start()
    try:
        decoded = dicom.decode_dicom(data, lambda width, height: None)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert decoded.pixels.shape == (LARGE_ROWS, LARGE_COLUMNS)
    assert decoded.pixels.dtype == np.uint8
    # The parsed Pixel Data (2 bytes a pixel), the decoded stored frame (2) and the 8-bit
    # image (1) must fit; one float64 copy of the frame (8 bytes a pixel) must not.
    assert peak < 7 * LARGE_ROWS * LARGE_COLUMNS


def test_a_large_dicom_is_read_and_preprocessed_in_bounded_memory(tmp_path):
    from conftest import synthetic_mammogram
    from test_preprocess_breast import BREAST as lite0_contract

    from mammo_edge.images.pipeline import load_input

    breast = synthetic_mammogram(LARGE_ROWS, LARGE_COLUMNS, seed=1)
    path = write_dicom(
        tmp_path / "large.dcm", breast.astype(np.uint16) * 16, bits_stored=12, window=(2048, 4096)
    )
    del breast
    tracemalloc.start()
    try:
        item = load_input(path, lite0_contract)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert item.ok, item.error_message
    assert item.model_input.shape == (512, 256, 1)
    # File bytes (2 a pixel), Pixel Data (2), stored frame (2), 8-bit image (1), mask and
    # crop (about 1 each): no room for a float64 frame (8) or full-size masked copies.
    assert peak < 12 * LARGE_ROWS * LARGE_COLUMNS
