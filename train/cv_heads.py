"""The heads and operating points a training run ships: ``OUT/head.json``.

After cross-validation, on the out-of-fold network probabilities (``OUT/predictions.csv``)
and the manifest's patient, study, laterality and view, :mod:`mammo_edge.calibration` (the
fitter ``mammo-edge calibrate`` uses, :func:`mammo_edge.model.logistic.fit_head` inside)
fits:

- the **pair head** on ``(cnn_logit, cnn_logit_minus_other)``, on the images whose other
  breast is in the set, with its ``triage`` and ``balanced`` points (the top-level points);
- the **single-view head** on ``cnn_logit``, on every image, with its points
  (``operating_points["single_view"]``; the top-level points when there is no pair head).

An image's other breast is :func:`mammo_edge.exams.counterparts`' rule: the same view of the
other breast of the same exam, else that breast's highest view. An exam is the manifest's
patient and study (the patient alone when ``study`` is empty). The pair head needs at least
10 abnormal and 10 normal images with a partner (:func:`~mammo_edge.calibration.fitting.
can_refit_pair`); with fewer only the single-view head is fitted, and head.json says why.

The figures are out of sample: heads and thresholds fitted on the run's other folds (the
patient folds of ``predictions.csv``), each fold judged by them, with patient bootstrap CIs
(:func:`mammo_edge.calibration.figures.after_figures`). The thresholds that ship are the rules
on all images. ``python -m export onnx --head OUT/head.json`` writes both into the model.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mammo_edge.calibration.figures import ModeFigures, after_figures
from mammo_edge.calibration.fitting import (
    IMAGE,
    PAIR_FEATURES,
    PAIRED,
    RULES,
    SINGLE_FEATURES,
    SINGLE_VIEW,
    CalibrationFit,
    can_refit_pair,
    fit_calibration,
)
from mammo_edge.calibration.run import point_entry
from mammo_edge.calibration.site import CalibrationError, SiteImages, check_enough
from mammo_edge.exams import partner_network_probabilities

from .ablation import aligned, read_predictions
from .report import write_metrics

#: The point an exported model uses unless told otherwise (as the shipped head.json).
DEFAULT_POINT = "balanced"
RUN_FOLDS = "the training run's patient folds (predictions.csv)"


@dataclass(frozen=True)
class ExamImage:
    """What :func:`mammo_edge.exams.partner_network_probabilities` reads of a scored image."""

    exam: str
    laterality: str | None
    view: str | None
    network_probability: float
    ok: bool = True

    @property
    def probability(self) -> float:
        return self.network_probability


def training_site(records, probabilities: np.ndarray, folds: np.ndarray) -> SiteImages:
    """The run's images as calibration reads them: labels, patients, out-of-fold network
    probabilities, each image's partner's (``nan`` without one) and the run's folds.

    Args:
        records: the :class:`~train.dataset.TrainingImage` items, in ``probabilities`` order.
        probabilities, folds: ``(N,)`` out-of-fold probabilities and fold numbers.
    """
    images = [
        ExamImage(
            exam=f"{record.patient_id}\x1f{record.image.study or ''}",
            laterality=record.image.laterality,
            view=record.image.view,
            network_probability=float(probability),
        )
        for record, probability in zip(records, probabilities, strict=True)
    ]
    partner = [np.nan if p is None else p for p in partner_network_probabilities(images)]
    return SiteImages(
        paths=tuple(record.reference for record in records),
        labels=np.array([record.label for record in records], dtype=np.int64),
        patients=np.array([str(record.patient_id) for record in records]),
        network=np.asarray(probabilities, dtype=np.float64),
        partner=np.array(partner, dtype=np.float64),
        folds=np.asarray(folds),
        fold_rule=RUN_FOLDS,
    )


def fit_run_heads(site: SiteImages) -> dict:
    """head.json's content: ``head``, ``operating_points`` and the out-of-sample figures.

    Raises:
        CalibrationError: too few images to fit even the single-view head.
    """
    check_enough(site)
    paired = site.labels[site.paired]
    note = (
        f"{len(paired)} images have a partner ({int(paired.sum())} abnormal): "
        "the pair head is fitted on them"
    )
    fitted = None
    if can_refit_pair(site):
        try:
            fitted = _fit(site, pair=True)
        except CalibrationError as error:
            note = f"{len(paired)} images have a partner, but the pair head failed: {error}"
    else:
        note = (
            f"{len(paired)} images have a partner ({int(paired.sum())} abnormal): at least 10 "
            "abnormal and 10 normal are needed for the pair head; single-view head only"
        )
    pair = fitted is not None
    final, after = fitted or _fit(site, pair=False)
    top = PAIRED if pair else IMAGE
    points = _points(final, after, top)
    if pair:
        points[SINGLE_VIEW] = _points(final, after, SINGLE_VIEW)
    return {
        "head": final.heads,
        "operating_points": points,
        "pair_head": pair,
        "pair_head_note": note,
        "fitted_on": {
            "images": len(site.labels),
            "abnormal_images": int(site.labels.sum()),
            "patients": len(set(site.patients.tolist())),
            "paired_images": int(site.paired.sum()),
            "folds": len(np.unique(site.folds)),
            "fold_rule": site.fold_rule,
            "probabilities": "out-of-fold network probabilities (predictions.csv)",
        },
        "figures_cross_fitted": {mode: figures.as_dict() for mode, figures in after.items()},
    }


def write_run_heads(dataset, out: Path, log=print) -> dict | None:
    """Fit the heads on ``OUT/predictions.csv`` and write ``OUT/head.json``; ``None`` (and
    nothing written, the reason logged) when the run has too few images for a head."""
    records = dataset.records
    probabilities, folds = aligned(records, read_predictions(out / "predictions.csv"))
    try:
        fitted = fit_run_heads(training_site(records, probabilities, folds))
    except CalibrationError as error:
        log(f"no head.json: {error}")
        return None
    write_metrics(fitted, out / "head.json")
    heads = "pair and single-view heads" if fitted["pair_head"] else "single-view head only"
    log(f"head.json: {heads} ({fitted['pair_head_note']})")
    return fitted


def _fit(site: SiteImages, pair: bool) -> tuple[CalibrationFit, dict[str, ModeFigures]]:
    """The final fit on every image and the cross-fitted figures, with or without a pair
    head (the heads' shape is all calibration reads of ``shape``: every head is refitted)."""
    shape = {"single": {"features": list(SINGLE_FEATURES)}}
    if pair:
        shape["pair"] = {"features": list(PAIR_FEATURES)}
    everything = np.arange(len(site.labels))
    final = fit_calibration(site, everything, shape, {}, pair)
    return final, after_figures(site, shape, {}, pair, final)


def _points(final: CalibrationFit, after: dict[str, ModeFigures], mode: str) -> dict:
    """One block of operating points in the metadata's form, with its figures."""
    figures = after[mode]
    source = (
        f"python -m train on {figures.images} images of {figures.patients} patients: "
        "threshold: the rule on all out-of-fold network probabilities; sensitivity/"
        "specificity: out of sample, head and threshold fitted on the other folds of the "
        "run's patient folds"
    )
    points = {}
    for rule in RULES:
        measured = figures.points[rule]
        points[rule] = point_entry(final.thresholds[mode][rule], rule, measured, source)
    return {"default": DEFAULT_POINT, "points": points}
