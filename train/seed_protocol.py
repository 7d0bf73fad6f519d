"""The seed study's protocol, reproduced as published, with its leak counted.

One sample per Info.txt row (NORM = 0, else 1); the first 84 NORM rows dropped; every
kept row's image rotated at N evenly spaced angles (180 in the study: 0, 2, ..., 358);
then a random 80/20 train/test split of the augmented set (``random_state=42``) and
``validation_split=0.2`` inside Keras. Rotated twins of one mammogram therefore sit in
both training and test. We count them, score the test images whose source image never
reached training, and score the 84 dropped normal images the model never saw.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import architectures
from .augment import rotate
from .contract import ModelContract, save_model, write_contract
from .fit import best_epoch, callbacks, new_model, predict
from .images import load_model_inputs
from .metrics import classification_metrics, evaluate
from .mias import MiasDataset, patient_of
from .model import BATCH_SIZE
from .plots import plot_roc, plot_training_curves
from .protocols import (
    SEED_FULL_ROTATIONS,
    SEED_VALIDATION_SPLIT,
    count_leak,
    seed_rows,
    seed_samples,
    seed_split,
)
from .report import write_metrics, write_predictions

THRESHOLD = 0.5


@dataclass
class SeedSettings:
    """Knobs of the seed protocol (CLI flags map one to one)."""

    rotations: int = SEED_FULL_ROTATIONS
    epochs: int = 50
    image_size: int | None = None  # None: the architecture's own input size
    arch: str = architectures.DEFAULT_ARCHITECTURE
    seed: int = 0


def run_seed_protocol(dataset: MiasDataset, out: Path, settings: SeedSettings, log=print) -> dict:
    """Train and evaluate as the seed did; write outputs to ``out``; return metrics."""
    started = time.time()
    out.mkdir(parents=True, exist_ok=True)
    config = architectures.preprocess_for(settings.arch, settings.image_size)
    contract = ModelContract(arch=settings.arch, preprocess=config)
    kept, dropped = seed_rows(dataset.rows)
    samples = seed_samples(kept, settings.rotations)
    log(
        f"Seed protocol: {len(kept)} rows kept, {len(dropped)} NORM rows dropped, "
        f"{settings.rotations} rotations -> {len(samples)} samples "
        f"(full scale: {SEED_FULL_ROTATIONS} rotations)"
    )
    base = load_model_inputs(dataset, [row.reference for row in kept + dropped], config, log)
    inputs = np.stack([rotate(base[sample.reference], sample.angle) for sample in samples])
    labels = np.array([sample.label for sample in samples], dtype=np.float32)
    train_indices, test_indices = seed_split(samples)

    # Keras' validation_split takes the *last* 20% of the training arrays, unshuffled.
    fit_count = int(len(train_indices) * (1 - SEED_VALIDATION_SPLIT))
    fit_indices = train_indices[:fit_count]
    model = new_model(settings.arch, config, settings.seed)
    write_contract(out / "checkpoints" / "best.keras", contract)
    history = model.fit(
        inputs[train_indices],
        labels[train_indices],
        validation_split=SEED_VALIDATION_SPLIT,
        epochs=settings.epochs,
        batch_size=BATCH_SIZE,
        callbacks=callbacks(out / "checkpoints" / "best.keras"),
        verbose=2,
    )
    save_model(model, out / "model.keras", contract)

    test_probabilities = predict(model, inputs[test_indices])
    fit_probabilities = predict(model, inputs[fit_indices])
    references = [sample.reference for sample in samples]
    leak, unseen = count_leak(
        [references[i] for i in fit_indices], [references[i] for i in test_indices]
    )
    patients = np.array([sample.patient_id for sample in samples])
    dropped_inputs = np.stack([base[row.reference] for row in dropped])
    dropped_probabilities = predict(model, dropped_inputs)

    metrics = {
        "protocol": "seed",
        "description": (
            "seed study as published: rows labelled, first 84 NORM rows dropped, every row "
            "rotated, random 80/20 split of the augmented set (random_state=42), "
            "validation_split=0.2"
        ),
        "settings": vars(settings),
        "scale": {
            "rotations": settings.rotations,
            "full_scale_rotations": SEED_FULL_ROTATIONS,
            "samples": len(samples),
            "full_scale_samples": len(kept) * SEED_FULL_ROTATIONS,
            "kept_rows": len(kept),
            "dropped_normal_rows": len(dropped),
        },
        "epochs_run": len(history.history["loss"]),
        "best_epoch": best_epoch(history),
        "leak": {
            **leak.as_dict(),
            "counted_against": "the samples the weights were fitted on (train minus Keras' "
            "validation_split)",
        },
        "test": evaluate(
            labels[test_indices],
            test_probabilities,
            patients[test_indices],
            THRESHOLD,
            seed=settings.seed,
        ),
        "fit": classification_metrics(labels[fit_indices], fit_probabilities, THRESHOLD),
        "test_source_absent_from_training": (
            classification_metrics(
                labels[test_indices][unseen], test_probabilities[unseen], THRESHOLD
            )
            if unseen.any()
            else None
        ),
        "dropped_normals_unrotated": {
            "note": "the 84 NORM images the seed discarded; never seen in training; "
            "accuracy here is specificity",
            **classification_metrics(np.zeros(len(dropped)), dropped_probabilities, THRESHOLD),
        },
        "elapsed_seconds": round(time.time() - started, 1),
    }
    write_metrics(metrics, out / "metrics.json")
    rows = [
        {
            "image": references[i],
            "patient": samples[i].patient_id,
            "fold": "",
            "label": int(labels[i]),
            "probability": float(p),
            "angle": samples[i].angle,
            "split": "test",
            "source_in_training": bool(not unseen[k]),
        }
        for k, (i, p) in enumerate(zip(test_indices, test_probabilities, strict=True))
    ] + [
        {
            "image": row.reference,
            "patient": patient_of(row.reference),
            "fold": "",
            "label": 0,
            "probability": float(p),
            "angle": 0.0,
            "split": "dropped_normal",
            "source_in_training": False,
        }
        for row, p in zip(dropped, dropped_probabilities, strict=True)
    ]
    write_predictions(rows, out / "predictions.csv", ["angle", "split", "source_in_training"])
    plot_roc(
        [
            {
                "name": "seed test split",
                "labels": labels[test_indices],
                "probabilities": test_probabilities,
                "auc": metrics["test"]["auc"],
                "ci": metrics["test"]["auc_ci95"],
            }
        ],
        out / "roc.png",
        f"Seed protocol, {settings.rotations} rotations (leaky split)",
    )
    plot_training_curves(
        [{"name": "seed", **history.history}], out / "training_curves.png", "Seed protocol"
    )
    log(
        f"Seed test accuracy {metrics['test']['accuracy']:.3f}; "
        f"{leak.test_with_same_image_in_train}/{leak.test_samples} test samples have a rotated "
        f"twin in training; specificity on the {len(dropped)} dropped normals "
        f"{metrics['dropped_normals_unrotated']['specificity']:.3f}"
    )
    return metrics
