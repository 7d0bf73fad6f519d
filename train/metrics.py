"""Evaluation: AUC with a patient-bootstrap CI, accuracy beside the always-normal baseline."""

from __future__ import annotations

import numpy as np
from sklearn.metrics import roc_auc_score, roc_curve

BOOTSTRAP_REPLICATES = 2000


def auc_with_patient_ci(
    labels: np.ndarray,
    probabilities: np.ndarray,
    patients: np.ndarray,
    replicates: int = BOOTSTRAP_REPLICATES,
    seed: int = 0,
) -> tuple[float, tuple[float, float]]:
    """ROC AUC and its 95% percentile bootstrap CI, resampling patients (not images).

    Resampling patients keeps a patient's correlated samples (two breasts, rotated
    copies) together, so the interval is not made falsely narrow by near-duplicates.
    """
    labels = np.asarray(labels)
    probabilities = np.asarray(probabilities, dtype=float)
    patients = np.asarray(patients)
    if len(set(labels.tolist())) < 2:
        return float("nan"), (float("nan"), float("nan"))
    auc = float(roc_auc_score(labels, probabilities))
    unique_patients, inverse = np.unique(patients, return_inverse=True)
    members = [np.flatnonzero(inverse == index) for index in range(len(unique_patients))]
    rng = np.random.default_rng(seed)
    estimates = []
    for _ in range(replicates):
        chosen = rng.integers(0, len(unique_patients), len(unique_patients))
        sample = np.concatenate([members[index] for index in chosen])
        sample_labels = labels[sample]
        if sample_labels.min() == sample_labels.max():
            continue
        estimates.append(roc_auc_score(sample_labels, probabilities[sample]))
    low, high = np.percentile(estimates, [2.5, 97.5])
    return auc, (float(low), float(high))


def youden_threshold(labels: np.ndarray, probabilities: np.ndarray) -> float:
    """The threshold maximising sensitivity + specificity - 1 on the given predictions."""
    false_positive_rate, true_positive_rate, thresholds = roc_curve(labels, probabilities)
    best = int(np.argmax(true_positive_rate - false_positive_rate))
    return float(min(thresholds[best], 1.0))


def classification_metrics(
    labels: np.ndarray, probabilities: np.ndarray, threshold: float
) -> dict[str, float | int | list]:
    """Accuracy (beside the always-normal baseline), balanced accuracy, sensitivity,
    specificity and the confusion matrix [[TN, FP], [FN, TP]] at ``threshold``."""
    labels = np.asarray(labels).astype(int)
    predicted = (np.asarray(probabilities) >= threshold).astype(int)
    true_negative = int(((predicted == 0) & (labels == 0)).sum())
    false_positive = int(((predicted == 1) & (labels == 0)).sum())
    false_negative = int(((predicted == 0) & (labels == 1)).sum())
    true_positive = int(((predicted == 1) & (labels == 1)).sum())
    positives, negatives = true_positive + false_negative, true_negative + false_positive
    sensitivity = true_positive / positives if positives else float("nan")
    specificity = true_negative / negatives if negatives else float("nan")
    return {
        "threshold": float(threshold),
        "n": int(len(labels)),
        "n_abnormal": int(positives),
        "n_normal": int(negatives),
        "accuracy": (true_positive + true_negative) / len(labels) if len(labels) else float("nan"),
        "always_normal_accuracy": negatives / len(labels) if len(labels) else float("nan"),
        "balanced_accuracy": float(np.nanmean([sensitivity, specificity])),
        "sensitivity": sensitivity,
        "specificity": specificity,
        "confusion_matrix": [[true_negative, false_positive], [false_negative, true_positive]],
    }


def evaluate(
    labels: np.ndarray,
    probabilities: np.ndarray,
    patients: np.ndarray,
    threshold: float = 0.5,
    seed: int = 0,
) -> dict:
    """All metrics for one set of predictions: AUC + patient-bootstrap CI, and
    threshold metrics at ``threshold``."""
    auc, (low, high) = auc_with_patient_ci(labels, probabilities, patients, seed=seed)
    result = {
        "auc": auc,
        "auc_ci95": [low, high],
        "auc_ci_method": (f"percentile bootstrap over patients, {BOOTSTRAP_REPLICATES} replicates"),
    }
    result.update(classification_metrics(labels, probabilities, threshold))
    return result
