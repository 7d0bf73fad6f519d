"""Evaluation of a training run, in the shape its metrics.json records.

The maths lives in :mod:`mammo_edge.evaluation.metrics` (numpy only, shared with ``mammo-edge
evaluate`` and the export); these wrappers keep training's dict layout.
"""

from __future__ import annotations

import numpy as np

from mammo_edge.evaluation import metrics
from mammo_edge.evaluation.metrics import BOOTSTRAP_REPLICATES

__all__ = [
    "BOOTSTRAP_REPLICATES",
    "auc_with_patient_ci",
    "classification_metrics",
    "evaluate",
    "youden_threshold",
]


def auc_with_patient_ci(
    labels: np.ndarray,
    probabilities: np.ndarray,
    patients: np.ndarray,
    replicates: int = BOOTSTRAP_REPLICATES,
    seed: int = 0,
) -> tuple[float, tuple[float, float]]:
    """ROC AUC and its 95% percentile bootstrap CI, resampling patients (not images).

    See :func:`mammo_edge.evaluation.metrics.auc_with_ci`.
    """
    estimate = metrics.auc_with_ci(labels, probabilities, patients, replicates, seed)
    return estimate.auc, estimate.ci95


def youden_threshold(labels: np.ndarray, probabilities: np.ndarray) -> float:
    """The threshold maximising sensitivity + specificity - 1 on the given predictions."""
    return metrics.youden_threshold(labels, probabilities).threshold


def classification_metrics(
    labels: np.ndarray, probabilities: np.ndarray, threshold: float
) -> dict[str, float | int | list]:
    """Accuracy (beside the always-normal baseline), balanced accuracy, sensitivity,
    specificity and the confusion matrix [[TN, FP], [FN, TP]] at ``threshold``."""
    counts = metrics.confusion_at(np.asarray(labels).astype(int), probabilities, threshold)
    return {
        "threshold": counts.threshold,
        "n": counts.n,
        "n_abnormal": counts.n_abnormal,
        "n_normal": counts.n_normal,
        "accuracy": counts.accuracy,
        "always_normal_accuracy": counts.always_normal_accuracy,
        "balanced_accuracy": counts.balanced_accuracy,
        "sensitivity": counts.sensitivity,
        "specificity": counts.specificity,
        "confusion_matrix": counts.confusion_matrix,
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
    estimate = metrics.auc_with_ci(labels, probabilities, patients, seed=seed)
    result = {
        "auc": estimate.auc,
        "auc_ci95": list(estimate.ci95),
        "auc_ci_method": estimate.method,
    }
    result.update(classification_metrics(labels, probabilities, threshold))
    return result
