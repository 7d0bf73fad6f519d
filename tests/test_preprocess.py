"""The preprocessing contract: the seed's cv2.resize INTER_LINEAR to 128, float 0..255, NHWC."""

import cv2
import numpy as np
import pytest

from mammo_edge.images.preprocess import (
    SEED_PREPROCESS,
    PreprocessConfig,
    to_model_batch,
    to_model_input,
)


def test_seed_recipe_exactly():
    image = np.random.default_rng(0).integers(0, 256, (1024, 1024)).astype(np.uint8)
    model_input = to_model_input(image, SEED_PREPROCESS)
    expected = cv2.resize(image, (128, 128), interpolation=cv2.INTER_LINEAR).astype(np.float32)
    assert model_input.shape == (128, 128, 1) and model_input.dtype == np.float32
    np.testing.assert_array_equal(model_input[:, :, 0], expected)
    assert model_input.max() <= 255 and model_input.max() > 1  # not rescaled to 0..1


def test_scale_offset_and_size_come_from_config():
    image = np.full((40, 30), 200, np.uint8)
    config = PreprocessConfig(input_size=16, pixel_scale=1 / 255, pixel_offset=-0.5)
    model_input = to_model_input(image, config)
    assert model_input.shape == (16, 16, 1)
    np.testing.assert_allclose(model_input, 200 / 255 - 0.5, rtol=1e-6)


def test_batch_stacks_in_order():
    images = [np.full((50, 50), value, np.uint8) for value in (0, 100, 255)]
    batch = to_model_batch(images, SEED_PREPROCESS)
    assert batch.shape == (3, 128, 128, 1)
    assert batch[:, 0, 0, 0].tolist() == [0.0, 100.0, 255.0]


@pytest.mark.parametrize(
    ("image", "message"),
    [
        (np.zeros((8, 8, 3), np.uint8), "2-D grayscale"),
        (np.zeros((8, 8), np.uint16), "uint8"),
        ([[0, 1]], "numpy array"),
    ],
)
def test_wrong_input_is_refused(image, message):
    with pytest.raises((ValueError, TypeError), match=message):
        to_model_input(image, SEED_PREPROCESS)


def test_bad_config_is_refused():
    with pytest.raises(ValueError, match="interpolation"):
        PreprocessConfig(interpolation="bicubic-ish")
    with pytest.raises(ValueError, match="NHWC"):
        PreprocessConfig(layout="NCHW")
