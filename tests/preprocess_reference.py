"""The breast-aware preprocessing before it was made faster, written plainly.

The same arithmetic as ``mammo_edge/images/preprocess.py`` at commit 73c78e0, without its speed
tricks (whole-frame numpy masks, means and copies): the reference that
tests/test_preprocess_identity.py holds the runtime's ``breast_mask`` and ``prepare`` to,
byte for byte. Copied, not imported, so that a later change to ``mammo_edge`` cannot move
the reference with it. Only what moves pixels is here; argument checks live in the runtime.
"""

from __future__ import annotations

import cv2
import numpy as np

from mammo_edge.images.preprocess import (
    INTERPOLATIONS,
    Geometry,
    NoBreastFoundError,
    PreparedImage,
    PreprocessConfig,
)

_MASK_SIDE = 256
_BREAST_LEVEL = 20
_OPENING_FRACTION = 31 / 1024
_FRAME_LINE_FRACTION = 0.95
_MIN_BREAST_FRACTION = 0.03
_MAX_BREAST_FRACTION = 0.98
_MIN_BREAST_CONTRAST = 2.0


def breast_mask(image: np.ndarray) -> np.ndarray:
    top, bottom, left, right = frame_thickness(image)
    if top or bottom or left or right:
        height, width = image.shape
        mask = np.zeros(image.shape, dtype=bool)
        mask[top : height - bottom, left : width - right] = _segment(
            image[top : height - bottom, left : width - right]
        )
        return mask
    return _segment(image)


def _segment(image: np.ndarray) -> np.ndarray:
    height, width = image.shape
    shrink = _MASK_SIDE / max(height, width)
    small = cv2.resize(
        image,
        (max(1, round(width * shrink)), max(1, round(height * shrink))),
        interpolation=cv2.INTER_AREA,
    )
    candidate = (small > _BREAST_LEVEL).astype(np.uint8)
    diameter = max(3, round(_OPENING_FRACTION * _MASK_SIDE) | 1)
    disc = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (diameter, diameter))
    opened = cv2.morphologyEx(candidate, cv2.MORPH_OPEN, disc)
    count, labels, stats, _ = cv2.connectedComponentsWithStats(opened, connectivity=8)
    if count <= 1:
        raise NoBreastFoundError("no tissue brighter than the film background")
    largest = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
    component = (labels == largest).astype(np.uint8)
    component = cv2.dilate(component, disc) & candidate
    filled = _fill_holes(component)
    fraction = float(filled.mean())
    if fraction < _MIN_BREAST_FRACTION:
        raise NoBreastFoundError(
            f"the largest bright region covers {fraction:.1%} of the frame; a mammogram's "
            f"breast covers at least {_MIN_BREAST_FRACTION:.0%}"
        )
    if fraction > _MAX_BREAST_FRACTION:
        raise NoBreastFoundError(
            "the whole frame is bright: no background around a breast (a uniform or inverted "
            "image?)"
        )
    if float(small[filled.astype(bool)].std()) < _MIN_BREAST_CONTRAST:
        raise NoBreastFoundError("the bright region is uniform: no breast tissue in it")
    return cv2.resize(filled, (width, height), interpolation=cv2.INTER_NEAREST).astype(bool)


def frame_thickness(image: np.ndarray) -> tuple[int, int, int, int]:
    bright = image > _BREAST_LEVEL
    rows = bright.mean(axis=1)
    columns = bright.mean(axis=0)
    runs = []
    for fractions in (rows, rows[::-1], columns, columns[::-1]):
        dark = np.flatnonzero(fractions < _FRAME_LINE_FRACTION)
        runs.append(int(dark[0]) if len(dark) else len(fractions))
    frame_sides = [run for run in runs if run > 0]
    if len(frame_sides) < 3:
        return 0, 0, 0, 0
    band = min(frame_sides)
    top, bottom, left, right = (min(run, band) for run in runs)
    if top + bottom > len(rows) // 2 or left + right > len(columns) // 2:
        return 0, 0, 0, 0
    return top, bottom, left, right


def chest_wall_side(mask: np.ndarray) -> str:
    half = mask.shape[1] // 2
    left = np.count_nonzero(mask[:, :half])
    right = np.count_nonzero(mask[:, mask.shape[1] - half :])
    return "left" if left >= right else "right"


def prepare(
    image: np.ndarray,
    config: PreprocessConfig,
    chest_wall: str | None = None,
    mask: np.ndarray | None = None,
) -> PreparedImage:
    height, width = image.shape
    side = None
    flipped = False
    crop = (0, 0, width, height)
    if config.breast_crop:
        if mask is None:
            mask = breast_mask(image)
        side = chest_wall or chest_wall_side(mask)
        flipped = config.orientation == "chest_wall_left" and side == "right"
        if flipped:
            image, mask = image[:, ::-1], mask[:, ::-1]
        crop = _breast_box(
            mask, config.height / config.width, chest_wall_left=flipped or side == "left"
        )
        image = np.where(mask, image, 0).astype(np.uint8)
        image = _cut(image, crop)
    elif config.orientation == "chest_wall_left":
        side = chest_wall or chest_wall_side(image > _BREAST_LEVEL)
        flipped = side == "right"
        if flipped:
            image = image[:, ::-1]
    resized = cv2.resize(
        np.ascontiguousarray(image),
        (config.width, config.height),
        interpolation=INTERPOLATIONS[config.interpolation],
    )
    model_input = resized.astype(np.float32)
    if config.pixel_scale != 1.0 or config.pixel_offset != 0.0:
        model_input = model_input * np.float32(config.pixel_scale) + np.float32(config.pixel_offset)
    geometry = Geometry(width, height, flipped, crop, config.width, config.height)
    return PreparedImage(model_input[:, :, np.newaxis], geometry, side)


def _fill_holes(mask: np.ndarray) -> np.ndarray:
    padded = np.pad(mask, 1)
    flood = padded.copy()
    cv2.floodFill(flood, None, (0, 0), 1)
    holes = (flood == 0).astype(np.uint8)
    return (padded | holes)[1:-1, 1:-1]


def _breast_box(
    mask: np.ndarray, aspect: float, chest_wall_left: bool = True
) -> tuple[int, int, int, int]:
    rows = np.flatnonzero(mask.any(axis=1))
    columns = np.flatnonzero(mask.any(axis=0))
    x0, x1 = int(columns[0]), int(columns[-1]) + 1
    y0, y1 = int(rows[0]), int(rows[-1]) + 1
    box_width, box_height = x1 - x0, y1 - y0
    if box_height / box_width > aspect:
        wanted = round(box_height / aspect)
        if chest_wall_left:
            x1 = x0 + wanted
        else:
            x0 = x1 - wanted
    else:
        wanted = round(box_width * aspect)
        extra = wanted - box_height
        y0 -= extra // 2
        y1 = y0 + wanted
    return x0, y0, x1, y1


def _cut(image: np.ndarray, box: tuple[int, int, int, int]) -> np.ndarray:
    x0, y0, x1, y1 = box
    height, width = image.shape
    out = np.zeros((y1 - y0, x1 - x0), dtype=image.dtype)
    src_x0, src_y0 = max(x0, 0), max(y0, 0)
    src_x1, src_y1 = min(x1, width), min(y1, height)
    out[src_y0 - y0 : src_y1 - y0, src_x0 - x0 : src_x1 - x0] = image[src_y0:src_y1, src_x0:src_x1]
    return out
