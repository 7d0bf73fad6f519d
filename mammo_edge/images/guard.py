"""Is this a mammogram? The runtime's one check, run for every model before it scores.

A CNN asked about a black frame or a page of text still answers with a probability (the
seed models call both "abnormal", 0.97 and 0.99), so the runtime, not one model's
preprocessing, refuses images that cannot be mammograms. Every decoded input passes
:func:`check_mammogram` before any model sees it; a refusal is a ``NO_BREAST_FOUND``
record. The rules, all on the 8-bit image (docs/runtime.md):

* **colour**: a photograph is colourful; a mammogram, even saved as RGB, is gray. An image
  whose colourfulness (Hasler and Suesstrunk 2003, on a 256-pixel copy) exceeds
  :data:`MAX_COLOURFULNESS` is refused;
* **a breast on a dark background**: the breast segmentation of
  :func:`mammo_edge.images.breast.breast_mask` must find one bright region with contrast,
  covering 3% to 98% of the frame. A blank or uniform frame, a page of text (bright
  background), white text on black, or a small crop fails it.

Every MIAS image passes (tests/test_guard.py checks the 6 in ``examples/`` and, with the
archive, all 258).
"""

from __future__ import annotations

import cv2
import numpy as np

from mammo_edge.errors import ErrorCode, InputError
from mammo_edge.images.breast import NoBreastFoundError, breast_mask

#: Colourfulness above which an image is taken for a photograph. On Hasler and
#: Suesstrunk's scale 33 is "moderately colourful"; a gray image is 0 and a mammogram
#: exported through a tinted viewer stays well below.
MAX_COLOURFULNESS = 33.0
#: Side of the copy colourfulness is measured on (speed; the measure is a mean).
_COLOUR_SIDE = 256


def colourfulness(colour: np.ndarray) -> float:
    """Hasler and Suesstrunk's colourfulness of a ``(H, W, 3)`` BGR image (0 for gray).

    ``sqrt(std(rg)^2 + std(yb)^2) + 0.3 * sqrt(mean(rg)^2 + mean(yb)^2)`` with
    ``rg = R - G`` and ``yb = (R + G) / 2 - B``, on the 0..255 scale (16-bit input is
    scaled down first).
    """
    height, width = colour.shape[:2]
    shrink = min(1.0, _COLOUR_SIDE / max(height, width))
    small = cv2.resize(
        np.ascontiguousarray(colour[:, :, :3]),
        (max(1, round(width * shrink)), max(1, round(height * shrink))),
        interpolation=cv2.INTER_AREA,
    ).astype(np.float64)
    if colour.dtype == np.uint16:
        small *= 255.0 / 65535.0
    blue, green, red = small[:, :, 0], small[:, :, 1], small[:, :, 2]
    rg = red - green
    yb = 0.5 * (red + green) - blue
    spread = float(np.hypot(rg.std(), yb.std()))
    mean = float(np.hypot(rg.mean(), yb.mean()))
    return spread + 0.3 * mean


def check_mammogram(pixels: np.ndarray, colour_measure: float = 0.0) -> np.ndarray:
    """Refuse an image that cannot be a mammogram, before any model runs.

    Args:
        pixels: the decoded ``(H, W)`` uint8 image (``DecodedImage.pixels``).
        colour_measure: its :func:`colourfulness` before conversion to gray
            (``DecodedImage.colourfulness``; 0 for gray images).

    Returns:
        The breast mask it found (:func:`~mammo_edge.images.breast.breast_mask`), so
        preprocessing does not segment the same image again.

    Raises:
        InputError: ``NO_BREAST_FOUND``, saying which rule failed.
    """
    if colour_measure > MAX_COLOURFULNESS:
        raise InputError(
            ErrorCode.NO_BREAST_FOUND,
            f"not a mammogram: a colour picture (colourfulness {colour_measure:.0f}, a "
            f"mammogram is gray; the limit is {MAX_COLOURFULNESS:.0f}). Pass the mammogram "
            "as the modality exports it",
        )
    try:
        return breast_mask(pixels)
    except NoBreastFoundError as error:
        raise InputError(
            ErrorCode.NO_BREAST_FOUND,
            f"not a mammogram: {error}. Pass the whole mammogram as the modality presents "
            "it (breast bright on a dark background)",
        ) from error
