"""The lesion-aware recipe: patch classifier from Info.txt circles, then whole-image tuning.

Under the same patient-grouped 5-fold split as the patient protocol (``patient_folds`` with
seed 0; a manifest's ``split`` column fixes the folds instead), each fold:

1. prepares every image once with the architecture's preprocessing contract
   (``mammo_edge.preprocess.prepare``: breast crop, chest wall left, 512x256);
2. trains the patch model on 128-pixel patches of the *fold's training images only*:
   lesion patches centred (with jitter) on the lesion circles (MIAS: Info.txt's, turned
   to a top-left origin; a manifest's x, y, radius or mask; mapped through the image's crop
   and flip), normal patches anywhere in normal breasts
   and away from lesions in abnormal ones, balanced 1:1, flips and 90-degree turns;
3. fine-tunes the whole-image model (same weights, top-k pooled lesion map) on the
   training images' labels, abnormal images without coordinates included;
4. scores the test fold's images once (probability and heatmap peak).

Every number of the schedule is fixed in :class:`LesionSettings` before any test image is
seen; nothing is tuned on out-of-fold results. Folds write their predictions to
``OUT/folds/fold_K.csv`` and a finished fold is skipped on a rerun (resumable). Images
without lesion geometry (a manifest without it, abnormal MIAS images without coordinates)
still train the whole-image stage on their label; without any geometry the patch stage is
skipped, as ``--no-lesions`` does. ``init`` starts both stages from a trained lite0 model's
Keras weights instead of ImageNet (fine-tuning).

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

from mammo_edge.preprocess import Geometry, PreprocessConfig

from .architectures import lite0
from .contract import ModelContract, write_contract
from .cv_report import write_cv_metrics
from .dataset import TrainingSet, as_training_set
from .initialise import initialise_from
from .lesion_data import (
    BACKGROUND,
    ImageBatches,
    Lesion,
    PatchBatches,
    PreparedSet,
    cut_patch,
    prepare_dataset,
)
from .mias import MiasDataset
from .progress import EpochLog
from .protocols import dataset_folds

__all__ = [
    "BACKGROUND",
    "ImageBatches",
    "Lesion",
    "LesionSettings",
    "PatchBatches",
    "PreparedSet",
    "cut_patch",
    "heatmap_peak",
    "prepare_dataset",
    "run_lesion_protocol",
    "score",
    "train_model",
]


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
    #: model-input height (width = half of it); None: the architecture's 512x256.
    image_size: int | None = None
    #: a lite0 model.keras to start from instead of ImageNet (fine-tuning), or None.
    init: str | None = None

    def preprocess(self) -> PreprocessConfig:
        config = lite0.default_preprocess()
        if self.image_size is not None:
            config = dataclasses.replace(
                config,
                input_size=self.image_size,
                input_height=self.image_size,
                input_width=self.image_size // 2,
            )
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


def train_model(data: PreparedSet, train_indices, settings: LesionSettings, seed: int, log=print):
    """Run both stages on ``train_indices``; returns (whole-image model, PatchBatches|None).

    The patch stage runs when ``settings.lesions`` is on and the training images hold at
    least one lesion circle; otherwise only the whole-image stage learns (image labels).
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
    patches = None
    allowed = set(int(index) for index in train_indices)
    has_lesions = any(lesion.image_index in allowed for lesion in data.lesions)
    if settings.lesions and not has_lesions:
        log("    patches: skipped, no lesion geometry among the training images")
    if settings.lesions and has_lesions:
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
    if image_model is None:
        image_model = networks.image_model(config)
    image_model.compile(
        keras.optimizers.Adam(settings.image_learning_rate),
        loss=["binary_crossentropy", None],
    )
    started = time.time()
    # Without patches, their compute goes to whole-image epochs (as --no-lesions).
    epochs = settings.image_epochs if patches is not None else settings.image_epochs + 5
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


def run_lesion_protocol(
    dataset: TrainingSet | MiasDataset, out: Path, settings: LesionSettings, log=print
):
    """Cross-validate the recipe (resumable per fold), then train the final model.

    Writes ``OUT/folds/fold_K.csv`` per fold, ``OUT/predictions.csv`` (every image once,
    out of fold), ``OUT/heatmaps.npz``, ``OUT/settings.json``, ``OUT/metrics.json``,
    ``OUT/roc.png`` and, unless disabled, ``OUT/model.keras`` with ``model_contract.json``.

    Raises:
        ValueError: ``OUT`` holds folds of a run with other settings.
    """
    dataset = as_training_set(dataset)
    out.mkdir(parents=True, exist_ok=True)
    (out / "folds").mkdir(exist_ok=True)
    written = json.dumps(dataclasses.asdict(settings), indent=2)
    settings_path = out / "settings.json"
    if settings_path.is_file() and any((out / "folds").glob("fold_*.csv")):
        if json.loads(settings_path.read_text()) != json.loads(written):
            raise ValueError(
                f"{out} holds folds of a run with other settings ({settings_path}); "
                "resume with the same options or choose another --out"
            )
    settings_path.write_text(written)
    config = settings.preprocess()
    started = time.time()
    data = prepare_dataset(dataset, config)
    log(
        f"prepared {len(data.labels)} images at {config.height}x{config.width} "
        f"({len(data.lesions)} lesion circles) in {time.time() - started:.0f} s"
    )
    records = dataset.records
    heatmaps: dict[int, np.ndarray] = {}
    folds = dataset_folds(records, settings.folds, settings.seed, log)
    for fold, (train_indices, test_indices) in enumerate(folds, start=1):
        fold_path = out / "folds" / f"fold_{fold}.csv"
        heat_path = out / "folds" / f"fold_{fold}_heatmaps.npz"
        if fold_path.is_file() and heat_path.is_file():
            log(f"fold {fold}: done earlier, kept ({fold_path})")
            saved = np.load(heat_path)
            heatmaps.update({int(key): saved[key] for key in saved.files})
            continue
        log(
            f"fold {fold}/{len(folds)}: {len(train_indices)} training images, "
            f"{len(test_indices)} test"
        )
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
    for fold in range(1, len(folds) + 1):
        with (out / "folds" / f"fold_{fold}.csv").open(newline="") as handle:
            rows.extend(csv.DictReader(handle))
    order = {record.reference: index for index, record in enumerate(records)}
    rows.sort(key=lambda row: order[row["image"]])
    _write_csv(out / "predictions.csv", rows)
    np.savez_compressed(
        out / "heatmaps.npz", **{records[index].reference: heatmaps[index] for index in heatmaps}
    )
    log(f"cross-validation finished at {time.time() - started:.0f} s")
    write_cv_metrics(
        dataset,
        out,
        settings,
        time.time() - started,
        f"patient-grouped {len(folds)}-fold CV (a manifest's split column, else stratified "
        "by label); per fold: lesion patches from the training images' lesion geometry, "
        "then whole-image tuning; schedule fixed in advance",
    )
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
