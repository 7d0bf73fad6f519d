"""The decision threshold, chosen on out-of-fold predictions of the training protocol.

``predictions.csv`` (written by ``python -m train``) holds one row per image with the
probability given by the fold model that did not train on that image's patient, so a
threshold chosen there is not tuned on the images that set the weights.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mammo_edge.evaluation import metrics as runtime_metrics

from .errors import ExportError

PREDICTION_COLUMNS = ("image", "patient", "fold", "label", "probability")


@dataclass(frozen=True)
class OutOfFoldPredictions:
    """Rows of predictions.csv: image reference, patient, fold, label (0/1), probability."""

    images: tuple[str, ...]
    patients: np.ndarray
    folds: np.ndarray
    labels: np.ndarray
    probabilities: np.ndarray
    source: str


@dataclass(frozen=True)
class ThresholdChoice:
    """A decision threshold (abnormal when probability >= threshold) and how it was found."""

    threshold: float
    method: str
    sensitivity: float
    specificity: float


def read_predictions(path: Path) -> OutOfFoldPredictions:
    """Read and validate predictions.csv.

    Raises:
        ExportError: the file is missing, lacks a column, or holds a bad value (row named).
    """
    path = Path(path)
    if not path.is_file():
        raise ExportError(f"{path}: no such file; pass the predictions.csv of a training run")
    with path.open(newline="") as handle:
        reader = csv.DictReader(handle)
        missing = [c for c in PREDICTION_COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            raise ExportError(
                f"{path}: missing column(s) {', '.join(missing)}; "
                f"expected {', '.join(PREDICTION_COLUMNS)}"
            )
        rows = list(reader)
    if not rows:
        raise ExportError(f"{path}: no prediction rows")
    images, patients, folds, labels, probabilities = [], [], [], [], []
    for line, row in enumerate(rows, start=2):
        try:
            label = int(row["label"])
            probability = float(row["probability"])
            patients.append(row["patient"])
            folds.append(int(row["fold"]))
        except ValueError as error:
            raise ExportError(f"{path} line {line}: {error}") from None
        if label not in (0, 1) or not 0.0 <= probability <= 1.0:
            raise ExportError(
                f"{path} line {line}: label must be 0/1 and probability in [0, 1], "
                f"got {row['label']!r}, {row['probability']!r}"
            )
        images.append(row["image"])
        labels.append(label)
        probabilities.append(probability)
    if len(set(labels)) < 2:
        raise ExportError(f"{path}: needs both normal and abnormal images to pick a threshold")
    # MIAS numbers its patients; a dataset manifest may name them (P_00001).
    numeric = all(patient.strip().isdigit() for patient in patients)
    return OutOfFoldPredictions(
        images=tuple(images),
        patients=np.asarray([int(p) for p in patients] if numeric else patients),
        folds=np.asarray(folds),
        labels=np.asarray(labels),
        probabilities=np.asarray(probabilities, dtype=np.float64),
        source=str(path),
    )


def youden_threshold(predictions: OutOfFoldPredictions) -> ThresholdChoice:
    """The threshold maximising Youden's J = sensitivity + specificity - 1.

    The cut is placed at the lowest out-of-fold probability still called abnormal (ties:
    the highest such cut), the same rule as ``sklearn.metrics.roc_curve``; the maths is
    :func:`mammo_edge.evaluation.metrics.youden_threshold`.
    """
    point = runtime_metrics.youden_threshold(predictions.labels, predictions.probabilities)
    return _choice(point, predictions, "Youden J maximiser")


def _choice(point, predictions: OutOfFoldPredictions, rule: str) -> ThresholdChoice:
    folds = len(set(predictions.folds.tolist()))
    return ThresholdChoice(
        threshold=point.threshold,
        method=(
            f"{rule} on out-of-fold predictions of {folds}-fold patient-grouped CV "
            f"({len(predictions.images)} images); abnormal when probability >= threshold"
        ),
        sensitivity=point.sensitivity,
        specificity=point.specificity,
    )


def read_metrics(path: Path) -> dict:
    """The CV metrics dict of a training run (metrics.json), stored whole in the model."""
    path = Path(path)
    if not path.is_file():
        raise ExportError(f"{path}: no such file; pass the metrics.json of a training run")
    try:
        metrics = json.loads(path.read_text())
    except json.JSONDecodeError as error:
        raise ExportError(f"{path}: not valid JSON ({error})") from None
    if not isinstance(metrics, dict):
        raise ExportError(f"{path}: expected a JSON object, got {type(metrics).__name__}")
    return metrics


def sensitivity_threshold(predictions: OutOfFoldPredictions, target: float) -> ThresholdChoice:
    """The highest threshold whose out-of-fold sensitivity is at least ``target`` (triage)."""
    point = runtime_metrics.specificity_at_sensitivity(
        predictions.labels, predictions.probabilities, target
    )
    rule = f"triage operating point: highest threshold with sensitivity >= {target:.2f}"
    return _choice(point, predictions, rule)


def choose_threshold(predictions: OutOfFoldPredictions, rule: str) -> ThresholdChoice:
    """Apply a threshold rule: ``youden`` or ``sensitivity:T`` with 0 < T <= 1."""
    if rule == "youden":
        return youden_threshold(predictions)
    name, _, value = rule.partition(":")
    try:
        target = float(value)
    except ValueError:
        target = float("nan")
    if name != "sensitivity" or not 0.0 < target <= 1.0:
        raise ExportError(
            f"--threshold-rule {rule!r}: use 'youden' or 'sensitivity:T' with 0 < T <= 1"
        )
    return sensitivity_threshold(predictions, target)
