"""Microcalcification-cluster evidence at full resolution (about 0.2 mm per pixel).

The CNN sees the breast at 512x256 (about 0.4 mm per pixel), where a microcalcification
(0.1-1 mm) is a pixel or less. This module looks at the decoded image itself, as a
radiologist's magnifier would: bright specks smaller than a structuring element stand out
of a white top-hat; specks that crowd together (a *cluster*, the finding that matters,
BI-RADS: >= 5 within 1 cm^2) are counted.

Every constant below was fixed from the physics of the finding before any result was
seen; nothing here is learnt. How much weight the features get is learnt by the stacking
head inside each training fold (``train/stacking.py``), and travels with the model.

Features of one image (``CalcificationFeatures``, all finite floats):

- ``calc_cluster``: log(1 + the most specks inside any 1 cm x 1 cm square of the breast);
- ``calc_density``: log(1 + specks per cm^2 of breast);
- ``calc_contrast``: log(1 + the 99.9th percentile of the top-hat inside the breast, in
  units of its robust noise level).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import cv2
import numpy as np

from mammo_edge.images.preprocess import breast_mask

#: The pixel size the constants below are written for (mini-MIAS: 200 um).
NATIVE_MM_PER_PIXEL = 0.2
#: The field of view assumed for a large image with no pixel spacing (mm).
_FIELD_MM = 240.0
#: Top-hat disc: 9 px = 1.8 mm, larger than a microcalcification, smaller than a mass.
_TOPHAT_DIAMETER_MM = 1.8
#: A speck is brighter than its surroundings by this many robust noise units...
_SPECK_SIGMAS = 6.0
#: ...and by at least this many gray levels (film grain floor).
_SPECK_MIN_LEVELS = 6.0
#: A speck's area: 0.04 to 1.2 mm^2 (1 to 30 pixels at 200 um).
_SPECK_AREA_MM2 = (0.04, 1.2)
#: Gaussian blur before the top-hat (0.14 mm: a matched filter for the smallest specks).
_BLUR_SIGMA_MM = 0.14
#: Fixed-point steps per gray level of the blurred image.
_SUBLEVELS = 64
#: The cluster square: 1 cm.
_CLUSTER_SIDE_MM = 10.0
#: The skin line and the chest-wall edge are bright and thin; keep 2 mm away from them.
_EDGE_MARGIN_MM = 2.0

FEATURE_NAMES = ("calc_cluster", "calc_density", "calc_contrast")


@dataclass(frozen=True)
class CalcificationFeatures:
    """The three cluster features of one image (see the module notes)."""

    calc_cluster: float
    calc_density: float
    calc_contrast: float

    def as_array(self) -> np.ndarray:
        return np.array([getattr(self, name) for name in FEATURE_NAMES], dtype=np.float64)

    def as_dict(self) -> dict[str, float]:
        return asdict(self)


def assumed_mm_per_pixel(shape: tuple[int, ...]) -> float:
    """The pixel size of an image whose file does not say: mini-MIAS's 0.2 mm up to 1400
    pixels on the longer side, else a 24 cm film or detector across the longer side."""
    longer = max(shape[:2])
    return NATIVE_MM_PER_PIXEL if longer <= 1400 else _FIELD_MM / longer


def calcification_features(
    image: np.ndarray,
    mm_per_pixel: float | None = NATIVE_MM_PER_PIXEL,
    mask: np.ndarray | None = None,
) -> CalcificationFeatures:
    """Measure speck clusters in one 8-bit grayscale mammogram.

    Args:
        image: ``(H, W)`` uint8, as the readers decode it (0 = film background).
        mm_per_pixel: the image's pixel size (DICOM Imager Pixel Spacing); ``None``:
            :func:`assumed_mm_per_pixel`. Images finer than 0.2 mm (a full-field DICOM's
            0.05-0.1 mm) are area-resized to 0.2 mm first, so the constants keep their
            meaning; coarser images are measured as they are.
        mask: the breast mask (``mammo_edge.images.preprocess.breast_mask``) when already known.

    Returns:
        :class:`CalcificationFeatures`.

    Raises:
        mammo_edge.images.preprocess.NoBreastFoundError: no breast in the image.
    """
    if mm_per_pixel is None:
        mm_per_pixel = assumed_mm_per_pixel(image.shape)
    if mask is None:
        mask = breast_mask(image)
    if mm_per_pixel < NATIVE_MM_PER_PIXEL * 0.95:
        factor = mm_per_pixel / NATIVE_MM_PER_PIXEL
        size = (max(1, round(image.shape[1] * factor)), max(1, round(image.shape[0] * factor)))
        image = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
        mask = cv2.resize(mask.astype(np.uint8), size, interpolation=cv2.INTER_NEAREST) > 0
        mm_per_pixel = NATIVE_MM_PER_PIXEL
    pixels = 1.0 / mm_per_pixel
    margin = max(1, round(_EDGE_MARGIN_MM * pixels))
    inner = cv2.erode(mask.astype(np.uint8), np.ones((2 * margin + 1, 2 * margin + 1), np.uint8))
    inner = inner.astype(bool)
    breast_cm2 = max(float(inner.sum()) * (mm_per_pixel / 10.0) ** 2, 1e-6)
    if not inner.any():
        return CalcificationFeatures(0.0, 0.0, 0.0)

    diameter = max(3, round(_TOPHAT_DIAMETER_MM * pixels) | 1)
    disc = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (diameter, diameter))
    # A light blur first: the top-hat of 8-bit film is integer-valued, and a noise level
    # measured on integers jumps between 1.48 and 2.97 levels from image to image. The
    # blurred image is kept on a 1/64-level 16-bit scale (OpenCV's 16-bit morphology is
    # several times faster than its float one; the rounding is 0.008 levels).
    fine = cv2.GaussianBlur(image.astype(np.uint16) * _SUBLEVELS, (0, 0), _BLUR_SIGMA_MM * pixels)
    tophat = cv2.morphologyEx(fine, cv2.MORPH_TOPHAT, disc)
    # Robust statistics from every 4th breast pixel: ~10^5 samples, a quarter of the cost.
    inside = tophat[inner][::4].astype(np.float32) / _SUBLEVELS
    median = float(np.median(inside))
    noise = max(1.4826 * float(np.median(np.abs(inside - median))), 0.05)
    level = max(median + _SPECK_SIGMAS * noise, _SPECK_MIN_LEVELS)
    specks = ((tophat > level * _SUBLEVELS) & inner).astype(np.uint8)

    count, _, stats, centroids = cv2.connectedComponentsWithStats(specks, connectivity=8)
    area_mm2 = stats[1:, cv2.CC_STAT_AREA] * mm_per_pixel**2
    keep = (area_mm2 >= _SPECK_AREA_MM2[0]) & (area_mm2 <= _SPECK_AREA_MM2[1])
    centres = centroids[1:][keep]
    points = np.zeros(image.shape, dtype=np.float32)
    if len(centres):
        columns = np.clip(np.round(centres[:, 0]).astype(int), 0, image.shape[1] - 1)
        rows = np.clip(np.round(centres[:, 1]).astype(int), 0, image.shape[0] - 1)
        np.add.at(points, (rows, columns), 1.0)
    side = max(1, round(_CLUSTER_SIDE_MM * pixels))
    crowd = cv2.boxFilter(points, -1, (side, side), normalize=False, borderType=cv2.BORDER_CONSTANT)
    contrast = (float(np.percentile(inside, 99.9)) - median) / noise
    return CalcificationFeatures(
        calc_cluster=float(np.log1p(max(float(crowd.max()), 0.0))),
        calc_density=float(np.log1p(len(centres) / breast_cm2)),
        calc_contrast=float(np.log1p(max(contrast, 0.0))),
    )
