"""A bright or textured border around a mammogram changes neither its score nor its peak.

Scanners and exporters frame images; the frame must be neither breast (it would move the
crop and hold the heatmap's peak) nor a reason to refuse the image.
"""

from __future__ import annotations

import numpy as np
import pytest
from conftest import EXAMPLES_DIR

from mammo_edge.images.decode import load_image
from mammo_edge.images.preprocess import breast_mask


def framed(image: np.ndarray, kind: str, width: int) -> np.ndarray:
    height, columns = image.shape
    rng = np.random.default_rng(width)
    out = np.empty((height + 2 * width, columns + 2 * width), dtype=np.uint8)
    out[:] = 255 if kind == "bright" else rng.integers(60, 256, out.shape)
    out[width:-width, width:-width] = image
    return out


@pytest.mark.parametrize("kind", ["bright", "textured"])
@pytest.mark.parametrize("width", [8, 64])
def test_the_frame_is_never_breast(kind, width):
    image = load_image(EXAMPLES_DIR / "mdb005.pgm").pixels
    mask = breast_mask(framed(image, kind, width))
    assert not mask[:width].any() and not mask[:, -width:].any()
    assert np.array_equal(mask[width:-width, width:-width], breast_mask(image))


@pytest.mark.parametrize("kind", ["bright", "textured"])
def test_score_and_heatmap_peak_ignore_a_frame(kind):
    from mammo_edge import Predictor
    from mammo_edge.explain.explainer import Explainer

    width = 48
    image = load_image(EXAMPLES_DIR / "mdb005.pgm").pixels
    explainer = Explainer(Predictor(threads=1, group_by="none"))
    plain, boxed = explainer.iter_explain([image, framed(image, kind, width)])
    assert boxed.record.ok, boxed.record.error_message
    assert boxed.record.probability == pytest.approx(plain.record.probability, abs=1e-6)
    assert boxed.peak.x == pytest.approx(plain.peak.x + width, abs=1e-3)
    assert boxed.peak.y == pytest.approx(plain.peak.y + width, abs=1e-3)


def test_a_breast_on_one_side_is_not_a_frame():
    # Three bright sides make a frame; the breast alone touches at most one.
    image = load_image(EXAMPLES_DIR / "mdb003.pgm").pixels.copy()
    image[:, :4] = 255  # a bright strip on one side only
    mask = breast_mask(image)
    assert mask.sum() > 0.1 * mask.size
