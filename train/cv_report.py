"""The out-of-fold report of the lesion recipe: ``metrics.json`` and ``roc.png``.

Every figure is out of fold (each image scored by the fold model that never saw its
patient), with a patient bootstrap CI. Operating points are *cross-fitted*: the threshold
an image is judged at was chosen on the other folds' images only
(:func:`mammo_edge.evaluation.repeated_metrics.cross_fitted_thresholds`), so the sensitivity and
specificity printed at it are out of sample too. The triage threshold fitted on all
out-of-fold predictions (``threshold``) is the one an exported model carries; the figures
printed beside it are optimistic and say so.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from mammo_edge.evaluation import metrics, repeated_metrics

from .ablation import aligned, read_predictions
from .report import write_metrics

#: The triage operating point: the highest threshold whose out-of-fold sensitivity is at
#: least this (fixed before any result was seen; chosen on the out-of-fold predictions).
TRIAGE_SENSITIVITY = 0.90


def _subset(labels, probabilities, patients, chosen) -> dict:
    estimate = metrics.auc_with_ci(labels[chosen], probabilities[chosen], patients[chosen])
    return {
        "auc": estimate.auc,
        "auc_ci95": list(estimate.ci95),
        "n_abnormal": int(labels[chosen].sum()),
        "n_normal": int((labels[chosen] == 0).sum()),
    }


def init_note(settings) -> dict:
    """What a run started from, and what that means for its figures (``--init``)."""
    if getattr(settings, "init", None) is None:
        return {}
    return {
        "init": settings.init,
        "init_note": (
            f"fine-tuned from {settings.init}, not ImageNet: where that model was trained on "
            "any of these images (every shipped model saw all 258 MIAS images), the judged "
            "folds are not unseen and these figures are not out of sample"
        ),
    }


def cross_fitted_points(labels, probabilities, folds) -> dict:
    """Each operating-point rule, its threshold fitted without the judged fold."""
    points = {}
    for rule in repeated_metrics.OPERATING_POINT_RULES:
        thresholds = repeated_metrics.cross_fitted_thresholds(labels, probabilities, folds, rule)
        counts = repeated_metrics.confusion_at_thresholds(labels, probabilities, thresholds)
        points[rule] = {
            "sensitivity": counts.sensitivity,
            "specificity": counts.specificity,
            "balanced_accuracy": counts.balanced_accuracy,
            "accuracy": counts.accuracy,
            "median_threshold": counts.threshold,
            "confusion_matrix": counts.confusion_matrix,
        }
    return points


def write_cv_metrics(dataset, out: Path, settings, elapsed: float, description: str) -> dict:
    """``OUT/metrics.json`` and ``OUT/roc.png`` from ``OUT/predictions.csv``.

    Args:
        dataset: the :class:`~train.dataset.TrainingSet` the run used.
        settings: the run's settings dataclass (written as they were).
        description: one sentence on the protocol.
    """
    records = dataset.records
    probabilities, folds = aligned(records, read_predictions(out / "predictions.csv"))
    labels = np.array([record.label for record in records])
    patients = np.array([str(record.patient_id) for record in records])
    estimate = metrics.auc_with_ci(labels, probabilities, patients)
    at_90 = metrics.sensitivity_at_specificity(labels, probabilities, 0.9)
    point = metrics.specificity_at_sensitivity(labels, probabilities, TRIAGE_SENSITIVITY)
    counts = metrics.confusion_at(labels, probabilities, point.threshold)
    normal = labels == 0
    findings = sorted({name for record in records for name in record.findings})
    groups = np.array([record.tissue or "" for record in records])
    result = {
        "protocol": "lesion",
        "description": description,
        "data": str(dataset.source),
        "n": int(len(labels)),
        "n_abnormal": int(labels.sum()),
        "n_normal": int(normal.sum()),
        "n_patients": int(len(set(patients.tolist()))),
        "n_images_with_lesion_geometry": int(sum(bool(r.image.lesions) for r in records)),
        "auc": estimate.auc,
        "auc_ci95": list(estimate.ci95),
        "auc_ci_method": "percentile bootstrap over patients, 2000 replicates",
        "sensitivity_at_90_specificity": at_90.sensitivity,
        "always_normal_accuracy": float(normal.mean()),
        "operating_points_cross_fitted": cross_fitted_points(labels, probabilities, folds),
        "threshold": point.threshold,
        "threshold_method": (
            f"highest threshold with out-of-fold sensitivity >= {TRIAGE_SENSITIVITY:.2f} "
            "(triage operating point; metrics at it are optimistic: for out-of-sample "
            "figures see operating_points_cross_fitted)"
        ),
        "sensitivity": counts.sensitivity,
        "specificity": counts.specificity,
        "accuracy": counts.accuracy,
        "balanced_accuracy": counts.balanced_accuracy,
        "confusion_matrix": counts.confusion_matrix,
        "per_class_auc": {
            name: _subset(
                labels,
                probabilities,
                patients,
                normal | np.array([name in r.findings for r in records]),
            )
            for name in findings
        },
        "per_group_auc": {
            name: _subset(labels, probabilities, patients, groups == name)
            for name in sorted(set(groups.tolist()) - {""})
        },
        "per_fold": [
            {
                "fold": int(fold),
                "n_test": int((folds == fold).sum()),
                "auc": metrics.roc_auc(labels[folds == fold], probabilities[folds == fold])
                if metrics.has_both_classes(labels[folds == fold])
                else None,
            }
            for fold in np.unique(folds)
        ],
        "settings": dataclasses.asdict(settings),
        **init_note(settings),
        "elapsed_seconds": round(elapsed, 1),
    }
    write_metrics(result, out / "metrics.json")
    from .plots import plot_roc

    plot_roc(
        [
            {
                "name": "out-of-fold",
                "labels": labels,
                "probabilities": probabilities,
                "auc": estimate.auc,
                "ci": estimate.ci95,
            }
        ],
        out / "roc.png",
        f"lite0 lesion recipe, {len(np.unique(folds))}-fold CV by patient (n={len(labels)})",
    )
    return result
