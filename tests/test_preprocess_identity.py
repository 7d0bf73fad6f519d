"""The faster preprocessing gives the same bytes as the plain reference it replaced.

``tests/preprocess_reference.py`` is the breast-aware preprocessing before it was made
faster, written plainly; the runtime's mask, chest-wall side, model input and geometry
must equal it exactly (not approximately) on synthetic images that reach every branch
(frames, film labels, flips, crops past each edge, odd sizes) and, with the archive, on
all 258 MIAS images through the runtime's own path (guard mask reused by ``prepare``).
"""

from __future__ import annotations

import tarfile
from pathlib import Path

import cv2
import numpy as np
import preprocess_reference as reference
import pytest

from mammo_edge.images.breast import _upscale_nearest
from mammo_edge.images.decode import decode_image_bytes
from mammo_edge.images.guard import check_mammogram
from mammo_edge.images.preprocess import (
    SEED_PREPROCESS,
    NoBreastFoundError,
    PreprocessConfig,
    breast_mask,
    chest_wall_side,
    prepare,
)

MIAS_ARCHIVE = Path(__file__).resolve().parent.parent.parent / "shared" / "mias" / "all-mias.tar.gz"

#: The contract lite0-pair (the default model) carries in its metadata.
PAIR = PreprocessConfig(
    input_size=512,
    interpolation="area",
    pixel_scale=1 / 127.5,
    pixel_offset=-1.0,
    input_height=512,
    input_width=256,
    breast_crop=True,
    orientation="chest_wall_left",
)
CONFIGS = {
    "pair": PAIR,
    # A wide input: boxes grow towards the nipple, past the (flipped) image's edge.
    "wide-linear": PreprocessConfig(
        input_height=96, input_width=192, breast_crop=True, orientation="chest_wall_left"
    ),
    # A tall input: boxes grow up and down past the image; without orientation a
    # right-anchored narrow breast grows leftwards, past the left edge.
    "unoriented-cubic": PreprocessConfig(
        input_height=160, input_width=64, interpolation="cubic", breast_crop=True
    ),
    "orient-only-nearest": PreprocessConfig(
        input_size=64, interpolation="nearest", orientation="chest_wall_left"
    ),
    "seed": SEED_PREPROCESS,
}


