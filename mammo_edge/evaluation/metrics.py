"""Classification metrics for binary scores: the one copy used by evaluate, train and export.

Metrics of one set of scores live here; paired comparisons, repeated cross-validation and
cross-fitted operating points are :mod:`mammo_edge.evaluation.repeated_metrics`'s.

numpy only, so a workstation install can measure a model without scikit-learn. The ROC
curve, the AUC (ties counted half) and the Youden threshold follow scikit-learn's
``roc_curve`` / ``roc_auc_score`` exactly; tests compare the two on random data.

Conventions: ``labels`` are 0 (normal) / 1 (abnormal), ``scores`` the probability of
abnormal, and an image is called abnormal when ``score >= threshold``. A metric that is
undefined (no abnormal images for sensitivity, one class only for AUC) is ``nan``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

#: Replicates of the percentile bootstrap behind every AUC interval.
BOOTSTRAP_REPLICATES = 2000
#: Seed of the bootstrap's generator, so an interval is reproducible.
BOOTSTRAP_SEED = 0


@dataclass(frozen=True)
class RocCurve:
    """Points of the ROC curve, from (0, 0) at threshold +inf to (1, 1).

    Attributes:
        false_positive_rate, true_positive_rate: ``(K,)`` float64, non-decreasing.
        thresholds: ``(K,)`` float64, decreasing; point ``k`` calls abnormal every score
            ``>= thresholds[k]`` (``thresholds[0]`` is ``inf``: nothing called abnormal).
    """

    false_positive_rate: np.ndarray
    true_positive_rate: np.ndarray
    thresholds: np.ndarray


@dataclass(frozen=True)
class AucEstimate:
    """ROC AUC with its 95% percentile bootstrap interval (``nan`` when undefined).

    Attributes:
        auc: the point estimate on all images.
        ci95: (low, high), the 2.5th and 97.5th percentiles of the bootstrap AUCs.
        replicates: bootstrap replicates drawn (one-class resamples are skipped).
        unit: what was resampled: ``"patient"`` or ``"image"``.
    """

    auc: float
    ci95: tuple[float, float]
    replicates: int
    unit: str

    @property
    def method(self) -> str:
        return f"percentile bootstrap over {self.unit}s, {self.replicates} replicates"


@dataclass(frozen=True)
class OperatingPoint:
    """A threshold and the sensitivity and specificity it gives."""

    threshold: float
    sensitivity: float
    specificity: float


@dataclass(frozen=True)
class ConfusionMetrics:
    """Counts and rates at one threshold; rates are ``nan`` when their denominator is 0."""

    threshold: float
    true_negative: int
    false_positive: int
    false_negative: int
    true_positive: int

    @property
    def n(self) -> int:
        return self.true_negative + self.false_positive + self.false_negative + self.true_positive

    @property
    def n_abnormal(self) -> int:
        return self.true_positive + self.false_negative

    @property
    def n_normal(self) -> int:
        return self.true_negative + self.false_positive

    @property
    def sensitivity(self) -> float:
        return _ratio(self.true_positive, self.n_abnormal)

    @property
    def specificity(self) -> float:
        return _ratio(self.true_negative, self.n_normal)

    @property
    def ppv(self) -> float:
        """Positive predictive value: abnormal among those called abnormal."""
        return _ratio(self.true_positive, self.true_positive + self.false_positive)

    @property
    def npv(self) -> float:
        """Negative predictive value: normal among those called normal."""
        return _ratio(self.true_negative, self.true_negative + self.false_negative)

    @property
    def accuracy(self) -> float:
        return _ratio(self.true_positive + self.true_negative, self.n)

    @property
    def balanced_accuracy(self) -> float:
        """Mean of sensitivity and specificity (the defined one when the other is not)."""
        defined = [rate for rate in (self.sensitivity, self.specificity) if not math.isnan(rate)]
        return float(np.mean(defined)) if defined else float("nan")

    @property
    def always_normal_accuracy(self) -> float:
        """Accuracy of calling every image normal: the baseline accuracy must beat."""
        return _ratio(self.n_normal, self.n)

    @property
    def confusion_matrix(self) -> list[list[int]]:
        """``[[TN, FP], [FN, TP]]``: rows are the truth, columns the call (sklearn's layout)."""
        return [
            [self.true_negative, self.false_positive],
            [self.false_negative, self.true_positive],
        ]


@dataclass(frozen=True)
class GroupMetrics:
    """AUC and the rates at the threshold within one group of images."""

    group: str
    n: int
    n_abnormal: int
    auc: float
    sensitivity: float
    specificity: float


def _ratio(numerator: int, denominator: int) -> float:
    return numerator / denominator if denominator else float("nan")


def check_scores(labels, scores) -> tuple[np.ndarray, np.ndarray]:
    """Validate at the boundary: equal-length 1-D labels in {0, 1} and finite scores."""
    labels = np.asarray(labels)
    scores = np.asarray(scores, dtype=np.float64)
    if labels.ndim != 1 or scores.ndim != 1 or len(labels) != len(scores):
        raise ValueError(
            f"labels and scores must be 1-D and of equal length; got shapes "
            f"{labels.shape} and {scores.shape}"
        )
    if labels.size and not np.isin(labels, (0, 1)).all():
        found = sorted(set(np.unique(labels).tolist()) - {0, 1})
        raise ValueError(f"labels must be 0 or 1; found {found[:5]}")
    if not np.isfinite(scores).all():
        raise ValueError("scores must be finite; found nan or inf")
    return labels.astype(np.int64), scores


def has_both_classes(labels) -> bool:
    """True when ``labels`` hold at least one 0 and one 1 (AUC is defined)."""
    labels = np.asarray(labels)
    return bool(labels.size) and labels.min() != labels.max()


def roc_curve(labels, scores, drop_intermediate: bool = True) -> RocCurve:
    """The ROC curve, as ``sklearn.metrics.roc_curve`` computes it.

    Args:
        labels: ``(N,)`` 0/1 truth.
        scores: ``(N,)`` float scores; higher means more likely abnormal.
        drop_intermediate: drop points on a straight segment (they change no area and no
            Youden maximum), as scikit-learn does by default.

    Returns:
        A :class:`RocCurve`; rates are ``nan`` for a class that is absent.
    """
    labels, scores = check_scores(labels, scores)
    order = np.argsort(scores, kind="mergesort")[::-1]
    sorted_scores, sorted_labels = scores[order], labels[order]
    # The last index of each run of equal scores: one ROC point per distinct threshold.
    distinct = np.flatnonzero(np.diff(sorted_scores))
    ends = np.r_[distinct, len(sorted_labels) - 1]
    true_positives = np.cumsum(sorted_labels)[ends].astype(np.float64)
    false_positives = 1.0 + ends - true_positives
    thresholds = sorted_scores[ends]
    if drop_intermediate and len(false_positives) > 2:
        keep = np.flatnonzero(
            np.r_[
                True,
                np.logical_or(np.diff(false_positives, 2), np.diff(true_positives, 2)),
                True,
            ]
        )
        true_positives, false_positives = true_positives[keep], false_positives[keep]
        thresholds = thresholds[keep]
    true_positives = np.r_[0.0, true_positives]
    false_positives = np.r_[0.0, false_positives]
    thresholds = np.r_[np.inf, thresholds]
    with np.errstate(invalid="ignore", divide="ignore"):
        positives, negatives = true_positives[-1], false_positives[-1]
        true_positive_rate = true_positives / positives if positives else true_positives * np.nan
        false_positive_rate = false_positives / negatives if negatives else false_positives * np.nan
    return RocCurve(false_positive_rate, true_positive_rate, thresholds)


def roc_auc(labels, scores) -> float:
    """ROC AUC, tied scores counted half (= ``sklearn.metrics.roc_auc_score``).

    Computed as the Mann-Whitney statistic with mid-ranks: the probability that a random
    abnormal image scores above a random normal one. ``nan`` when only one class is given.
    """
    labels, scores = check_scores(labels, scores)
    positives = int(labels.sum())
    negatives = len(labels) - positives
    if positives == 0 or negatives == 0:
        return float("nan")
    ranks = _midranks(scores)
    rank_sum = ranks[labels == 1].sum()
    return float((rank_sum - positives * (positives + 1) / 2) / (positives * negatives))


def _midranks(values: np.ndarray) -> np.ndarray:
    """1-based ranks of ``values``; tied values share the mean of their ranks."""
    order = np.argsort(values, kind="mergesort")
    sorted_values = values[order]
    starts = np.r_[0, np.flatnonzero(np.diff(sorted_values)) + 1]
    ends = np.r_[starts[1:], len(values)]
    mean_rank = (starts + ends + 1) / 2.0  # mean of the 1-based ranks starts+1 .. ends
    ranks = np.empty(len(values), dtype=np.float64)
    ranks[order] = np.repeat(mean_rank, ends - starts)
    return ranks


def auc_with_ci(
    labels,
    scores,
    patients=None,
    replicates: int = BOOTSTRAP_REPLICATES,
    seed: int = BOOTSTRAP_SEED,
) -> AucEstimate:
    """ROC AUC and its 95% percentile bootstrap interval, resampling patients.

    Resampling patients (not images) keeps a patient's correlated images (two breasts,
    rotated copies) together, so near-duplicates do not make the interval falsely narrow.
    Resamples holding one class only are skipped.

    Args:
        labels: ``(N,)`` 0/1 truth.
        scores: ``(N,)`` float scores.
        patients: ``(N,)`` patient identifiers (any hashable dtype), or ``None`` to
            resample images.
        replicates: bootstrap replicates to draw.
        seed: seed of ``numpy.random.default_rng``.

    Returns:
        An :class:`AucEstimate`; all ``nan`` when only one class is present.
    """
    labels, scores = check_scores(labels, scores)
    unit = "image" if patients is None else "patient"
    patients = np.arange(len(labels)) if patients is None else np.asarray(patients)
    if len(patients) != len(labels):
        raise ValueError(f"patients has {len(patients)} entries for {len(labels)} labels")
    nan = float("nan")
    if not has_both_classes(labels):
        return AucEstimate(nan, (nan, nan), replicates, unit)
    auc = roc_auc(labels, scores)
    estimates = [
        roc_auc(labels[sample], scores[sample])
        for sample in patient_resamples(labels, patients, replicates, seed)
    ]
    if not estimates:
        return AucEstimate(auc, (nan, nan), replicates, unit)
    low, high = np.percentile(estimates, [2.5, 97.5])
    return AucEstimate(auc, (float(low), float(high)), replicates, unit)


def youden_threshold(labels, scores) -> OperatingPoint:
    """The threshold maximising Youden's J = sensitivity + specificity - 1.

    The cut sits at the lowest score still called abnormal; among equal J the highest cut
    wins (the first ROC point), as with ``sklearn.metrics.roc_curve``. Capped at 1.0.
    """
    curve = _curve_of_both_classes(labels, scores, drop_intermediate=True)
    if curve is None:
        return _UNDEFINED_POINT
    return _point(curve, int(np.argmax(curve.true_positive_rate - curve.false_positive_rate)))


def sensitivity_at_specificity(labels, scores, specificity: float = 0.9) -> OperatingPoint:
    """The highest sensitivity whose specificity is at least ``specificity``.

    Reads the full ROC curve: among the thresholds at observed scores whose specificity
    is ``>= specificity``, the one with the highest sensitivity (the lowest such cut).
    ``nan`` rates when a class is absent.
    """
    curve = _curve_of_both_classes(labels, scores, drop_intermediate=False)
    if curve is None:
        return _UNDEFINED_POINT
    # A tiny tolerance so 0.9 reached exactly (e.g. 9 of 10) is not lost to rounding.
    allowed = np.flatnonzero(1.0 - curve.false_positive_rate >= specificity - 1e-12)
    return _point(curve, allowed[np.argmax(curve.true_positive_rate[allowed])], cap=False)


def specificity_at_sensitivity(labels, scores, sensitivity: float = 0.9) -> OperatingPoint:
    """The highest threshold (best specificity) whose sensitivity is at least ``sensitivity``.

    The triage operating point: among the thresholds at observed scores that call at least
    ``sensitivity`` of the abnormal images abnormal, the highest. ``nan`` when a class is
    absent.
    """
    curve = _curve_of_both_classes(labels, scores, drop_intermediate=False)
    if curve is None:
        return _UNDEFINED_POINT
    allowed = np.flatnonzero(curve.true_positive_rate >= sensitivity - 1e-12)
    return _point(curve, allowed[0])  # thresholds decrease along the curve: the highest


_UNDEFINED_POINT = OperatingPoint(float("nan"), float("nan"), float("nan"))


def _curve_of_both_classes(labels, scores, drop_intermediate: bool) -> RocCurve | None:
    """The ROC curve, or ``None`` when a class is absent (every rate undefined)."""
    labels, scores = check_scores(labels, scores)
    if not has_both_classes(labels):
        return None
    return roc_curve(labels, scores, drop_intermediate=drop_intermediate)


def _point(curve: RocCurve, index: int, cap: bool = True) -> OperatingPoint:
    """The operating point at ROC index ``index`` (its threshold capped at 1 when ``cap``)."""
    threshold = float(curve.thresholds[index])
    return OperatingPoint(
        threshold=min(threshold, 1.0) if cap else threshold,
        sensitivity=float(curve.true_positive_rate[index]),
        specificity=float(1.0 - curve.false_positive_rate[index]),
    )


def confusion_at(labels, scores, threshold: float) -> ConfusionMetrics:
    """Counts at ``threshold`` (abnormal when ``score >= threshold``)."""
    labels, scores = check_scores(labels, scores)
    called = scores >= threshold
    truth = labels == 1
    return ConfusionMetrics(
        threshold=float(threshold),
        true_negative=int((~called & ~truth).sum()),
        false_positive=int((called & ~truth).sum()),
        false_negative=int((~called & truth).sum()),
        true_positive=int((called & truth).sum()),
    )


def per_group(labels, scores, groups, threshold: float) -> list[GroupMetrics]:
    """AUC, sensitivity and specificity within each group, groups in sorted order.

    Args:
        groups: ``(N,)`` group names; images whose group is ``None`` or ``""`` are left out.
    """
    labels, scores = check_scores(labels, scores)
    groups = np.asarray(["" if group is None else str(group) for group in groups], dtype=object)
    if len(groups) != len(labels):
        raise ValueError(f"groups has {len(groups)} entries for {len(labels)} labels")
    results = []
    for name in sorted(set(groups.tolist()) - {""}):
        inside = groups == name
        counts = confusion_at(labels[inside], scores[inside], threshold)
        results.append(
            GroupMetrics(
                group=name,
                n=counts.n,
                n_abnormal=counts.n_abnormal,
                auc=roc_auc(labels[inside], scores[inside]),
                sensitivity=counts.sensitivity,
                specificity=counts.specificity,
            )
        )
    return results


def patient_resamples(labels: np.ndarray, patients: np.ndarray, replicates: int, seed: int):
    """Index arrays of bootstrap resamples of whole patients; one-class resamples skipped."""
    unique_patients, inverse = np.unique(patients, return_inverse=True)
    members = [np.flatnonzero(inverse == index) for index in range(len(unique_patients))]
    rng = np.random.default_rng(seed)
    for _ in range(replicates):
        chosen = rng.integers(0, len(unique_patients), len(unique_patients))
        sample = np.concatenate([members[index] for index in chosen])
        if labels[sample].min() != labels[sample].max():
            yield sample
