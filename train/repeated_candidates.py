"""The candidate chain of the repeated cross-validation, and each candidate's figures.

Every candidate is scored by the *same* fold models on the *same* patient splits, so the
differences between candidates are paired. Candidates, in the order they are tried (fixed
before any was scored); a step is kept when its paired difference to the candidate before
it, averaged over repeats, is above 0 with a 95% patient-bootstrap interval whose lower end
is above :data:`KEEP_LOWER_BOUND` (the rule that decides whether a model may replace the
default):

1. ``lite0``: the recipe as shipped.
2. ``+ breast windows``: windows mostly off the breast cannot hold the score or the peak
   (``lite0.Networks.image_model(breast_windows_only=True)``).
3. ``+ flip``: test-time augmentation, the top-bottom mirror averaged in.
4. ``+ calcifications``: a logistic head on (CNN logit, the three full-resolution
   cluster features of ``mammo_edge.images.calcifications``).
5. ``+ other breast``: the same head plus (own - other breast's) CNN logit and cluster
   feature, when the patient's other image is present.

Stacking heads and operating points are *cross-fitted*: for test fold k they are fitted on
the labels and out-of-fold scores of the other folds' images only, so no image's label
chooses the weights or the threshold it is judged at. (The CNNs that scored those other
images were trained with fold k among their data; a fully nested inner CV would cost four
times the training. We state it rather than hide it.)
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from mammo_edge.evaluation import metrics, repeated_metrics

from .ablation import CLASSES, TISSUES, image_classes
from .heads import cross_fitted_head, head_features, logit, partner_index
from .mias import ImageRecord
from .variants import VARIANTS

#: Ship rule: paired difference above 0 and its 95% interval's lower end above this.
KEEP_LOWER_BOUND = -0.01
#: Patient-bootstrap replicates behind every interval (tests lower it).
REPLICATES = metrics.BOOTSTRAP_REPLICATES
OPERATING_POINTS = ("triage", "balanced")


@dataclass
class Repeat:
    """One patient split: folds ``(N,)`` and the fold models' scores ``(N,)`` per variant."""

    name: str
    folds: np.ndarray
    variants: dict[str, np.ndarray]


def read_repeat(run: Path, records: list[ImageRecord]) -> Repeat:
    """``RUN/variants.csv`` (written by :func:`train.variants.score_variants`) as a Repeat.

    Raises:
        ValueError: an image of ``records`` has no score in the file.
    """
    with (run / "variants.csv").open(newline="") as handle:
        rows = {row["image"]: row for row in csv.DictReader(handle)}
    missing = [r.reference for r in records if r.reference not in rows]
    if missing:
        raise ValueError(f"{run}: {len(missing)} images have no score, e.g. {missing[:3]}")
    return Repeat(
        run.name,
        np.array([int(rows[r.reference]["fold"]) for r in records]),
        {name: np.array([float(rows[r.reference][name]) for r in records]) for name in VARIANTS},
    )


@dataclass
class Candidate:
    """One step of the chain: its scores ``(R, N)`` (repeats x images) and its verdict.

    ``recipe`` says which network variant the chain kept (``breast_windows``, ``flip``);
    it is the same for every candidate of a chain once :func:`build_candidates` returns.
    """

    name: str
    scores: np.ndarray
    kept: bool = True
    against: str | None = None
    difference: dict = field(default_factory=dict)
    difference_to_lite0: dict = field(default_factory=dict)
    recipe: dict = field(default_factory=dict)


def pair_only(cnn: np.ndarray, partner: np.ndarray) -> np.ndarray:
    """``(N, 2)`` pair-head features: own CNN logit, own minus the other breast's logit.

    ``partner[i]`` is the index of image i's other breast, or -1 (then the difference is 0).
    """
    own = logit(cnn)
    other = np.where(partner >= 0, own[np.maximum(partner, 0)], own)
    return np.column_stack([own, own - other])


def difference_entry(estimate) -> dict:
    """A paired AUC difference as ``{"difference", "ci95"}``, as the reports write it."""
    return {"difference": estimate.difference, "ci95": list(estimate.ci95)}


