"""Augmentation of model inputs: the seed's fixed rotations and on-the-fly random ones.

Works on ``(size, size, 1)`` float32 model inputs produced by ``mammo_edge.images.preprocess``,
so training never resizes pixels itself.
"""

from __future__ import annotations

import cv2
import numpy as np


def rotate(model_input: np.ndarray, angle: float) -> np.ndarray:
    """Rotate about the centre as the seed did (getRotationMatrix2D + warpAffine, black fill)."""
    image = model_input[:, :, 0]
    rows, cols = image.shape
    matrix = cv2.getRotationMatrix2D((cols / 2, rows / 2), angle, 1)
    return cv2.warpAffine(image, matrix, (cols, rows))[:, :, np.newaxis]


def random_augment(model_input: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One random view for training: rotation by any angle, then horizontal/vertical flips."""
    augmented = rotate(model_input, float(rng.uniform(0.0, 360.0)))
    if rng.random() < 0.5:
        augmented = augmented[:, ::-1]
    if rng.random() < 0.5:
        augmented = augmented[::-1, :]
    return np.ascontiguousarray(augmented)
