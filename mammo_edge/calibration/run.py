"""One calibration: the base model's records of the site's images in, a calibrated model out.

:func:`calibrate` pairs the records with their labels (:mod:`.site`), refits the heads and
points (:mod:`.fitting`), measures before and after (:mod:`.figures`) and returns a
:class:`CalibratedModel`: the base ONNX file with its ``metadata_props`` replaced
(:mod:`mammo_edge.model.onnx_props`), so every other byte, the network's included, is the base
model's; the new metadata carries the site's heads and points and the :class:`~.record.
Calibration` block. :mod:`.folder` writes it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timezone

import numpy as np

from mammo_edge.calibration.figures import ModeFigures, after_figures, before_figures
from mammo_edge.calibration.fitting import (
    IMAGE,
    PAIRED,
    RULES,
    SINGLE_VIEW,
    CalibrationFit,
    can_refit_pair,
    check_base_head,
    fit_calibration,
    scoring_modes,
)
from mammo_edge.calibration.record import CALIBRATION_KEY, Calibration
from mammo_edge.calibration.site import SiteImages, SiteLabels, check_enough, site_images
from mammo_edge.model.metadata import ModelMetadata
from mammo_edge.model.onnx_props import read_props, replace_props


@dataclass(frozen=True)
class CalibratedModel:
    """A calibration ready to be written: the new file's bytes and what they say."""

    name: str
    metadata: ModelMetadata
    calibration: Calibration
    model_bytes: bytes
    sha256: str


def calibrate(
    model,
    results: Sequence,
    truth: SiteLabels,
    match,
    name: str,
    log: Callable[[str], None] = lambda message: None,
) -> CalibratedModel:
    """Fit the model's heads and points on labelled site images and measure them.

    Args:
        model: the base :class:`~mammo_edge.model.onnx_model.Model` that scored ``results``.
        results: every record of the run, grouped by exam (errors are skipped).
        truth: the labels read (:func:`~.site.read_site_labels`).
        match: :class:`~mammo_edge.evaluation.labels.LabelMatch` of the results' paths to ``truth``.
        name: the calibrated model's name.
        log: progress messages (the verb sends them to standard error).

    Raises:
        CalibrationError: too little data, or a head calibrate cannot refit.
    """
    base_head = model.metadata.head
    check_base_head(base_head)
    site = paired_site(results, truth, match)
    check_enough(site)
    refit_pair = bool(base_head.get("pair")) and can_refit_pair(site)
    if base_head.get("pair") and not refit_pair:
        log("fewer than 10 abnormal or 10 normal paired images: the pair head is kept")
    base = base_thresholds(model.metadata)
    everything = np.arange(len(site.labels))
    final = fit_calibration(site, everything, base_head, base, refit_pair)
    log("measuring the base model's shipped points on the site images")
    before = before_figures(site, base_head, base)
    log(f"cross-fitting heads and points in {len(np.unique(site.folds))} patient folds")
    after = after_figures(site, base_head, base, refit_pair, final)
    base_bytes = model.read_bytes()
    calibration = _record(model, truth, site, final, before, after)
    metadata = calibrated_metadata(model.metadata, final, calibration, name)
    props = {
        **read_props(base_bytes),
        **metadata.to_props(),
        CALIBRATION_KEY: calibration.to_prop(),
    }
    new_bytes = replace_props(base_bytes, props)
    return CalibratedModel(
        name, metadata, calibration, new_bytes, hashlib.sha256(new_bytes).hexdigest()
    )


def paired_site(results: Sequence, truth: SiteLabels, match) -> SiteImages:
    """The labelled, scored images of a run, each with its other breast's network
    probability (:func:`mammo_edge.exams.partner_network_probabilities`)."""
    from mammo_edge.exams import partner_network_probabilities

    ok = [record for record in results if record.ok]
    label_of = dict(match.matched)
    pairs = [
        (record, label_of[record.path], partner)
        for record, partner in zip(ok, partner_network_probabilities(ok), strict=True)
        if record.path in label_of
    ]
    return site_images(pairs, truth.splits)


def _record(model, truth: SiteLabels, site: SiteImages, final, before, after) -> Calibration:
    from mammo_edge import __version__

    return Calibration(
        labels_file=str(truth.labels.source),
        labels_sha256=truth.sha256,
        images=len(site.labels),
        patients=len(set(site.patients.tolist())),
        abnormal_images=int(site.labels.sum()),
        normal_images=int((site.labels == 0).sum()),
        paired_images=int(site.paired.sum()),
        folds=len(np.unique(site.folds)),
        fold_rule=site.fold_rule,
        base_model=model.file.name,
        base_model_name=model.metadata.model_name,
        base_model_version=model.metadata.model_version,
        base_sha256=model.sha256,
        created=datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        mammo_edge_version=__version__,
        refitted=final.refitted,
        kept=final.kept,
        before=before,
        after=after,
    )


