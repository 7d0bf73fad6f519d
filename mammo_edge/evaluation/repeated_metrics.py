"""Metrics of cross-validated runs: two models compared paired, repeats averaged, and
operating points chosen out of sample (cross-fitted).

Built on :mod:`mammo_edge.evaluation.metrics` (same conventions: labels 0/1, abnormal when
``score >= threshold``, ``nan`` when undefined) and its patient bootstrap, so an interval
here resamples patients exactly as :func:`~mammo_edge.evaluation.metrics.auc_with_ci` does. Used by
``train.repeated`` and ``train.ablation``; the runtime itself measures single runs only.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mammo_edge.evaluation.metrics import (
    BOOTSTRAP_REPLICATES,
    BOOTSTRAP_SEED,
    AucEstimate,
    ConfusionMetrics,
    check_scores,
    has_both_classes,
    patient_resamples,
    roc_auc,
    specificity_at_sensitivity,
    youden_threshold,
)


@dataclass(frozen=True)
class AucDifference:
    """``AUC(a) - AUC(b)`` on the same images, with a paired 95% bootstrap interval."""

    difference: float
    ci95: tuple[float, float]
    replicates: int
    unit: str


def paired_auc_difference(
    labels,
    scores_a,
    scores_b,
    patients=None,
    replicates: int = BOOTSTRAP_REPLICATES,
    seed: int = BOOTSTRAP_SEED,
) -> AucDifference:
    """``AUC(scores_a) - AUC(scores_b)`` with a percentile bootstrap that resamples patients.

    Both scores are evaluated on the same resample each time (paired), so what the two
    models share (hard images) cancels and the interval is that of the difference itself.
    """
    labels, scores_a = check_scores(labels, scores_a)
    _, scores_b = check_scores(labels, scores_b)
    unit = "image" if patients is None else "patient"
    patients = np.arange(len(labels)) if patients is None else np.asarray(patients)
    nan = float("nan")
    if not has_both_classes(labels):
        return AucDifference(nan, (nan, nan), replicates, unit)
    difference = roc_auc(labels, scores_a) - roc_auc(labels, scores_b)
    estimates = [
        roc_auc(labels[sample], scores_a[sample]) - roc_auc(labels[sample], scores_b[sample])
        for sample in patient_resamples(labels, patients, replicates, seed)
    ]
    low, high = np.percentile(estimates, [2.5, 97.5])
    return AucDifference(float(difference), (float(low), float(high)), replicates, unit)


def repeated_auc_with_ci(
    labels,
    scores_by_repeat,
    patients,
    replicates: int = BOOTSTRAP_REPLICATES,
    seed: int = BOOTSTRAP_SEED,
) -> AucEstimate:
    """The mean AUC over repeats of a cross-validation, with a patient-bootstrap interval.

    Each repeat scores every image once (out of fold, under its own patient split), so
    ``scores_by_repeat`` is ``(R, N)``. One bootstrap replicate resamples patients once and
    averages the R AUCs on that resample: the interval covers the patient sampling of the
    mean, and the split-to-split variation is averaged out as repeated CV intends.
    """
    scores_by_repeat = np.atleast_2d(np.asarray(scores_by_repeat, dtype=np.float64))
    labels = np.asarray(labels)
    patients = np.asarray(patients)
    for row in scores_by_repeat:
        check_scores(labels, row)
    nan = float("nan")
    if not has_both_classes(labels):
        return AucEstimate(nan, (nan, nan), replicates, "patient")

    def mean_auc(sample):
        return float(np.mean([roc_auc(labels[sample], row[sample]) for row in scores_by_repeat]))

    auc = mean_auc(np.arange(len(labels)))
    estimates = [
        mean_auc(sample) for sample in patient_resamples(labels, patients, replicates, seed)
    ]
    low, high = np.percentile(estimates, [2.5, 97.5])
    return AucEstimate(auc, (float(low), float(high)), replicates, "patient")


def repeated_paired_auc_difference(
    labels,
    scores_a_by_repeat,
    scores_b_by_repeat,
    patients,
    replicates: int = BOOTSTRAP_REPLICATES,
    seed: int = BOOTSTRAP_SEED,
) -> AucDifference:
    """Mean over repeats of ``AUC(a) - AUC(b)``, paired on the same splits and resamples.

    Row ``r`` of both ``(R, N)`` arrays must come from the same patient split, so what a
    split makes easy or hard cancels in the difference.
    """
    a = np.atleast_2d(np.asarray(scores_a_by_repeat, dtype=np.float64))
    b = np.atleast_2d(np.asarray(scores_b_by_repeat, dtype=np.float64))
    if a.shape != b.shape:
        raise ValueError(f"scores of shape {a.shape} and {b.shape} are not paired")
    labels = np.asarray(labels)
    patients = np.asarray(patients)
    nan = float("nan")
    if not has_both_classes(labels):
        return AucDifference(nan, (nan, nan), replicates, "patient")

    def mean_difference(sample):
        return float(
            np.mean(
                [
                    roc_auc(labels[sample], row_a[sample]) - roc_auc(labels[sample], row_b[sample])
                    for row_a, row_b in zip(a, b, strict=True)
                ]
            )
        )

    difference = mean_difference(np.arange(len(labels)))
    estimates = [mean_difference(s) for s in patient_resamples(labels, patients, replicates, seed)]
    low, high = np.percentile(estimates, [2.5, 97.5])
    return AucDifference(difference, (float(low), float(high)), replicates, "patient")


#: Operating-point rules by name: ``triage`` keeps sensitivity >= 0.90, ``balanced`` is
#: Youden's J. Each maps (labels, scores) to an :class:`OperatingPoint`.
OPERATING_POINT_RULES = {
    "triage": lambda labels, scores: specificity_at_sensitivity(labels, scores, 0.90),
    "balanced": youden_threshold,
}


def cross_fitted_thresholds(labels, scores, folds, rule: str) -> np.ndarray:
    """The threshold each image is judged at, chosen without its own fold.

    For every fold ``k`` the rule (:data:`OPERATING_POINT_RULES`) is applied to the labels
    and scores of the *other* folds only, and the threshold it finds is used for fold
    ``k``'s images. The printed sensitivity and specificity at those thresholds are then
    out of sample: no image's label ever chose the threshold it is judged at.

    Returns:
        ``(N,)`` float64 thresholds, one per image.
    """
    labels, scores = check_scores(labels, scores)
    folds = np.asarray(folds)
    if len(folds) != len(labels):
        raise ValueError(f"folds has {len(folds)} entries for {len(labels)} labels")
    choose = OPERATING_POINT_RULES[rule]
    thresholds = np.empty(len(labels))
    for fold in np.unique(folds):
        test = folds == fold
        thresholds[test] = choose(labels[~test], scores[~test]).threshold
    return thresholds


def confusion_at_thresholds(labels, scores, thresholds) -> ConfusionMetrics:
    """Counts when image ``i`` is called abnormal at ``scores[i] >= thresholds[i]``."""
    labels, scores = check_scores(labels, scores)
    thresholds = np.asarray(thresholds, dtype=np.float64)
    called = scores >= thresholds
    truth = labels == 1
    return ConfusionMetrics(
        threshold=float(np.median(thresholds)),
        true_negative=int((~called & ~truth).sum()),
        false_positive=int((called & ~truth).sum()),
        false_negative=int((~called & truth).sum()),
        true_positive=int((called & truth).sum()),
    )
