"""The lesion-aware recipe under cross-validation: patch stage, then whole-image tuning.

Under the same patient-grouped 5-fold split as the patient protocol (``patient_folds`` with
seed 0; a manifest's ``split`` column fixes the folds instead), each fold:

1. prepares every image once with the architecture's preprocessing contract
   (``mammo_edge.images.preprocess.prepare``: breast crop, chest wall left, 512x256;
   :func:`train.lesion_data.prepare_dataset`), lesion circles (MIAS: Info.txt's, turned to
   a top-left origin; a manifest's x, y, radius or mask) mapped through the image's crop
   and flip;
2. trains the patch model, then the whole-image model, on the *fold's training images
   only* (:mod:`train.lesion_stages`);
3. scores the test fold's images once (probability and heatmap peak).

Every number of the schedule is fixed in :class:`train.lesion_settings.LesionSettings`
before any test image is seen; nothing is tuned on out-of-fold results. Folds write their
predictions to ``OUT/folds/fold_K.csv`` and a finished fold is skipped on a rerun
(resumable). Images without lesion geometry (a manifest without it, abnormal MIAS images
without coordinates) still train the whole-image stage on their label; without any geometry
the patch stage is skipped, as ``--no-lesions`` does. ``init`` starts both stages from a
trained lite0 model's Keras weights instead of ImageNet (fine-tuning).

Ablations switch one ingredient off (``--no-pretrained``, ``--no-lesions``,
``--no-breast-crop``, ``--half-resolution``); the left-right pair feature is evaluated
on the out-of-fold scores by :mod:`train.pairs`.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import time
from pathlib import Path

import keras
import numpy as np

from .architectures import lite0
from .contract import ModelContract, write_contract
from .cv_report import write_cv_metrics
from .dataset import TrainingSet, as_training_set
from .lesion_data import PreparedSet, prepare_dataset
from .lesion_settings import LesionSettings
from .lesion_stages import heatmap_peak, score, train_model
from .mias import MiasDataset
from .protocols import dataset_folds

FOLD_COLUMNS = ["image", "patient", "fold", "label", "probability", "peak_x", "peak_y"]
PROTOCOL_NOTE = (
    "patient-grouped {folds}-fold CV (a manifest's split column, else stratified by label); "
    "per fold: lesion patches from the training images' lesion geometry, then whole-image "
    "tuning; schedule fixed in advance"
)


def run_lesion_protocol(
    dataset: TrainingSet | MiasDataset, out: Path, settings: LesionSettings, log=print
):
    """Cross-validate the recipe (resumable per fold), then train the final model.

    Writes ``OUT/folds/fold_K.csv`` per fold, ``OUT/predictions.csv`` (every image once,
    out of fold), ``OUT/heatmaps.npz``, ``OUT/settings.json``, ``OUT/metrics.json``,
    ``OUT/roc.png`` and, unless disabled, ``OUT/model.keras`` with ``model_contract.json``.
    Returns the rows of ``predictions.csv``.

    Raises:
        ValueError: ``OUT`` holds folds of a run with other settings.
    """
    dataset = as_training_set(dataset)
    out.mkdir(parents=True, exist_ok=True)
    (out / "folds").mkdir(exist_ok=True)
    _write_settings(out, settings)
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
        done = _read_fold(out, fold, log)
        if done is None:
            log(
                f"fold {fold}/{len(folds)}: {len(train_indices)} training images, "
                f"{len(test_indices)} test"
            )
            done = _run_fold(data, records, out, settings, fold, train_indices, test_indices, log)
            log(f"fold {fold}: finished at {time.time() - started:.0f} s")
        heatmaps.update(done)
    rows = _gather_predictions(out, records, len(folds), heatmaps)
    log(f"cross-validation finished at {time.time() - started:.0f} s")
    write_cv_metrics(
        dataset, out, settings, time.time() - started, PROTOCOL_NOTE.format(folds=len(folds))
    )
    if settings.train_final_model and _train_final_model(data, len(records), out, settings, log):
        log(f"final model written at {time.time() - started:.0f} s")
    return rows


def _write_settings(out: Path, settings: LesionSettings) -> None:
    """``OUT/settings.json``, refusing folds of a run with other settings."""
    written = json.dumps(dataclasses.asdict(settings), indent=2)
    settings_path = out / "settings.json"
    if settings_path.is_file() and any((out / "folds").glob("fold_*.csv")):
        if json.loads(settings_path.read_text()) != json.loads(written):
            raise ValueError(
                f"{out} holds folds of a run with other settings ({settings_path}); "
                "resume with the same options or choose another --out"
            )
    settings_path.write_text(written)


def _read_fold(out: Path, fold: int, log) -> dict[int, np.ndarray] | None:
    """A fold finished by an earlier run: its heatmaps by image index (None: not done)."""
    fold_path = out / "folds" / f"fold_{fold}.csv"
    heat_path = out / "folds" / f"fold_{fold}_heatmaps.npz"
    if not (fold_path.is_file() and heat_path.is_file()):
        return None
    log(f"fold {fold}: done earlier, kept ({fold_path})")
    saved = np.load(heat_path)
    return {int(key): saved[key] for key in saved.files}


def _run_fold(
    data: PreparedSet,
    records,
    out: Path,
    settings: LesionSettings,
    fold: int,
    train_indices,
    test_indices,
    log,
) -> dict[int, np.ndarray]:
    """Train on ``train_indices``, score ``test_indices``, write the fold's files.

    Returns the test images' heatmaps by image index.
    """
    model, _ = train_model(data, train_indices, settings, settings.seed + fold, log)
    probabilities, maps = score(model, data.inputs[test_indices])
    # The fold's weights, kept so inference-time variants (breast-only windows,
    # test-time flips) can be scored later on the same models without retraining.
    model.save_weights(out / "folds" / f"fold_{fold}.weights.h5")
    rows = []
    heatmaps = {}
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
    heat_path = out / "folds" / f"fold_{fold}_heatmaps.npz"
    np.savez_compressed(heat_path, **{str(index): heatmaps[int(index)] for index in test_indices})
    _write_csv(out / "folds" / f"fold_{fold}.csv", rows)
    keras.backend.clear_session()
    return heatmaps


def _gather_predictions(out: Path, records, folds: int, heatmaps: dict) -> list[dict]:
    """Every fold's rows in the dataset's order, written as ``OUT/predictions.csv``."""
    rows = []
    for fold in range(1, folds + 1):
        with (out / "folds" / f"fold_{fold}.csv").open(newline="") as handle:
            rows.extend(csv.DictReader(handle))
    order = {record.reference: index for index, record in enumerate(records)}
    rows.sort(key=lambda row: order[row["image"]])
    _write_csv(out / "predictions.csv", rows)
    np.savez_compressed(
        out / "heatmaps.npz", **{records[index].reference: heatmaps[index] for index in heatmaps}
    )
    return rows


def _train_final_model(
    data: PreparedSet, count: int, out: Path, settings: LesionSettings, log
) -> bool:
    """``OUT/model.keras`` trained on all ``count`` images; False when kept from before."""
    final_path = out / "model.keras"
    if final_path.is_file():
        log(f"final model: done earlier, kept ({final_path})")
        return False
    log("final model: all images")
    model, _ = train_model(data, np.arange(count), settings, settings.seed, log)
    # An uncompiled view of the same layers: saved without the optimizer's state
    # (14 MB instead of 39 MB).
    inference = keras.Model(model.inputs, model.outputs, name=model.name)
    inference.save(out / "model.keras.partial.keras")
    (out / "model.keras.partial.keras").rename(final_path)
    write_contract(
        final_path,
        ModelContract(
            arch=lite0.NAME, preprocess=settings.preprocess(), outputs=dict(lite0.OUTPUTS)
        ),
    )
    return True


def _write_csv(path: Path, rows: list[dict]) -> None:
    partial = path.with_name(path.name + ".partial")
    with partial.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=FOLD_COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    partial.replace(path)
