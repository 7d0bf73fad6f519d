"""The lesion-aware recipe: patch classifier from Info.txt circles, then whole-image tuning.

Under the same patient-grouped 5-fold split as the patient protocol (``patient_folds`` with
seed 0), each fold:

1. prepares every image once with the architecture's preprocessing contract
   (``mammo_edge.preprocess.prepare``: breast crop, chest wall left, 512x256);
2. trains the patch model on 128-pixel patches of the *fold's training images only*:
   lesion patches centred (with jitter) on the Info.txt circles (origin bottom-left,
   mapped through the image's crop and flip), normal patches anywhere in normal breasts
   and away from lesions in abnormal ones, balanced 1:1, flips and 90-degree turns;
3. fine-tunes the whole-image model (same weights, top-k pooled lesion map) on the
   training images' labels, abnormal images without coordinates included;
4. scores the test fold's images once (probability and heatmap peak).

Every number of the schedule is fixed in :class:`LesionSettings` before any test image is
seen; nothing is tuned on out-of-fold results. Folds write their predictions to
``OUT/folds/fold_K.csv`` and a finished fold is skipped on a rerun (resumable).

Ablations switch one ingredient off (``--no-pretrained``, ``--no-lesions``,
``--no-breast-crop``, ``--half-resolution``); the left-right pair feature is evaluated
on the out-of-fold scores by :mod:`train.pairs`.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import time
from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np

from mammo_edge.preprocess import Geometry, PreprocessConfig, prepare

from .architectures import lite0
from .contract import ModelContract, write_contract
from .mias import MiasDataset
from .protocols import class_weights, patient_folds

BACKGROUND = -1.0  # what black (blanked) pixels become after Lite's scaling


@dataclass
class LesionSettings:
    """The whole schedule, fixed before training (CLI flags map one to one)."""

    folds: int = 5
    seed: int = 0
    patch_epochs: int = 4
    patches_per_epoch: int = 1600
    patch_batch: int = 32
    patch_learning_rate: float = 1e-4
    image_epochs: int = 2
    image_batch: int = 8
    image_learning_rate: float = 2e-5
    pretrained: bool = True
    lesions: bool = True
    breast_crop: bool = True
    half_resolution: bool = False
    train_final_model: bool = True

    def preprocess(self) -> PreprocessConfig:
        config = lite0.default_preprocess()
        if not self.breast_crop:
            config = dataclasses.replace(
                config,
                input_size=512,
                input_height=512,
                input_width=512,
                breast_crop=False,
                orientation="none",
            )
        if self.half_resolution:
            config = dataclasses.replace(
                config,
                input_size=config.input_size // 2,
                input_height=config.height // 2,
                input_width=config.width // 2,
            )
        return config

    def schedule_image_epochs(self) -> int:
        """Without lesion patches, the patch stage's compute goes to whole-image epochs."""
        return self.image_epochs if self.lesions else self.image_epochs + 5


@dataclass(frozen=True)
class Lesion:
    """One Info.txt circle in model-input pixels."""

    image_index: int
    x: float
    y: float
    radius: float
    abnormality_class: str


@dataclass
class PreparedSet:
    """Every image of the dataset, prepared once."""

    inputs: np.ndarray  # (N, H, W, 1) float32
    geometries: list[Geometry]
    lesions: list[Lesion]
    labels: np.ndarray
    patients: np.ndarray


def prepare_dataset(dataset: MiasDataset, config: PreprocessConfig) -> PreparedSet:
    """Prepare all images and map their lesion circles into model-input pixels."""
    records = dataset.records
    inputs = np.empty((len(records), config.height, config.width, 1), dtype=np.float32)
    geometries, lesions = [], []
    for index, record in enumerate(records):
        prepared = prepare(dataset.read_image(record.reference), config)
        inputs[index] = prepared.model_input
        geometry = prepared.geometry
        geometries.append(geometry)
        for row in record.rows:
            if row.x is None or row.radius is None:
                continue
            x, y = geometry.to_input(row.x, row.row_from_top)
            lesions.append(Lesion(index, x, y, row.radius / geometry.scale, row.abnormality_class))
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
        # without one, film background (gray <= 20, as in mammo_edge.preprocess) is excluded.
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