def synthetic(
    size: tuple[int, int],
    chest_wall: str,
    seed: int,
    frame: str | None = None,
    label: bool = False,
    reach: float = 0.7,
) -> np.ndarray:
    """A textured half-ellipse breast anchored to one side, optionally framed and labelled."""
    height, width = size
    rng = np.random.default_rng(seed)
    image = rng.integers(0, 13, size).astype(np.uint8)  # film noise
    centre_x = 0 if chest_wall == "left" else width - 1
    ellipse = np.zeros(size, np.uint8)
    axes = (int(width * reach), int(height * 0.42))
    cv2.ellipse(ellipse, (centre_x, int(height * 0.52)), axes, 0, 0, 360, 1, -1)
    tissue = rng.integers(40, 200, size).astype(np.uint8)
    image = np.where(ellipse == 1, cv2.GaussianBlur(tissue, (5, 5), 0), image)
    cv2.circle(
        image, (width // 3 if chest_wall == "left" else 2 * width // 3, height // 2), 9, 250, -1
    )
    if label:
        image[height // 20 : height // 8, width - width // 6 : width - width // 20] = 255
    if frame is not None:
        band = max(3, min(size) // 40)
        border = 255 if frame == "bright" else rng.integers(60, 256, (height, width))
        framed = np.empty((height, width), np.uint8)
        framed[:] = border
        framed[band:-band, band:-band] = image[band:-band, band:-band]
        image = framed
    return image


SYNTHETIC = {
    "left-1024": synthetic((1024, 1024), "left", 1),
    "right-1024": synthetic((1024, 1024), "right", 2),
    "left-odd": synthetic((517, 333), "left", 3),
    "right-odd-label": synthetic((601, 457), "right", 4, label=True),
    "right-wide": synthetic((400, 900), "right", 5, reach=0.9),
    "left-flat-reach": synthetic((300, 700), "left", 6, reach=1.2),
    "left-bright-frame": synthetic((640, 512), "left", 7, frame="bright"),
    "right-textured-frame": synthetic((700, 560), "right", 8, frame="textured"),
    "right-tall-narrow": synthetic((900, 300), "right", 9, reach=0.5),
}
NO_BREAST = {
    "blank": np.zeros((100, 100), np.uint8),
    "uniform": np.full((300, 300), 128, np.uint8),
    "white": np.full((300, 300), 255, np.uint8),
    "speck": np.pad(np.full((6, 6), 200, np.uint8), 147),
}


def assert_same_prepared(fast, slow) -> None:
    assert fast.model_input.dtype == slow.model_input.dtype == np.float32
    assert fast.model_input.shape == slow.model_input.shape
    assert fast.model_input.tobytes() == slow.model_input.tobytes()
    assert fast.geometry == slow.geometry
    assert fast.chest_wall_side == slow.chest_wall_side


@pytest.mark.parametrize("name", sorted(SYNTHETIC))
def test_mask_and_side_equal_the_reference(name):
    image = SYNTHETIC[name]
    mask = breast_mask(image)
    expected = reference.breast_mask(image)
    np.testing.assert_array_equal(mask, expected)
    assert mask.dtype == bool
    assert chest_wall_side(mask) == reference.chest_wall_side(expected)
    assert chest_wall_side(mask[:, ::-1]) == reference.chest_wall_side(expected[:, ::-1])


@pytest.mark.parametrize("config_name", sorted(CONFIGS))
@pytest.mark.parametrize("name", sorted(SYNTHETIC))
def test_prepared_input_equals_the_reference(name, config_name):
    image, config = SYNTHETIC[name], CONFIGS[config_name]
    assert_same_prepared(prepare(image, config), reference.prepare(image, config))


@pytest.mark.parametrize("chest_wall", ["left", "right"])
@pytest.mark.parametrize("name", ["left-odd", "right-odd-label", "left-flat-reach"])
def test_a_given_chest_wall_and_mask_equal_the_reference(name, chest_wall):
    image = SYNTHETIC[name]
    mask = breast_mask(image)
    for config in (PAIR, CONFIGS["unoriented-cubic"], CONFIGS["wide-linear"]):
        fast = prepare(image, config, chest_wall=chest_wall, mask=mask)
        assert_same_prepared(fast, reference.prepare(image, config, chest_wall=chest_wall))


@pytest.mark.parametrize(
    ("small", "full"),
    [
        ((256, 256), (1024, 1024)),
        ((256, 163), (1024, 651)),
        ((208, 256), (3328, 4096)),  # a DICOM detector's size
        ((256, 159), (4500, 2800)),
        ((137, 256), (333, 700)),
        ((1, 3), (40, 35)),
        ((64, 64), (64, 64)),
    ],
)
def test_the_mask_upscale_is_opencvs_nearest_neighbour(small, full):
    mask = (np.random.default_rng(sum(full)).random(small) > 0.5).astype(np.uint8)
    height, width = full
    expected = cv2.resize(mask, (width, height), interpolation=cv2.INTER_NEAREST)
    np.testing.assert_array_equal(_upscale_nearest(mask, width, height), expected)


@pytest.mark.parametrize("name", sorted(NO_BREAST))
def test_no_breast_fails_with_the_reference_message(name):
    with pytest.raises(NoBreastFoundError) as expected:
        reference.breast_mask(NO_BREAST[name])
    with pytest.raises(NoBreastFoundError, match="^" + str(expected.value)[:20]):
        breast_mask(NO_BREAST[name])


@pytest.mark.mias
def test_every_mias_image_prepares_as_the_reference():
    if not MIAS_ARCHIVE.is_file():
        pytest.skip(f"needs the MIAS archive at {MIAS_ARCHIVE}")
    checked = 0
    with tarfile.open(MIAS_ARCHIVE) as archive:
        for member in archive:
            if not member.name.endswith(".pgm"):
                continue
            pixels = decode_image_bytes(archive.extractfile(member).read(), ".pgm").pixels
            mask = check_mammogram(pixels)  # as pipeline.load_input: the guard's mask
            np.testing.assert_array_equal(mask, reference.breast_mask(pixels), member.name)
            fast = prepare(pixels, PAIR, mask=mask)
            assert_same_prepared(fast, reference.prepare(pixels, PAIR))
            checked += 1
    assert checked == 258
