"""The built-in image set: mammogram-shaped 1024x1024 8-bit PGMs, made on the spot.

``mammo-edge bench`` without a FOLDER times the pipeline on these. They are shaped like a
mini-MIAS film (the 1024x1024 PGMs the shipped models were trained on): a textured
half-ellipse against the chest wall, left or right in turn, on a near-black background, so
they pass the runtime's mammogram guard and the breast crop does its real work. Their
pixel values do not matter for speed; their size and format do, and match MIAS.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

#: Side of a mini-MIAS image, in pixels.
SIDE = 1024


def synthetic_mammogram(seed: int, side: int = SIDE) -> np.ndarray:
    """A ``(side, side)`` uint8 mammogram-shaped image; the chest wall is on the left for an
    even ``seed``, on the right for an odd one.

    Tissue: a gradient from the chest wall plus low-frequency texture and a few bright
    blobs; background: film noise of gray levels 0..8.
    """
    rng = np.random.default_rng(seed)
    rows, columns = np.mgrid[0:side, 0:side].astype(np.float32)
    depth = columns if seed % 2 == 0 else side - 1 - columns
    centre = side * (0.5 + rng.uniform(-0.05, 0.05))
    reach = side * rng.uniform(0.55, 0.7)
    inside = (depth / reach) ** 2 + ((rows - centre) / (0.45 * side)) ** 2 <= 1
    texture = cv2.GaussianBlur(rng.normal(0, 1, (side, side)).astype(np.float32), (0, 0), 12)
    tissue = 200 - 90 * depth / reach + 25 * texture / max(float(texture.std()), 1e-6)
    for _ in range(3):
        y, x = rng.uniform(0.3, 0.7) * side, rng.uniform(0.1, 0.5) * reach
        x = x if seed % 2 == 0 else side - 1 - x
        radius = rng.uniform(10, 30)
        tissue += 40 * np.exp(-((rows - y) ** 2 + (columns - x) ** 2) / (2 * radius**2))
    background = rng.integers(0, 9, (side, side)).astype(np.float32)
    return np.clip(np.where(inside, tissue, background), 0, 255).astype(np.uint8)


def write_synthetic_set(folder: Path, count: int) -> list[Path]:
    """Write ``count`` images of :func:`synthetic_mammogram` as binary PGMs into ``folder``.

    Returns:
        The paths written, ``synthetic00000.pgm`` onwards. Four distinct images are made
        and repeated, which costs a decoder the same as ``count`` distinct ones.
    """
    if count < 1:
        raise ValueError(f"count must be at least 1, got {count}")
    folder.mkdir(parents=True, exist_ok=True)
    header = f"P5\n{SIDE} {SIDE}\n255\n".encode("ascii")
    distinct = [header + synthetic_mammogram(seed).tobytes() for seed in range(min(4, count))]
    paths = []
    for index in range(count):
        path = folder / f"synthetic{index:05d}.pgm"
        path.write_bytes(distinct[index % len(distinct)])
        paths.append(path)
    return paths