def train_model(data: PreparedSet, train_indices, settings: LesionSettings, seed: int, log=print):
    """Run both stages on ``train_indices``; returns (whole-image model, PatchBatches|None)."""
    keras.utils.set_random_seed(seed)
    networks = lite0.Networks(pretrained=settings.pretrained, seed=seed)
    config = settings.preprocess()
    patches = None
    if settings.lesions:
        patch_model = networks.patch_model()
        patch_model.compile(
            keras.optimizers.Adam(settings.patch_learning_rate),
            "binary_crossentropy",
            metrics=[keras.metrics.AUC(name="auc")],
        )
        patches = PatchBatches(data, train_indices, settings, seed)
        started = time.time()
        history = patch_model.fit(patches, epochs=settings.patch_epochs, verbose=0)
        log(
            f"    patches: {settings.patch_epochs} epochs in {time.time() - started:.0f} s, "
            f"last loss {history.history['loss'][-1]:.3f}, auc {history.history['auc'][-1]:.3f}"
        )
    image_model = networks.image_model(config)
    image_model.compile(
        keras.optimizers.Adam(settings.image_learning_rate),
        loss=["binary_crossentropy", None],
    )
    started = time.time()
    history = image_model.fit(
        ImageBatches(data, train_indices, settings, seed),
        epochs=settings.schedule_image_epochs(),
        verbose=0,
    )
    log(
        f"    images: {settings.schedule_image_epochs()} epochs in "
        f"{time.time() - started:.0f} s, last loss {history.history['loss'][-1]:.3f}"
    )
    return image_model, patches


def score(model: keras.Model, inputs: np.ndarray, batch: int = 8):
    """(probabilities (N,), heatmaps (N, h, w)) of prepared inputs."""
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


FOLD_COLUMNS = ["image", "patient", "fold", "label", "probability", "peak_x", "peak_y"]


def run_lesion_protocol(dataset: MiasDataset, out: Path, settings: LesionSettings, log=print):
    """Cross-validate the recipe (resumable per fold), then train the final model.

    Writes ``OUT/folds/fold_K.csv`` per fold, ``OUT/predictions.csv`` (every image once,
    out of fold), ``OUT/heatmaps.npz``, ``OUT/settings.json`` and, unless disabled,
    ``OUT/model.keras`` with ``model_contract.json``.
    """
    out.mkdir(parents=True, exist_ok=True)
    (out / "folds").mkdir(exist_ok=True)
    (out / "settings.json").write_text(json.dumps(dataclasses.asdict(settings), indent=2))
    config = settings.preprocess()
    started = time.time()
    data = prepare_dataset(dataset, config)
    log(
        f"prepared {len(data.labels)} images at {config.height}x{config.width} "
        f"({len(data.lesions)} lesion circles) in {time.time() - started:.0f} s"
    )
    records = dataset.records
    heatmaps: dict[int, np.ndarray] = {}
    for fold, (train_indices, test_indices) in enumerate(
        patient_folds(records, settings.folds, settings.seed), start=1
    ):
        fold_path = out / "folds" / f"fold_{fold}.csv"
        heat_path = out / "folds" / f"fold_{fold}_heatmaps.npz"
        if fold_path.is_file() and heat_path.is_file():
            log(f"fold {fold}: done earlier, kept ({fold_path})")
            saved = np.load(heat_path)
            heatmaps.update({int(key): saved[key] for key in saved.files})
            continue
        log(f"fold {fold}: {len(train_indices)} training images, {len(test_indices)} test")
        model, _ = train_model(data, train_indices, settings, settings.seed + fold, log)
        probabilities, maps = score(model, data.inputs[test_indices])
        # The fold's weights, kept so inference-time variants (breast-only windows,
        # test-time flips) can be scored later on the same models without retraining.
        model.save_weights(out / "folds" / f"fold_{fold}.weights.h5")
        rows = []
        for index, probability, heatmap in zip(test_indices, probabilities, maps, strict=True):
            peak_x, peak_y = heatmap_peak(heatmap, data.geometries[index])
            heatmaps[int(index)] = heatmap
            rows.append(
                {
                    "image": records[index].reference,
                    "patient": records[index].patient_id,
                    "fold": fold,
                    "label": records[index].label,
                    "probability": f"{probability:.6f}",
                    "peak_x": f"{peak_x:.1f}",
                    "peak_y": f"{peak_y:.1f}",
                }
            )
        np.savez_compressed(
            heat_path, **{str(index): heatmaps[int(index)] for index in test_indices}
        )
        _write_csv(fold_path, rows)
        log(f"fold {fold}: finished at {time.time() - started:.0f} s")
        keras.backend.clear_session()
    rows = []
    for fold in range(1, settings.folds + 1):
        with (out / "folds" / f"fold_{fold}.csv").open(newline="") as handle:
            rows.extend(csv.DictReader(handle))
    order = {record.reference: index for index, record in enumerate(records)}
    rows.sort(key=lambda row: order[row["image"]])
    _write_csv(out / "predictions.csv", rows)
    np.savez_compressed(
        out / "heatmaps.npz", **{records[index].reference: heatmaps[index] for index in heatmaps}
    )
    log(f"cross-validation finished at {time.time() - started:.0f} s")
    write_cv_metrics(dataset, out, settings, time.time() - started)
    if settings.train_final_model:
        final_path = out / "model.keras"
        if final_path.is_file():
            log(f"final model: done earlier, kept ({final_path})")
        else:
            log("final model: all images")
            model, _ = train_model(data, np.arange(len(records)), settings, settings.seed, log)
            # An uncompiled view of the same layers: saved without the optimizer's state
            # (14 MB instead of 39 MB).
            inference = keras.Model(model.inputs, model.outputs, name=model.name)
            inference.save(out / "model.keras.partial.keras")
            (out / "model.keras.partial.keras").rename(final_path)
            write_contract(
                final_path,
                ModelContract(
                    arch=lite0.NAME,
                    preprocess=config,
                    outputs=dict(lite0.OUTPUTS),
                ),
            )
            log(f"final model written at {time.time() - started:.0f} s")
    return rows


