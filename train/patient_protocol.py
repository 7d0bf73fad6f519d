"""The honest protocol: stratified K-fold cross-validation grouped by patient.

Per fold: early-stopping validation drawn from training patients only; random
rotation/flip augmentation applied on the fly to training images only; every normal
image kept (class weights instead of dropping). Each image gets exactly one
out-of-fold probability, from the fold model that never saw its patient. Afterwards a
final model is trained on all images for the median of the folds' best epoch counts.

Any architecture trains here (an uncompiled one, lite0, is compiled by ``fit.new_model``),
on MIAS or on a dataset manifest (whose ``split`` column, when given, fixes the folds).
A finished fold writes ``OUT/folds/fold_K.json`` (its out-of-fold probabilities and
history) and is kept on a rerun with the same settings (resumable per fold).
"""

from __future__ import annotations

import dataclasses
import json
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from . import architectures
from .contract import ModelContract, save_model, write_contract
from .cv_report import cross_fitted_points, init_note
from .dataset import TrainingSet, as_training_set
from .fit import AugmentedBatches, best_epoch, callbacks, new_model, predict
from .images import mias_batch
from .initialise import initialise_from
from .metrics import evaluate, youden_threshold
from .mias import MiasDataset
from .plots import plot_roc, plot_training_curves
from .progress import EpochLog
from .protocols import class_weights, dataset_folds, validation_patients
from .report import write_metrics, write_predictions

DEFAULT_THRESHOLD = 0.5


@dataclass
class PatientSettings:
    """Knobs of the patient protocol (CLI flags map one to one)."""

    folds: int = 5
    epochs: int = 40
    image_size: int | None = None  # None: the architecture's own input size
    arch: str = architectures.DEFAULT_ARCHITECTURE
    seed: int = 0
    augment_copies: int = 16
    validation_fraction: float = 0.2
    train_final_model: bool = True
    #: a trained model.keras of the same architecture to start from (fine-tuning), or None.
    init: str | None = None


@dataclass
class FoldLog:
    """What one fold used: the isolation tests read this."""

    fold: int
    fit_indices: np.ndarray
    validation_indices: np.ndarray
    test_indices: np.ndarray
    augmented_indices: set[int] = field(default_factory=set)
    best_epoch: int = 0
    history: dict = field(default_factory=dict)


def _new_model(settings: PatientSettings, config, seed: int, log):
    model = new_model(settings.arch, config, seed)
    if settings.init is not None:
        copied = initialise_from(model, Path(settings.init))
        log(f"  start: {copied} layers' weights from {settings.init} (not ImageNet)")
    return model


def _check_resumable(out: Path, settings: PatientSettings) -> None:
    """Write ``OUT/settings.json``; refuse folds of a run with other settings."""
    path = out / "settings.json"
    written = json.dumps(dataclasses.asdict(settings), indent=2, default=str)
    if path.is_file() and any((out / "folds").glob("fold_*.json")):
        if json.loads(path.read_text()) != json.loads(written):
            raise ValueError(
                f"{out} holds folds of a run with other settings ({path}); resume with "
                "the same options or choose another --out"
            )
    (out / "folds").mkdir(parents=True, exist_ok=True)
    path.write_text(written)


