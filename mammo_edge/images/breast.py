"""Where the breast is in an 8-bit mammogram: its mask, its chest-wall side, its box.

:func:`breast_mask` thresholds at a fixed dark level, opens with a disc so film labels and
tape come apart from the breast, keeps the largest component and fills its holes; a
bright frame around the image (:func:`_frame_thickness`) is cut off first and is never
breast. :func:`chest_wall_side` and :func:`breast_bounds` read the mask for
:func:`mammo_edge.images.preprocess.prepare`, which crops to the breast, and
:mod:`mammo_edge.images.guard` refuses an image where no breast is found.

Everything here runs once per image on a CPU shared with inference, so the full-resolution
passes are OpenCV's vectorised ones; each gives exactly the numbers of the plain numpy
expression it replaced (tests/test_preprocess_identity.py holds them to it).
"""

from __future__ import annotations

import cv2
import numpy as np

#: Segmentation works on a copy whose longer side is this many pixels (speed; the mask is
#: scaled back up). At 1024 px mini-MIAS is 200 um/px, so one mask pixel is 800 um.
_MASK_SIDE = 256
#: Gray level (0..255) above which a pixel may be breast. Film background in mini-MIAS sits
#: at 0..12; the breast's skin line is above 25.
BREAST_LEVEL = 20
#: Opening diameter, as a fraction of the longer side: ~31 px at 1024 px. Film labels touch
#: the breast through thin bridges that a smaller opening keeps.
_OPENING_FRACTION = 31 / 1024
#: A line of the image edge this bright (share of pixels above BREAST_LEVEL) is frame.
_FRAME_LINE_FRACTION = 0.95
#: A breast must cover at least this share of the frame, and the frame must not be filled.
_MIN_BREAST_FRACTION = 0.03
_MAX_BREAST_FRACTION = 0.98
#: The image must hold some contrast inside the mask (standard deviation of gray levels).
_MIN_BREAST_CONTRAST = 2.0


class NoBreastFoundError(ValueError):
    """No breast could be found in the image (blank or uniform frame, text, a tiny crop)."""


def check_image(image: np.ndarray) -> None:
    """Raise unless ``image`` is a ``(H, W)`` uint8 numpy array (TypeError / ValueError)."""
    if not isinstance(image, np.ndarray):
        raise TypeError(f"expected a numpy array, got {type(image).__name__}")
    if image.ndim != 2:
        raise ValueError(f"expected a 2-D grayscale image (H, W), got shape {image.shape}")
    if image.dtype != np.uint8:
        raise ValueError(f"expected uint8 pixels (0..255), got dtype {image.dtype}")


def breast_mask(image: np.ndarray) -> np.ndarray:
    """Segment the breast: a ``(H, W)`` bool mask, True on the breast.

    Threshold at a fixed dark level, open with a disc ~3% of the image side so film labels
    and tape touching the breast come apart, keep the largest component, fill its holes.
    A bright frame around the image (a scanner's or exporter's border, uniform or
    textured; :func:`_frame_thickness`) is cut off first and is never breast, so the
    breast inside it is segmented exactly as without the frame.

    Raises:
        NoBreastFoundError: when nothing breast-like is found.
    """
    check_image(image)
    top, bottom, left, right = _frame_thickness(image)
    if top or bottom or left or right:
        height, width = image.shape
        mask = np.zeros(image.shape, dtype=bool)
        mask[top : height - bottom, left : width - right] = _segment(
            image[top : height - bottom, left : width - right]
        )
        return mask
    return _segment(image)


def _segment(image: np.ndarray) -> np.ndarray:
    """:func:`breast_mask` of an image without a frame."""
    height, width = image.shape
    shrink = _MASK_SIDE / max(height, width)
    small = cv2.resize(
        image,
        (max(1, round(width * shrink)), max(1, round(height * shrink))),
        interpolation=cv2.INTER_AREA,
    )
    candidate = (small > BREAST_LEVEL).astype(np.uint8)
    diameter = max(3, round(_OPENING_FRACTION * _MASK_SIDE) | 1)
    disc = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (diameter, diameter))
    opened = cv2.morphologyEx(candidate, cv2.MORPH_OPEN, disc)
    component = _largest_component(opened)
    # Undo the opening's erosion of the skin line inside the component's reach.
    component = cv2.dilate(component, disc) & candidate
    filled = _fill_holes(component)
    fraction = np.count_nonzero(filled) / filled.size
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
    if float(small[filled.view(bool)].std()) < _MIN_BREAST_CONTRAST:
        raise NoBreastFoundError("the bright region is uniform: no breast tissue in it")
    # The 0/1 bytes are valid booleans: a view, not another full-size copy.
    return _upscale_nearest(filled, width, height).view(bool)


def _upscale_nearest(small: np.ndarray, width: int, height: int) -> np.ndarray:
    """``cv2.resize(small, (width, height), interpolation=cv2.INTER_NEAREST)``, 3x faster.

    OpenCV's nearest neighbour picks source column ``floor(x * w / width)`` and source row
    ``floor(y * h / height)`` independently, so the columns are widened by OpenCV and each
    row then copied whole to the rows that pick it, the row picks being OpenCV's own (the
    resize of a column of row numbers): the same bytes without a per-pixel gather.
    """
    rows = small.shape[0]
    widened = cv2.resize(small, (width, rows), interpolation=cv2.INTER_NEAREST)
    row_numbers = np.arange(rows, dtype=np.int32).reshape(rows, 1)
    picks = cv2.resize(row_numbers, (1, height), interpolation=cv2.INTER_NEAREST).ravel()
    return np.take(widened, picks, axis=0)


