"""The lesion recipe's data: every image prepared once, its lesion circles in model-input
pixels, and the batches of both stages (balanced lesion/normal patches; whole images).

Only the indices a batch is given are ever read, so a fold's test images never reach
training (tests/test_lesion_protocol.py checks it).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import keras
import numpy as np

from mammo_edge.images.preprocess import Geometry, PreprocessConfig

from .architectures import lite0
from .dataset import TrainingSet, as_training_set
from .mias import MiasDataset
from .protocols import class_weights

if TYPE_CHECKING:
    from .lesion_settings import LesionSettings

BACKGROUND = -1.0  # what black (blanked) pixels become after Lite's scaling


@dataclass(frozen=True)
class Lesion:
    """One lesion circle in model-input pixels."""

    image_index: int
    x: float
    y: float
    radius: float
    abnormality_class: str | None  # the lesion's finding (MIAS: its class code)


@dataclass
class PreparedSet:
    """Every image of the dataset, prepared once."""

    inputs: np.ndarray  # (N, H, W, 1) float32
    geometries: list[Geometry]
    lesions: list[Lesion]
    labels: np.ndarray
    patients: np.ndarray


def prepare_dataset(dataset: TrainingSet | MiasDataset, config: PreprocessConfig) -> PreparedSet:
    """Prepare all images and map their lesion circles into model-input pixels."""
    dataset = as_training_set(dataset)
    records = dataset.records
    inputs = np.empty((len(records), config.height, config.width, 1), dtype=np.float32)
    geometries, lesions = [], []
    for index, record in enumerate(records):
        prepared = dataset.prepare(record.reference, config)
        inputs[index] = prepared.model_input
        geometry = prepared.geometry
        geometries.append(geometry)
        shape = (geometry.original_height, geometry.original_width)
        for circle in dataset.lesion_circles(record, shape):
            x, y = geometry.to_input(circle.x, circle.y)
            lesions.append(Lesion(index, x, y, circle.radius / geometry.scale, circle.finding))
    return PreparedSet(
        inputs,
        geometries,
        lesions,
        np.array([record.label for record in records]),
        np.array([record.patient_id for record in records]),
    )


class PatchBatches(keras.utils.PyDataset):
    """Fresh balanced lesion/normal patches every epoch, from the given images only."""

    def __init__(self, data: PreparedSet, image_indices, settings: LesionSettings, seed: int):
        super().__init__()
        allowed = set(int(index) for index in image_indices)
        self.data = data
        self.allowed = sorted(allowed)
        self.lesions = [lesion for lesion in data.lesions if lesion.image_index in allowed]
        if not self.lesions:
            raise ValueError("no lesion with coordinates among the training images")
        self.normal_sources = [
            index
            for index in self.allowed
            if data.labels[index] == 0
            or any(lesion.image_index == index for lesion in self.lesions)
        ]
        self.settings = settings
        # Breast pixels: after a breast crop everything else is blanked to BACKGROUND;
        # without one, film background (gray <= 20, as in mammo_edge.images.preprocess) is excluded.
        config = settings.preprocess()
        self.breast_level = (
            BACKGROUND + 1e-3
            if settings.breast_crop
            else 20 * config.pixel_scale + config.pixel_offset
        )
        self.rng = np.random.default_rng(seed)
        self._breast_cache: dict[int, np.ndarray] = {}
        self.steps = settings.patches_per_epoch // settings.patch_batch
        self.touched: set[int] = set()  # image indices patches were cut from (tests read it)

    def __len__(self) -> int:
        return self.steps

    def __getitem__(self, _):
        size = lite0.PATCH_SIZE
        batch = self.settings.patch_batch
        patches = np.empty((batch, size, size, 1), dtype=np.float32)
        labels = np.zeros(batch, dtype=np.float32)
        for slot in range(batch):
            if slot % 2 == 0:
                lesion = self.lesions[self.rng.integers(len(self.lesions))]
                jitter = min(0.5 * lesion.radius, size / 5)
                x = lesion.x + self.rng.uniform(-jitter, jitter)
                y = lesion.y + self.rng.uniform(-jitter, jitter)
                image_index = lesion.image_index
                labels[slot] = 1.0
            else:
                image_index, x, y = self._normal_centre()
            self.touched.add(image_index)
            patches[slot] = self._augment(cut_patch(self.data.inputs[image_index], x, y, size))
        return patches, labels

    def _normal_centre(self) -> tuple[int, float, float]:
        for _ in range(100):
            index = self.normal_sources[self.rng.integers(len(self.normal_sources))]
            breast = self._breast_pixels(index)
            if len(breast) == 0:
                continue
            y, x = breast[self.rng.integers(len(breast))]
            if all(
                (x - lesion.x) ** 2 + (y - lesion.y) ** 2 > (lesion.radius + 32) ** 2
                for lesion in self.lesions
                if lesion.image_index == index
            ):
                return int(index), float(x), float(y)
        raise RuntimeError("could not find normal tissue away from lesions")

    def _breast_pixels(self, index: int) -> np.ndarray:
        """(row, column) of every breast pixel of image ``index``, found once per image."""
        if index not in self._breast_cache:
            plane = self.data.inputs[index, :, :, 0]
            self._breast_cache[index] = np.argwhere(plane > self.breast_level)
        return self._breast_cache[index]

    def _augment(self, patch: np.ndarray) -> np.ndarray:
        patch = np.rot90(patch, self.rng.integers(4))
        if self.rng.random() < 0.5:
            patch = patch[:, ::-1]
        contrast = self.rng.uniform(0.9, 1.1)
        brightness = self.rng.uniform(-0.05, 0.05)
        return np.ascontiguousarray(patch * contrast + brightness, dtype=np.float32)


class ImageBatches(keras.utils.PyDataset):
    """Whole prepared images of the given indices, shuffled, flipped top-bottom at random.

    A top-bottom flip keeps the chest wall on the left; left-right would not.
    """

    def __init__(self, data: PreparedSet, image_indices, settings: LesionSettings, seed: int):
        super().__init__()
        self.data = data
        self.indices = np.asarray(image_indices)
        self.batch = settings.image_batch
        self.rng = np.random.default_rng(seed)
        weights = class_weights(data.labels[self.indices])
        self.weights = {int(key): float(value) for key, value in weights.items()}
        self.order = self.rng.permutation(self.indices)

    def __len__(self) -> int:
        return int(np.ceil(len(self.indices) / self.batch))

    def on_epoch_end(self) -> None:
        self.order = self.rng.permutation(self.indices)

    def __getitem__(self, step):
        chosen = self.order[step * self.batch : (step + 1) * self.batch]
        images = self.data.inputs[chosen].copy()
        for slot in range(len(chosen)):
            if self.rng.random() < 0.5:
                images[slot] = images[slot, ::-1]
        labels = self.data.labels[chosen].astype(np.float32)
        weights = np.array([self.weights[int(label)] for label in labels], dtype=np.float32)
        return images, labels[:, None], weights


def cut_patch(image: np.ndarray, x: float, y: float, size: int) -> np.ndarray:
    """The ``size`` square of ``image`` (H, W, 1) centred on (x, y), background-padded."""
    height, width = image.shape[:2]
    left, top = int(round(x - size / 2)), int(round(y - size / 2))
    patch = np.full((size, size, 1), BACKGROUND, dtype=np.float32)
    x0, y0 = max(left, 0), max(top, 0)
    x1, y1 = min(left + size, width), min(top + size, height)
    if x1 > x0 and y1 > y0:
        patch[y0 - top : y1 - top, x0 - left : x1 - left] = image[y0:y1, x0:x1]
    return patch
