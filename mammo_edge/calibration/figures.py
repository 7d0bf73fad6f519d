"""The site's figures before and after calibration (``mammo-edge calibrate``).

*Before*: the base model as shipped (its heads, its thresholds) on the site's images; nothing
is fitted, so the figures are out of sample as they stand. *After*: the calibration
procedure (:func:`~.fitting.fit_calibration`) run inside patient folds: for
each fold the heads *and* thresholds are fitted on the other folds only and the fold is
judged by them, so no image's label chose anything it is judged at. Per scoring mode: AUC,
and per operating point sensitivity, specificity and balanced accuracy, each with a 95%
percentile bootstrap interval over patients (:mod:`mammo_edge.evaluation.metrics`' resamples).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from mammo_edge.calibration.fitting import (
    RULES,
    CalibrationFit,
    fit_calibration,
    mode_images,
    mode_scores,
    scoring_modes,
)
from mammo_edge.calibration.site import SiteImages
from mammo_edge.evaluation.metrics import (
    BOOTSTRAP_REPLICATES,
    BOOTSTRAP_SEED,
    auc_with_ci,
    patient_resamples,
)
from mammo_edge.evaluation.repeated_metrics import confusion_at_thresholds

#: Bootstrap replicates of every interval (the metrics' own number; tests use fewer).
REPLICATES = BOOTSTRAP_REPLICATES


@dataclass(frozen=True)
class PointFigures:
    """One operating point's figures (``nan`` where undefined; intervals are 95%)."""

    threshold: float
    sensitivity: float
    sensitivity_ci95: tuple[float, float]
    specificity: float
    specificity_ci95: tuple[float, float]
    balanced_accuracy: float
    balanced_accuracy_ci95: tuple[float, float]
    accuracy: float
    always_normal_accuracy: float

    @classmethod
    def from_dict(cls, values: dict) -> PointFigures:
        return cls(**{key: _tuple_or_float(value) for key, value in values.items()})


@dataclass(frozen=True)
class ModeFigures:
    """The figures of one scoring mode: its images, AUC and the points."""

    images: int
    abnormal_images: int
    patients: int
    auc: float
    auc_ci95: tuple[float, float]
    points: dict[str, PointFigures]

    def as_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> ModeFigures:
        points = {name: PointFigures.from_dict(p) for name, p in values["points"].items()}
        return cls(
            int(values["images"]),
            int(values["abnormal_images"]),
            int(values["patients"]),
            _tuple_or_float(values["auc"]),
            _tuple_or_float(values["auc_ci95"]),
            points,
        )


def before_figures(
    site: SiteImages, base_head: dict, base_thresholds: dict[str, dict[str, float]]
) -> dict[str, ModeFigures]:
    """The base model's figures on the site: its heads and shipped points, per mode (a
    mode without images, e.g. ``paired`` when no other breast was scored, is left out)."""
    result = {}
    everything = np.arange(len(site.labels))
    for mode in scoring_modes(base_head):
        index = mode_images(site, mode, everything)
        if not len(index):  # e.g. no image had its other breast scored
            continue
        scores = mode_scores(site, base_head, mode, index)
        thresholds = {
            name: np.full(len(index), threshold)
            for name, threshold in base_thresholds[mode].items()
        }
        shipped = {name: float(value) for name, value in base_thresholds[mode].items()}
        result[mode] = _mode_figures(site, index, scores, thresholds, shipped)
    return result


def after_figures(
    site: SiteImages,
    base_head: dict,
    base_thresholds: dict[str, dict[str, float]],
    refit_pair: bool,
    final: CalibrationFit,
) -> dict[str, ModeFigures]:
    """The calibrated figures, cross-fitted by patient (see module notes); each point's
    ``threshold`` is ``final``'s, the one that ships."""
    everything = np.arange(len(site.labels))
    modes = scoring_modes(base_head)
    scores = {mode: np.full(len(site.labels), np.nan) for mode in modes}
    thresholds = {
        mode: {rule: np.full(len(site.labels), np.nan) for rule in RULES} for mode in modes
    }
    for fold in np.unique(site.folds):
        train = everything[site.folds != fold]
        fit = fit_calibration(site, train, base_head, base_thresholds, refit_pair)
        for mode in modes:
            test = mode_images(site, mode, everything[site.folds == fold])
            scores[mode][test] = mode_scores(site, fit.heads, mode, test)
            for rule in RULES:
                thresholds[mode][rule][test] = fit.thresholds[mode][rule]
    result = {}
    for mode in modes:
        index = mode_images(site, mode, everything)
        if not len(index):
            continue
        by_rule = {rule: thresholds[mode][rule][index] for rule in RULES}
        result[mode] = _mode_figures(
            site, index, scores[mode][index], by_rule, final.thresholds[mode]
        )
    return result


def _mode_figures(
    site: SiteImages,
    index: np.ndarray,
    scores: np.ndarray,
    thresholds: dict[str, np.ndarray],
    shipped: dict[str, float],
) -> ModeFigures:
    labels, patients = site.labels[index], site.patients[index]
    estimate = auc_with_ci(labels, scores, patients, replicates=REPLICATES)
    samples = list(patient_resamples(labels, patients, REPLICATES, BOOTSTRAP_SEED))
    points = {
        name: _point_figures(labels, scores, per_image, samples, shipped[name])
        for name, per_image in thresholds.items()
    }
    return ModeFigures(
        images=len(index),
        abnormal_images=int(labels.sum()),
        patients=len(set(patients.tolist())),
        auc=float(estimate.auc),
        auc_ci95=(float(estimate.ci95[0]), float(estimate.ci95[1])),
        points=points,
    )


def _point_figures(labels, scores, thresholds, samples, shipped: float) -> PointFigures:
    counts = confusion_at_thresholds(labels, scores, thresholds)
    resampled = [confusion_at_thresholds(labels[s], scores[s], thresholds[s]) for s in samples]

    def interval(rate: str) -> tuple[float, float]:
        values = [getattr(c, rate) for c in resampled]
        if not values:
            return (float("nan"), float("nan"))
        low, high = np.nanpercentile(values, [2.5, 97.5])
        return (float(low), float(high))

    return PointFigures(
        threshold=float(shipped),
        sensitivity=counts.sensitivity,
        sensitivity_ci95=interval("sensitivity"),
        specificity=counts.specificity,
        specificity_ci95=interval("specificity"),
        balanced_accuracy=counts.balanced_accuracy,
        balanced_accuracy_ci95=interval("balanced_accuracy"),
        accuracy=counts.accuracy,
        always_normal_accuracy=counts.always_normal_accuracy,
    )


def _tuple_or_float(value):
    """JSON back to figures: lists become intervals, ``None`` (a JSON-safe nan) nan."""
    if isinstance(value, list):
        return tuple(_tuple_or_float(v) for v in value)
    return float("nan") if value is None else value