def base_thresholds(metadata: ModelMetadata) -> dict[str, dict[str, float]]:
    """The base model's thresholds by scoring mode and point name (``default`` when it
    ships one threshold); a mode without its own points uses the top-level ones, as the
    runtime did for it."""
    top = {
        name: float(point["threshold"])
        for name, point in metadata.operating_points.get("points", {}).items()
    } or {"default": float(metadata.threshold)}
    single = {
        name: float(point["threshold"])
        for name, point in metadata.operating_points.get(SINGLE_VIEW, {}).get("points", {}).items()
    }
    return {
        mode: (single or top) if mode == SINGLE_VIEW else top
        for mode in scoring_modes(metadata.head)
    }


def calibrated_metadata(
    base: ModelMetadata, final: CalibrationFit, calibration: Calibration, name: str
) -> ModelMetadata:
    """The base metadata with the site's heads, points and figures."""
    default = base.operating_points.get("default")
    default = default if default in RULES else "balanced"
    top_mode = PAIRED if PAIRED in final.thresholds else IMAGE
    points = _points(final, calibration, top_mode, default, base)
    if SINGLE_VIEW in final.thresholds:
        points[SINGLE_VIEW] = _points(final, calibration, SINGLE_VIEW, default, base)
    chosen = points["points"][default]
    figures: ModeFigures = calibration.after.get(top_mode) or calibration.after[SINGLE_VIEW]
    protocol = (
        f"site calibration (mammo-edge calibrate): heads and thresholds cross-fitted in "
        f"{calibration.folds} patient folds of {calibration.images} site images, out of fold"
    )
    threshold_method = f"operating point {default!r}: {RULES[default]} (site calibration)"
    cv_metrics = {
        "auc": figures.auc,
        "auc_ci95": list(figures.auc_ci95),
        "sensitivity": chosen["sensitivity"],
        "specificity": chosen["specificity"],
        "balanced_accuracy": chosen["balanced_accuracy"],
        "accuracy": chosen["accuracy"],
        "always_normal_accuracy": chosen["always_normal_accuracy"],
        "threshold": chosen["threshold"],
        "threshold_method": threshold_method,
        "protocol": protocol,
    }
    if SINGLE_VIEW in calibration.after:
        alone = calibration.after[SINGLE_VIEW]
        cv_metrics[SINGLE_VIEW] = {
            "auc": alone.auc,
            "auc_ci95": list(alone.auc_ci95),
            "images": alone.images,
            "protocol": protocol,
        }
    return replace(
        base,
        model_name=name,
        threshold=float(chosen["threshold"]),
        threshold_method=threshold_method,
        training_protocol=protocol,
        cv_metrics=cv_metrics,
        created=calibration.created,
        operating_points=points,
        head=final.heads,
    )


def _points(final, calibration, mode, default, base) -> dict:
    """One block of operating points: the site's, or the base's kept as shipped."""
    shipped = base.operating_points.get("points", {})
    points = {}
    for rule in RULES:
        if mode in final.kept:
            points[rule] = shipped.get(rule) or {
                "threshold": final.thresholds[mode][rule],
                "rule": RULES[rule],
                "source": "the base model's threshold, kept (too few paired site images)",
            }
            continue
        figures = calibration.after[mode]
        measured = figures.points[rule]
        source = (
            f"mammo-edge calibrate on {figures.images} site images of {figures.patients} "
            f"patients (labels sha256 {calibration.labels_sha256[:12]}...): threshold: the "
            f"rule on all of them; sensitivity/specificity: out of sample, head and "
            f"threshold fitted on the other folds of {calibration.folds} patient folds"
        )
        points[rule] = point_entry(final.thresholds[mode][rule], rule, measured, source)
    return {"default": default, "points": points}


def point_entry(threshold: float, rule: str, measured, source: str) -> dict:
    """One operating point as the metadata stores it: its threshold and rule, with the
    out-of-sample figures ``measured`` (a point of the cross-fitted figures) beside them."""
    return {
        "threshold": threshold,
        "rule": RULES[rule],
        "sensitivity": measured.sensitivity,
        "specificity": measured.specificity,
        "balanced_accuracy": measured.balanced_accuracy,
        "accuracy": measured.accuracy,
        "always_normal_accuracy": measured.always_normal_accuracy,
        "source": source,
    }