def _largest_component(mask: np.ndarray) -> np.ndarray:
    """The largest 8-connected component of a uint8 0/1 mask, as a uint8 0/1 mask.

    Ties go to the lowest label (the first in raster order). Areas are counted with
    numpy from the labels: OpenCV's labelling with statistics costs several times more.

    Raises:
        NoBreastFoundError: the mask is empty.
    """
    count, labels = cv2.connectedComponents(mask, connectivity=8)
    if count <= 1:
        raise NoBreastFoundError("no tissue brighter than the film background")
    areas = np.bincount(labels.ravel(), minlength=count)
    largest = 1 + int(np.argmax(areas[1:]))
    return (labels == largest).astype(np.uint8)


def _fill_holes(mask: np.ndarray) -> np.ndarray:
    """Fill holes of a uint8 0/1 mask (background reachable from the border stays 0)."""
    flood = cv2.copyMakeBorder(mask, 1, 1, 1, 1, cv2.BORDER_CONSTANT, value=0)
    cv2.floodFill(flood, None, (0, 0), 1)
    holes = (flood[1:-1, 1:-1] == 0).view(np.uint8)
    return mask | holes


def _frame_thickness(image: np.ndarray) -> tuple[int, int, int, int]:
    """Rows/columns of a bright frame around the image (top, bottom, left, right).

    A scanner's or exporter's border (uniform or textured) makes at least three of the
    four outermost lines bright end to end; a breast touches one side at most (mini-MIAS:
    no outermost line is more than 98% bright). Each side's band is the run of lines at
    least 95% bright from the edge, capped at the thinnest frame side's, so the breast
    that leans on one side of the frame keeps its own rows. No frame: zeros.
    """
    height, width = image.shape
    # Most images have no frame: four lines tell, before the whole image is read.
    edges = (image[0], image[-1], image[:, 0], image[:, -1])
    bright_edges = sum(
        np.count_nonzero(line > BREAST_LEVEL) / len(line) >= _FRAME_LINE_FRACTION for line in edges
    )
    if bright_edges < 3:
        return 0, 0, 0, 0
    # The bright share of every row and column: OpenCV's integer sums over a 0/1 copy are
    # the numbers numpy's mean of the boolean image gives, in a fraction of the time.
    _, candidate = cv2.threshold(image, BREAST_LEVEL, 1, cv2.THRESH_BINARY)
    rows = cv2.reduce(candidate, 1, cv2.REDUCE_SUM, dtype=cv2.CV_32S).ravel() / width
    columns = cv2.reduce(candidate, 0, cv2.REDUCE_SUM, dtype=cv2.CV_32S).ravel() / height
    lines = (rows, rows[::-1], columns, columns[::-1])  # from the top, bottom, left, right
    runs = []
    for fractions in lines:
        dark = np.flatnonzero(fractions < _FRAME_LINE_FRACTION)
        runs.append(int(dark[0]) if len(dark) else len(fractions))
    frame_sides = [run for run in runs if run > 0]
    if len(frame_sides) < 3:
        return 0, 0, 0, 0
    band = min(frame_sides)
    top, bottom, left, right = (min(run, band) for run in runs)
    if top + bottom > len(rows) // 2 or left + right > len(columns) // 2:
        return 0, 0, 0, 0  # a bright frame filling the image: nothing inside to frame
    return top, bottom, left, right


def chest_wall_side(mask: np.ndarray) -> str:
    """``left`` or ``right``: the side of the frame the breast is anchored to.

    The chest wall is the image edge the breast leans on: its tissue is widest there and
    tapers to the nipple on the other side, so the mask's mass sits on the chest-wall half.
    """
    half = mask.shape[1] // 2
    left = _row_counts(mask[:, :half]).sum()
    right = _row_counts(mask[:, mask.shape[1] - half :]).sum()
    return "left" if left >= right else "right"


def breast_bounds(mask: np.ndarray) -> tuple[int, int, int, int]:
    """The bounding box ``(x0, y0, x1, y1)`` of a bool mask (x1, y1 exclusive).

    Raises:
        IndexError: the mask is empty.
    """
    rows = np.flatnonzero(_row_counts(mask))
    columns = np.flatnonzero(mask.any(axis=0))
    return int(columns[0]), int(rows[0]), int(columns[-1]) + 1, int(rows[-1]) + 1


def _row_counts(mask: np.ndarray) -> np.ndarray:
    """Pixels set in each row of a ``(H, W)`` bool mask, as int32.

    OpenCV's row sums of the 0/1 bytes: numpy's count of a strided half of a mask, or its
    ``any`` along rows, takes several times longer.
    """
    if mask.shape[1] == 0:
        return np.zeros(mask.shape[0], dtype=np.int32)
    return cv2.reduce(mask.view(np.uint8), 1, cv2.REDUCE_SUM, dtype=cv2.CV_32S).ravel()
