"""Fitting a model: batches, callbacks and prediction, shared by both protocols."""

from __future__ import annotations

import math
from pathlib import Path

import keras
import numpy as np

from mammo_edge.images.preprocess import PreprocessConfig

from . import architectures
from .augment import random_augment
from .model import BATCH_SIZE

EARLY_STOPPING_PATIENCE = 3


class AugmentedBatches(keras.utils.PyDataset):
    """Training batches with a fresh random rotation/flip of every image each time.

    Only training images ever pass through here; validation and test images are used
    as they are. Each epoch shows every image ``copies`` times, each a different view.
    Yields (inputs, labels, sample_weights) so class weights apply per sample.

    Args:
        inputs: ``(N, size, size, 1)`` float32 model inputs of the whole data set.
        labels: ``(N,)`` 0/1 labels of the whole data set.
        indices: the training images among them; nothing else is ever read.
        weights: class weight per label.
        copies: views of each training image per epoch.
        seed: seed of the augmentation random generator.
    """

    def __init__(
        self,
        inputs: np.ndarray,
        labels: np.ndarray,
        indices: np.ndarray,
        weights: dict[int, float],
        copies: int,
        seed: int,
        batch_size: int = BATCH_SIZE,
    ) -> None:
        super().__init__()
        self.inputs = inputs
        self.labels = labels.astype(np.float32)
        self.indices = np.asarray(indices)
        self.sample_weights = np.array([weights[int(label)] for label in labels], np.float32)
        self.copies = copies
        self.batch_size = batch_size
        self.rng = np.random.default_rng(seed)
        #: every index handed to augmentation so far (lets tests prove isolation)
        self.augmented_indices: set[int] = set()
        self.on_epoch_end()

    def __len__(self) -> int:
        return math.ceil(len(self.order) / self.batch_size)

    def __getitem__(self, batch_index: int):
        chosen = self.order[batch_index * self.batch_size : (batch_index + 1) * self.batch_size]
        batch = np.stack([random_augment(self.inputs[i], self.rng) for i in chosen])
        self.augmented_indices.update(int(i) for i in chosen)
        return batch, self.labels[chosen], self.sample_weights[chosen]

    def on_epoch_end(self) -> None:
        self.order = self.rng.permutation(np.tile(self.indices, self.copies))


def callbacks(checkpoint: Path | None, patience: int = EARLY_STOPPING_PATIENCE) -> list:
    """Early stopping on val_loss (best weights restored) and a best-only checkpoint."""
    result: list = [
        keras.callbacks.EarlyStopping(
            monitor="val_loss", patience=patience, restore_best_weights=True
        )
    ]
    if checkpoint is not None:
        checkpoint.parent.mkdir(parents=True, exist_ok=True)
        result.append(
            keras.callbacks.ModelCheckpoint(
                str(checkpoint), monitor="val_loss", save_best_only=True
            )
        )
    return result


def best_epoch(history: keras.callbacks.History) -> int:
    """1-based epoch with the lowest val_loss (the one early stopping restored)."""
    return int(np.argmin(history.history["val_loss"])) + 1


def predict(model: keras.Model, inputs: np.ndarray, batch_size: int = BATCH_SIZE) -> np.ndarray:
    """Probabilities of "abnormal", shape (N,), float64 (a model's first output: lite0's
    second output is its heatmap)."""
    output = model.predict(inputs, batch_size=batch_size, verbose=0)
    if isinstance(output, list | tuple):
        output = output[0]
    return np.asarray(output).reshape(-1).astype(float)


#: Adam's learning rate for an architecture whose ``build`` returns an uncompiled model
#: (lite0's whole-image model, whose lesion recipe compiles its own stages).
UNCOMPILED_LEARNING_RATE = 1e-4


def new_model(arch: str, config: PreprocessConfig, seed: int) -> keras.Model:
    """A fresh compiled model of architecture ``arch`` for ``config``'s input, seeded.

    An architecture that returns its network uncompiled (lite0) is compiled here with
    binary cross-entropy on its first output (the probability) and no loss on the others
    (the heatmap), so every protocol can fit it: ``--arch lite0 --protocol patient`` used to
    fail with Keras's "You must call `compile()` before using the model".
    """
    keras.utils.set_random_seed(seed)
    model = architectures.get(arch).build(config, seed)
    if not getattr(model, "compiled", False):
        losses = ["binary_crossentropy"] + [None] * (len(model.outputs) - 1)
        model.compile(
            keras.optimizers.Adam(UNCOMPILED_LEARNING_RATE),
            loss=losses if len(losses) > 1 else losses[0],
        )
    return model