def run_patient_protocol(
    dataset: TrainingSet | MiasDataset, out: Path, settings: PatientSettings, log=print
) -> tuple[dict, list[FoldLog]]:
    """Cross-validate, train the final model, and write every output to ``out``.

    Returns:
        (metrics dict as written to metrics.json, per-fold logs).

    Raises:
        ValueError: ``out`` holds folds of a run with other settings.
    """
    started = time.time()
    dataset = as_training_set(dataset)
    out.mkdir(parents=True, exist_ok=True)
    _check_resumable(out, settings)
    config = architectures.preprocess_for(settings.arch, settings.image_size)
    contract = ModelContract(arch=settings.arch, preprocess=config)
    records = dataset.records
    log(
        f"Patient protocol: {len(records)} images of {len({r.patient_id for r in records})} "
        f"patients, {settings.folds}-fold CV grouped by patient"
    )
    inputs = mias_batch(dataset, [record.reference for record in records], config, log)
    labels = np.array([r.label for r in records])
    patients = np.array([r.patient_id for r in records])

    # The fold checkpoints share one architecture and preprocessing: one contract for all.
    write_contract(out / "checkpoints" / "fold1.keras", contract)
    out_of_fold = np.full(len(records), np.nan)
    fold_of = np.zeros(len(records), dtype=int)
    fold_logs: list[FoldLog] = []
    folds = dataset_folds(records, settings.folds, settings.seed, log)
    for fold, (train_indices, test_indices) in enumerate(folds, start=1):
        fit_indices, validation_indices = validation_patients(
            records, train_indices, settings.validation_fraction, settings.seed + fold
        )
        fold_path = out / "folds" / f"fold_{fold}.json"
        if fold_path.is_file():
            saved = json.loads(fold_path.read_text())
            out_of_fold[test_indices] = saved["probabilities"]
            fold_of[test_indices] = fold
            fold_logs.append(
                FoldLog(
                    fold,
                    fit_indices,
                    validation_indices,
                    test_indices,
                    best_epoch=saved["best_epoch"],
                    history=saved["history"],
                )
            )
            log(f"Fold {fold}/{len(folds)}: done earlier, kept ({fold_path})")
            continue
        log(
            f"Fold {fold}/{len(folds)}: fit {len(fit_indices)} images, "
            f"validate {len(validation_indices)}, test {len(test_indices)}"
        )
        model = _new_model(settings, config, settings.seed + fold, log)
        batches = AugmentedBatches(
            inputs,
            labels,
            fit_indices,
            class_weights(labels[fit_indices]),
            settings.augment_copies,
            seed=settings.seed + 1000 * fold,
        )
        history = model.fit(
            batches,
            validation_data=(inputs[validation_indices], labels[validation_indices]),
            epochs=settings.epochs,
            callbacks=[
                *callbacks(out / "checkpoints" / f"fold{fold}.keras"),
                EpochLog(f"  fold {fold}/{len(folds)}", settings.epochs, log),
            ],
            verbose=0,
        )
        out_of_fold[test_indices] = predict(model, inputs[test_indices])
        fold_of[test_indices] = fold
        fold_log = FoldLog(
            fold=fold,
            fit_indices=fit_indices,
            validation_indices=validation_indices,
            test_indices=test_indices,
            augmented_indices=set(batches.augmented_indices),
            best_epoch=best_epoch(history),
            history={
                "name": f"fold {fold}",
                **{key: [float(v) for v in values] for key, values in history.history.items()},
            },
        )
        fold_logs.append(fold_log)
        _save_fold(fold_path, out_of_fold[test_indices], fold_log)

    metrics = _cv_metrics(labels, out_of_fold, patients, fold_of, fold_logs, settings)
    metrics["operating_points_cross_fitted"] = cross_fitted_points(labels, out_of_fold, fold_of)
    metrics.update(init_note(settings))
    log(
        f"Out-of-fold AUC {metrics['auc']:.3f} (95% CI {metrics['auc_ci95'][0]:.3f}-"
        f"{metrics['auc_ci95'][1]:.3f}); accuracy {metrics['accuracy']:.3f} vs always-normal "
        f"{metrics['always_normal_accuracy']:.3f}"
    )

    histories = [fold_log.history for fold_log in fold_logs]
    if settings.train_final_model:
        final_epochs = metrics["final_model"]["epochs"]
        log(f"Final model: all {len(records)} images, {final_epochs} epochs (median best epoch)")
        model = _new_model(settings, config, settings.seed, log)
        every_image = np.arange(len(records))
        history = model.fit(
            AugmentedBatches(
                inputs,
                labels,
                every_image,
                class_weights(labels),
                settings.augment_copies,
                seed=settings.seed,
            ),
            epochs=final_epochs,
            verbose=0,
            callbacks=[EpochLog("  final model", final_epochs, log)],
        )
        save_model(model, out / "model.keras", contract)
        histories.append({"name": "final", **history.history})

    metrics["elapsed_seconds"] = round(time.time() - started, 1)
    write_metrics(metrics, out / "metrics.json")
    write_predictions(
        [
            {
                "image": record.reference,
                "patient": record.patient_id,
                "fold": int(fold_of[index]),
                "label": record.label,
                "probability": float(out_of_fold[index]),
            }
            for index, record in enumerate(records)
        ],
        out / "predictions.csv",
    )
    plot_roc(
        [
            {
                "name": "out-of-fold",
                "labels": labels,
                "probabilities": out_of_fold,
                "auc": metrics["auc"],
                "ci": metrics["auc_ci95"],
            }
        ],
        out / "roc.png",
        f"Patient-level {settings.folds}-fold CV (n={len(records)} images)",
    )
    plot_training_curves(histories, out / "training_curves.png", "Patient protocol")
    return metrics, fold_logs


def _save_fold(path: Path, probabilities: np.ndarray, fold_log: FoldLog) -> None:
    """A finished fold's results, written whole (a rerun keeps the fold)."""
    partial = path.with_name(path.name + ".partial")
    partial.write_text(
        json.dumps(
            {
                "probabilities": [float(value) for value in probabilities],
                "best_epoch": fold_log.best_epoch,
                "history": fold_log.history,
            }
        )
    )
    partial.replace(path)


def _cv_metrics(labels, out_of_fold, patients, fold_of, fold_logs, settings) -> dict:
    metrics = {
        "protocol": "patient",
        "description": (
            f"stratified {settings.folds}-fold CV grouped by patient; augmentation only on "
            "training folds; early stopping on training patients; class weights"
        ),
        "settings": {key: value for key, value in vars(settings).items()},
        "n_images": int(len(labels)),
        "n_patients": int(len(set(patients.tolist()))),
        **evaluate(labels, out_of_fold, patients, DEFAULT_THRESHOLD, seed=settings.seed),
        "threshold_method": (
            "fixed 0.5, chosen before looking at results (class-weighted training "
            "balances the two classes)"
        ),
    }
    youden = youden_threshold(labels, out_of_fold)
    metrics["youden_on_out_of_fold"] = {
        "note": "threshold tuned on these same predictions: optimistic",
        **evaluate(labels, out_of_fold, patients, youden, seed=settings.seed),
    }
    per_fold = []
    for fold_log in fold_logs:
        test = fold_log.test_indices
        fold_metrics = evaluate(labels[test], out_of_fold[test], patients[test], seed=0)
        per_fold.append(
            {
                "fold": fold_log.fold,
                "auc": fold_metrics["auc"],
                "accuracy": fold_metrics["accuracy"],
                "best_epoch": fold_log.best_epoch,
                "n_test": int(len(test)),
            }
        )
    metrics["per_fold"] = per_fold
    metrics["final_model"] = {
        "epochs": int(np.median([fold_log.best_epoch for fold_log in fold_logs])),
        "epochs_rule": "median of the folds' best epochs (lowest val_loss)",
    }
    return metrics
