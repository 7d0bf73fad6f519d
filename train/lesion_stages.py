"""The lesion-aware recipe's two training stages on one fold's images, and scoring.

1. :func:`train_patch_stage`: the patch model on 128-pixel patches of the training images
   only: lesion patches centred (with jitter) on the lesion circles, normal patches
   anywhere in normal breasts and away from lesions in abnormal ones, balanced 1:1, flips
   and 90-degree turns (:class:`train.lesion_data.PatchBatches`);
2. :func:`train_image_stage`: the whole-image model (the same weights, top-k pooled lesion
   map) fine-tuned on the training images' labels, abnormal images without coordinates
   included (:class:`train.lesion_data.ImageBatches`).

:func:`train_model` runs both; :func:`score` and :func:`heatmap_peak` read a trained
model's probability and heatmap peak.
"""

from __future__ import annotations

import time
from pathlib import Path

import keras
import numpy as np

from mammo_edge.images.preprocess import Geometry

from .architectures import lite0
from .initialise import initialise_from
from .lesion_data import ImageBatches, PatchBatches, PreparedSet
from .lesion_settings import LesionSettings
from .progress import EpochLog


def train_patch_stage(
    networks: lite0.Networks,
    data: PreparedSet,
    train_indices,
    settings: LesionSettings,
    seed: int,
    log=print,
) -> PatchBatches | None:
    """Stage 1 on ``train_indices``; returns its patch batches, or None when skipped.

    Skipped when ``settings.lesions`` is off or no training image holds a lesion circle.
    """
    allowed = set(int(index) for index in train_indices)
    has_lesions = any(lesion.image_index in allowed for lesion in data.lesions)
    if settings.lesions and not has_lesions:
        log("    patches: skipped, no lesion geometry among the training images")
    if not (settings.lesions and has_lesions):
        return None
    patch_model = networks.patch_model()
    patch_model.compile(
        keras.optimizers.Adam(settings.patch_learning_rate),
        "binary_crossentropy",
        metrics=[keras.metrics.AUC(name="auc")],
    )
    patches = PatchBatches(data, train_indices, settings, seed)
    started = time.time()
    history = patch_model.fit(
        patches,
        epochs=settings.patch_epochs,
        verbose=0,
        callbacks=[EpochLog("    patches", settings.patch_epochs, log)],
    )
    log(
        f"    patches: {settings.patch_epochs} epochs in {time.time() - started:.0f} s, "
        f"last loss {history.history['loss'][-1]:.3f}, auc {history.history['auc'][-1]:.3f}"
    )
    return patches


def train_image_stage(
    image_model: keras.Model,
    data: PreparedSet,
    train_indices,
    settings: LesionSettings,
    seed: int,
    epochs: int,
    log=print,
) -> None:
    """Stage 2: fit ``image_model`` on the training images' labels for ``epochs``."""
    image_model.compile(
        keras.optimizers.Adam(settings.image_learning_rate),
        loss=["binary_crossentropy", None],
    )
    started = time.time()
    history = image_model.fit(
        ImageBatches(data, train_indices, settings, seed),
        epochs=epochs,
        verbose=0,
        callbacks=[EpochLog("    images", epochs, log)],
    )
    log(
        f"    images: {epochs} epochs in "
        f"{time.time() - started:.0f} s, last loss {history.history['loss'][-1]:.3f}"
    )


def train_model(data: PreparedSet, train_indices, settings: LesionSettings, seed: int, log=print):
    """Run both stages on ``train_indices``; returns (whole-image model, PatchBatches|None).

    The patch stage runs when ``settings.lesions`` is on and the training images hold at
    least one lesion circle; otherwise only the whole-image stage learns (image labels),
    with the patch stage's compute given to 5 more whole-image epochs (as ``--no-lesions``).
    """
    keras.utils.set_random_seed(seed)
    networks = lite0.Networks(pretrained=settings.pretrained, seed=seed)
    config = settings.preprocess()
    image_model = None
    if settings.init is not None:
        # Built first so that the patch model, which shares its layers, starts from the
        # loaded weights too (without --init the order is the archive runs' own).
        image_model = networks.image_model(config)
        copied = initialise_from(image_model, Path(settings.init))
        log(f"    start: {copied} layers' weights from {settings.init} (not ImageNet)")
    patches = train_patch_stage(networks, data, train_indices, settings, seed, log)
    if image_model is None:
        image_model = networks.image_model(config)
    epochs = settings.image_epochs if patches is not None else settings.image_epochs + 5
    train_image_stage(image_model, data, train_indices, settings, seed, epochs, log)
    return image_model, patches


def score(model: keras.Model, inputs: np.ndarray, batch: int = 8):
    """(probabilities (N,), heatmaps (N, h, w)) of prepared inputs ``(N, H, W, 1)``."""
    probabilities, heatmaps = [], []
    for start in range(0, len(inputs), batch):
        probability, heatmap = model(inputs[start : start + batch], training=False)
        probabilities.append(np.asarray(probability)[:, 0])
        heatmaps.append(np.asarray(heatmap)[..., 0])
    return np.concatenate(probabilities), np.concatenate(heatmaps)


def heatmap_peak(heatmap: np.ndarray, geometry: Geometry) -> tuple[float, float]:
    """The heatmap maximum in original-image pixels (x from the left, y from the top)."""
    row, column = np.unravel_index(int(np.argmax(heatmap)), heatmap.shape)
    return geometry.to_original(*lite0.heatmap_centre(row, column))