def build_candidates(repeats, records, calcifications) -> list[Candidate]:
    """The chain of candidates (module notes), each decided against the last kept one.

    Args:
        repeats: the :class:`Repeat` of every patient split.
        records: the images, in the order of every repeat's arrays.
        calcifications: ``(N, 3)`` full-resolution cluster features of the images.
    """
    labels = np.array([record.label for record in records])
    patients = np.array([record.patient_id for record in records])
    partner = partner_index(records)

    def variant(name):
        return np.array([repeat.variants[name] for repeat in repeats])

    def cross_fitted(features_of):
        return np.array(
            [
                cross_fitted_head(features_of(cnn), labels, repeat.folds)
                for cnn, repeat in zip(kept_cnn, repeats, strict=True)
            ]
        )

    chain = [Candidate("lite0", variant("plain"))]
    kept = chain[0]

    def decide(candidate: Candidate) -> bool:
        nonlocal kept
        difference = repeated_metrics.repeated_paired_auc_difference(
            labels, candidate.scores, kept.scores, patients, replicates=REPLICATES
        )
        candidate.against = kept.name
        candidate.difference = difference_entry(difference)
        candidate.difference_to_lite0 = difference_entry(
            repeated_metrics.repeated_paired_auc_difference(
                labels, candidate.scores, chain[0].scores, patients, replicates=REPLICATES
            )
        )
        candidate.kept = difference.difference > 0 and difference.ci95[0] > KEEP_LOWER_BOUND
        chain.append(candidate)
        if candidate.kept:
            kept = candidate
        return candidate.kept

    recipe = {"breast_windows": False, "flip": False}
    kept_cnn = variant("plain")
    if decide(Candidate("+ breast windows", variant("breast_windows"))):
        recipe["breast_windows"] = True
        kept_cnn = variant("breast_windows")
    flip_name = "breast_windows_flip" if recipe["breast_windows"] else "flip"
    if decide(Candidate("+ flip", variant(flip_name))):
        recipe["flip"] = True
        kept_cnn = variant(flip_name)
    kept_calc = decide(
        Candidate(
            "+ calcifications", cross_fitted(lambda cnn: head_features(cnn, calcifications, None))
        )
    )
    if kept_calc:
        pair_scores = cross_fitted(lambda cnn: head_features(cnn, calcifications, partner))
    else:  # the pair head without the calcification columns
        pair_scores = cross_fitted(lambda cnn: pair_only(cnn, partner))
    decide(Candidate("+ other breast", pair_scores))
    for candidate in chain:
        candidate.recipe = dict(recipe)
    return chain


def operating_points(labels, scores_by_repeat, repeats) -> dict:
    """Each rule's thresholds cross-fitted per fold; counts pooled over repeats."""
    result = {}
    for rule in OPERATING_POINTS:
        counts = [
            repeated_metrics.confusion_at_thresholds(
                labels,
                scores,
                repeated_metrics.cross_fitted_thresholds(labels, scores, repeat.folds, rule),
            )
            for scores, repeat in zip(scores_by_repeat, repeats, strict=True)
        ]
        result[rule] = {
            "sensitivity": float(np.mean([c.sensitivity for c in counts])),
            "specificity": float(np.mean([c.specificity for c in counts])),
            "accuracy": float(np.mean([c.accuracy for c in counts])),
            "balanced_accuracy": float(np.mean([c.balanced_accuracy for c in counts])),
            "always_normal_accuracy": float((labels == 0).mean()),
            "confusion_matrix_summed": np.sum(
                [c.confusion_matrix for c in counts], axis=0
            ).tolist(),
            "per_repeat_balanced_accuracy": [c.balanced_accuracy for c in counts],
        }
    return result


def describe(candidate: Candidate, records, repeats) -> dict:
    """A candidate's figures: mean AUC over repeats with CI, per class and tissue, points."""
    labels = np.array([record.label for record in records])
    patients = np.array([record.patient_id for record in records])
    tissues = np.array([record.tissue for record in records])
    estimate = repeated_metrics.repeated_auc_with_ci(
        labels, candidate.scores, patients, replicates=REPLICATES
    )

    def subset(chosen):
        sub = repeated_metrics.repeated_auc_with_ci(
            labels[chosen], candidate.scores[:, chosen], patients[chosen], replicates=REPLICATES
        )
        return {"auc": sub.auc, "auc_ci95": list(sub.ci95), "n_abnormal": int(labels[chosen].sum())}

    normal = labels == 0
    per_class = {
        name: subset(normal | np.array([name in image_classes(r) for r in records]))
        for name in CLASSES
    }
    per_tissue = {code: subset(tissues == code) for code in TISSUES}
    specificity_at_90 = float(
        np.mean(
            [
                metrics.specificity_at_sensitivity(labels, s, 0.90).specificity
                for s in candidate.scores
            ]
        )
    )
    return {
        "name": candidate.name,
        "kept": candidate.kept,
        "decided_against": candidate.against,
        "auc": estimate.auc,
        "auc_ci95": list(estimate.ci95),
        "per_repeat_auc": [metrics.roc_auc(labels, s) for s in candidate.scores],
        "difference_to_previous_kept": candidate.difference or None,
        "difference_to_lite0": candidate.difference_to_lite0 or None,
        "specificity_at_90_sensitivity": specificity_at_90,
        "per_class_auc": per_class,
        "per_tissue_auc": per_tissue,
        "operating_points_out_of_sample": operating_points(labels, candidate.scores, repeats),
    }


def ensemble_of_repeats(chain, final_name: str, records) -> dict:
    """The final recipe's three fold models of an image averaged: an honest ensemble.

    In every repeat the image was scored by a model that never saw its patient, so the
    mean over repeats is an out-of-sample score of an ensemble of three models trained on
    different 80% subsets. Compared, paired, with the single-model AUC (mean over repeats).
    """
    labels = np.array([record.label for record in records])
    patients = np.array([record.patient_id for record in records])
    scores = next(c for c in chain if c.name == final_name).scores
    mean = scores.mean(axis=0)
    estimate = repeated_metrics.repeated_auc_with_ci(
        labels, [mean], patients, replicates=REPLICATES
    )
    difference = repeated_metrics.repeated_paired_auc_difference(
        labels, np.repeat(mean[None], len(scores), axis=0), scores, patients, replicates=REPLICATES
    )
    return {
        "members": len(scores),
        "auc": estimate.auc,
        "auc_ci95": list(estimate.ci95),
        "difference_to_single_model": difference_entry(difference),
        "note": "not shipped: it costs one network run per member at inference",
    }