#: The triage operating point: the highest threshold whose out-of-fold sensitivity is at
#: least this (fixed before any result was seen; chosen on the out-of-fold predictions).
TRIAGE_SENSITIVITY = 0.90


def write_cv_metrics(dataset: MiasDataset, out: Path, settings: LesionSettings, elapsed: float):
    """``OUT/metrics.json``: the out-of-fold evaluation the model card and README quote."""
    from mammo_edge import metrics

    from .ablation import aligned, read_predictions, summarise

    records = dataset.records
    probabilities, folds = aligned(records, read_predictions(out / "predictions.csv"))
    labels = np.array([record.label for record in records])
    summary = summarise("lite0 lesion recipe", records, probabilities)
    point = metrics.specificity_at_sensitivity(labels, probabilities, TRIAGE_SENSITIVITY)
    counts = metrics.confusion_at(labels, probabilities, point.threshold)
    per_fold = [
        {
            "fold": int(fold),
            "n_test": int((folds == fold).sum()),
            "auc": metrics.roc_auc(labels[folds == fold], probabilities[folds == fold]),
        }
        for fold in np.unique(folds)
    ]
    result = {
        "protocol": "lesion",
        "description": (
            "patient-grouped stratified 5-fold CV (the seed CNN's folds); per fold: lesion "
            "patches from the training images' Info.txt circles, then whole-image tuning; "
            "schedule fixed in advance"
        ),
        "n": int(len(labels)),
        "n_abnormal": int(labels.sum()),
        "n_normal": int((labels == 0).sum()),
        "n_patients": int(len(set(record.patient_id for record in records))),
        "auc": summary.auc,
        "auc_ci95": list(summary.auc_ci95),
        "auc_ci_method": "percentile bootstrap over patients, 2000 replicates",
        "sensitivity_at_90_specificity": summary.sensitivity_at_90_specificity,
        "always_normal_accuracy": float((labels == 0).mean()),
        "threshold": point.threshold,
        "threshold_method": (
            f"highest threshold with out-of-fold sensitivity >= {TRIAGE_SENSITIVITY:.2f} "
            "(triage operating point; metrics at it are optimistic)"
        ),
        "sensitivity": counts.sensitivity,
        "specificity": counts.specificity,
        "accuracy": counts.accuracy,
        "balanced_accuracy": counts.balanced_accuracy,
        "confusion_matrix": counts.confusion_matrix,
        "per_class_auc": summary.per_class_auc,
        "per_tissue_auc": summary.per_tissue_auc,
        "per_fold": per_fold,
        "settings": dataclasses.asdict(settings),
        "elapsed_seconds": round(elapsed, 1),
    }
    from .report import write_metrics

    write_metrics(result, out / "metrics.json")
    return result


def _write_csv(path: Path, rows: list[dict]) -> None:
    partial = path.with_name(path.name + ".partial")
    with partial.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=FOLD_COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    partial.replace(path)


if __name__ == "__main__":
    from .cli import forward_deprecated

    raise SystemExit(
        forward_deprecated(
            "train.lesion_protocol", "fit", "--arch", "lite0", "--protocol", "lesion"
        )
    )
