"""What calibration refits: the heads after the network and each scoring mode's thresholds.

The network is never touched. On the site's network probabilities (and, for a model whose
head weighs the other breast, the other breast's) calibration refits, per scoring mode:

- ``paired`` (a model with a pair head): the pair head (:func:`mammo_edge.model.logistic.fit_head`
  on the network logit and its difference to the other breast's) on the images whose other
  breast was scored, and its ``triage`` and ``balanced`` thresholds: the top-level
  operating points;
- ``single_view`` (the same model, an image scored alone): a head on the network logit
  alone, on every image, and its thresholds: ``operating_points["single_view"]``;
- ``image`` (a model without a pair head): its single head if it has one, else the
  network probability as it is, and the thresholds: the top-level points.

Each threshold is its rule (:data:`~mammo_edge.evaluation.repeated_metrics.OPERATING_POINT_RULES`)
on
the fitted head's probabilities of the same images. Fitted on all images this is what ships;
fitted on four folds it is what the fifth is judged by (:mod:`.figures`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from mammo_edge.calibration.site import (
    MIN_ABNORMAL_IMAGES,
    MIN_NORMAL_IMAGES,
    CalibrationError,
    SiteImages,
)
from mammo_edge.evaluation.repeated_metrics import OPERATING_POINT_RULES
from mammo_edge.model.heads import PAIR_FEATURE, Head, HeadError, pair_head, single_head
from mammo_edge.model.logistic import fit_head, head_probabilities

#: The points calibrate fits, with the words the shipped models use for them.
RULES = {
    "triage": "highest threshold with sensitivity >= 0.90",
    "balanced": "Youden's J (sensitivity + specificity - 1) at its maximum",
}
PAIRED, SINGLE_VIEW, IMAGE = "paired", "single_view", "image"
MODE_TITLES = {
    PAIRED: "paired (weighed against the other breast)",
    SINGLE_VIEW: "single view (an image scored alone)",
    IMAGE: "every image",
}
PAIR_FEATURES = ("cnn_logit", PAIR_FEATURE)
SINGLE_FEATURES = ("cnn_logit",)


@dataclass(frozen=True)
class CalibrationFit:
    """What one fit yields: the heads (metadata form) and each mode's thresholds.

    Attributes:
        heads: ``{"pair": {...}, "single": {...}}`` as :mod:`mammo_edge.model.heads` reads it.
        thresholds: mode -> rule -> threshold.
        kept: modes left as the base model had them (too few paired images).
        refitted: the heads refitted (``pair``, ``single``).
    """

    heads: dict
    thresholds: dict[str, dict[str, float]]
    kept: tuple[str, ...] = field(default=())
    refitted: tuple[str, ...] = field(default=())


def scoring_modes(base_head: dict) -> tuple[str, ...]:
    """The modes a model scores in: ``paired`` and ``single_view`` with a pair head, else
    ``image``."""
    return (PAIRED, SINGLE_VIEW) if base_head.get("pair") else (IMAGE,)


def check_base_head(base_head: dict) -> None:
    """Refuse a head calibrate cannot refit (one reading calcification features)."""
    try:
        single_head(base_head)
    except HeadError as error:
        raise CalibrationError(f"the base model's head cannot be calibrated: {error}") from None
    for name in ("pair", "single"):
        if base_head.get(name):
            allowed = PAIR_FEATURES if name == "pair" else SINGLE_FEATURES
            extra = sorted(set(base_head[name]["features"]) - set(allowed))
            if extra:
                raise CalibrationError(
                    f"the base model's {name} head reads {extra}, which calibrate cannot "
                    "compute from the records; only the network logit (and, for a pair "
                    "head, its difference to the other breast) can be refitted"
                )


def can_refit_pair(site: SiteImages) -> bool:
    """Enough paired images of each class to refit the pair head (the same floors)."""
    paired = site.labels[site.paired]
    return (
        int(paired.sum()) >= MIN_ABNORMAL_IMAGES
        and int(len(paired) - paired.sum()) >= MIN_NORMAL_IMAGES
    )


def mode_images(site: SiteImages, mode: str, index: np.ndarray) -> np.ndarray:
    """The images of ``index`` a mode scores: paired ones for ``paired``, else all."""
    index = np.asarray(index)
    return index[site.paired[index]] if mode == PAIRED else index


def mode_head(heads: dict, mode: str) -> Head | None:
    """The head a mode scores with (``None``: the network probability as it is): the pair
    head for ``paired``, else the one the runtime scores a lone image with
    (:func:`~mammo_edge.model.heads.single_head`)."""
    return pair_head(heads) if mode == PAIRED else single_head(heads)


def mode_scores(site: SiteImages, heads: dict, mode: str, index: np.ndarray) -> np.ndarray:
    """``(len(index),)`` probabilities of the images ``index`` in ``mode`` under ``heads``."""
    head = mode_head(heads, mode)
    if head is None:
        return site.network[index].astype(np.float64)
    features = np.column_stack([site.feature(name, index) for name in head.features])
    if mode != PAIRED:  # alone, the difference to the other breast is 0 (as the runtime)
        features[:, [i for i, n in enumerate(head.features) if n == PAIR_FEATURE]] = 0.0
    return head_probabilities(head, features)


def fit_calibration(
    site: SiteImages,
    index: np.ndarray,
    base_head: dict,
    base_thresholds: dict[str, dict[str, float]],
    refit_pair: bool,
) -> CalibrationFit:
    """Refit the heads and thresholds on the images ``index`` (all of them, or four folds).

    Args:
        base_head: the base model's head (metadata form).
        base_thresholds: the base model's thresholds by mode and point name, kept for
            ``paired`` when ``refit_pair`` is false (a rule the base lacks takes its first).
        refit_pair: refit the pair head and paired points (:func:`can_refit_pair`).
    """
    index = np.asarray(index)
    heads: dict = {}
    kept: list[str] = []
    modes = scoring_modes(base_head)
    if base_head.get("pair"):
        if refit_pair:
            heads["pair"] = _fit(site, mode_images(site, PAIRED, index), PAIR_FEATURES)
        else:
            heads["pair"] = dict(base_head["pair"])
            kept.append(PAIRED)
    if base_head.get("pair") or base_head.get("single"):
        heads["single"] = _fit(site, index, SINGLE_FEATURES)
    thresholds = {}
    for mode in modes:
        if mode in kept:
            shipped = base_thresholds[mode]
            first = next(iter(shipped.values()))
            thresholds[mode] = {rule: float(shipped.get(rule, first)) for rule in RULES}
            continue
        chosen = mode_images(site, mode, index)
        scores = mode_scores(site, heads, mode, chosen)
        thresholds[mode] = {
            rule: float(OPERATING_POINT_RULES[rule](site.labels[chosen], scores).threshold)
            for rule in RULES
        }
    refitted = [name for name in ("pair", "single") if name in heads]
    if PAIRED in kept:
        refitted.remove("pair")
    return CalibrationFit(heads, thresholds, tuple(kept), tuple(refitted))


def _fit(site: SiteImages, index: np.ndarray, names: tuple[str, ...]) -> dict:
    values = np.column_stack([site.feature(name, index) for name in names])
    try:
        return fit_head(values, site.labels[index], list(names)).as_dict()
    except ValueError as error:
        raise CalibrationError(f"cannot fit the head on {len(index)} images: {error}") from None
