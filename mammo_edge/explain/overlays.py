"""Pictures of where a model looked: the heatmap on the image, thumbnails, PNG files."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from mammo_edge.explain.heatmaps import HeatmapGrid, Peak, heat_on_original, heat_range
from mammo_edge.images.preprocess import Geometry

#: Overlays are drawn at most this many pixels on their longer side (peaks stay exact).
OVERLAY_MAX_SIDE = 1024
#: Share of the overlay taken by the colour map at the hottest cells.
OVERLAY_ALPHA = 0.55


def render_overlay(
    pixels: np.ndarray,
    grid: HeatmapGrid,
    geometry: Geometry,
    peak: Peak,
    max_side: int = OVERLAY_MAX_SIDE,
    alpha: float = OVERLAY_ALPHA,
) -> np.ndarray:
    """The image in gray with the heatmap in colour (OpenCV JET) and the peak circled.

    Args:
        pixels: the original ``(H, W)`` uint8 image.
        grid, geometry, peak: from the same image.
        max_side: the overlay's longer side at most (it is never enlarged).
        alpha: colour weight at the hottest cells (cold ones get 30% of it); none where
            the model input did not cover the image.

    Returns:
        ``(h, w, 3)`` uint8 BGR, ready for ``cv2.imwrite``.
    """
    height, width = pixels.shape
    shrink = min(1.0, max_side / max(height, width))
    out_width, out_height = max(1, round(width * shrink)), max(1, round(height * shrink))
    gray = pixels
    if (out_width, out_height) != (width, height):
        gray = cv2.resize(pixels, (out_width, out_height), interpolation=cv2.INTER_AREA)
    heat, inside = heat_on_original(grid, geometry, out_width, out_height)
    low, high = heat_range(grid)
    level = np.clip((heat - low) / (high - low), 0.0, 1.0)
    colour = cv2.applyColorMap((level * 255).astype(np.uint8), cv2.COLORMAP_JET)
    base = cv2.cvtColor(gray, cv2.COLOR_GRAY2BGR)
    # Cold cells tint faintly and hot ones strongly, so the anatomy stays readable.
    weight = np.where(inside, alpha * (0.3 + 0.7 * level), 0.0)[..., np.newaxis]
    overlay = (base * (1 - weight) + colour * weight).round().astype(np.uint8)
    centre = (
        round((peak.x + 0.5) * out_width / width - 0.5),
        round((peak.y + 0.5) * out_height / height - 0.5),
    )
    radius = max(6, round(max(out_width, out_height) / 30))
    thickness = max(1, round(radius / 8))
    # A dark halo under a white mark keeps the peak visible on bright and dark tissue alike.
    for colour_bgr, extra in (((0, 0, 0), 2), ((255, 255, 255), 0)):
        cv2.circle(overlay, centre, radius, colour_bgr, thickness + extra, cv2.LINE_AA)
        cv2.drawMarker(
            overlay,
            centre,
            colour_bgr,
            cv2.MARKER_CROSS,
            radius,
            thickness + extra,
            cv2.LINE_AA,
        )
    return overlay


def thumbnail(image: np.ndarray, max_side: int) -> np.ndarray:
    """``image`` (gray or BGR) shrunk to at most ``max_side`` on its longer side."""
    height, width = image.shape[:2]
    shrink = min(1.0, max_side / max(height, width))
    if shrink >= 1.0:
        return image
    size = (max(1, round(width * shrink)), max(1, round(height * shrink)))
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA)


def write_png(path: Path, image: np.ndarray) -> None:
    """Write ``image`` as PNG; raises OSError naming the file when it cannot."""
    path.parent.mkdir(parents=True, exist_ok=True)
    ok, encoded = cv2.imencode(".png", image)
    if not ok:
        raise OSError(f"cannot encode {path.name} as PNG")
    path.write_bytes(encoded.tobytes())
