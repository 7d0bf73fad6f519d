"""Fitting the stacking head the runtime applies (:mod:`mammo_edge.model.heads`).

A logistic head on the CNN logit and the calcification cluster features, optionally with
their differences to the patient's other breast; :func:`cross_fitted_head` scores each
fold with a head fitted on the other folds only.
"""

from __future__ import annotations

import numpy as np

from mammo_edge.images.calcifications import FEATURE_NAMES
from mammo_edge.model.heads import logit as runtime_logit
from mammo_edge.model.logistic import fit_head  # the one head fitter, shared with calibrate

from .mias import ImageRecord


def logit(probabilities: np.ndarray) -> np.ndarray:
    """:func:`mammo_edge.model.heads.logit` of every value (the same clipping)."""
    return np.array([runtime_logit(float(value)) for value in np.ravel(probabilities)])


def partner_index(records: list[ImageRecord]) -> np.ndarray:
    """Index of the other breast of the same patient (-1 when absent)."""
    from .ablation import partner_index as by_patient

    return by_patient(records)


def head_features(
    cnn_probability: np.ndarray,
    calcifications: np.ndarray,
    partner: np.ndarray | None,
) -> np.ndarray:
    """The stacking head's inputs: CNN logit, cluster features [, the differences to the
    other breast]. Column names: :func:`head_feature_names`."""
    own = np.column_stack([logit(cnn_probability), calcifications])
    if partner is None:
        return own
    other = np.where(partner[:, None] >= 0, own[np.maximum(partner, 0)], own)
    return np.column_stack([own, own[:, 0] - other[:, 0], own[:, 1] - other[:, 1]])


def head_feature_names(pair: bool) -> list[str]:
    names = ["cnn_logit", *FEATURE_NAMES]
    return names + ["cnn_logit_minus_other", "calc_cluster_minus_other"] if pair else names


def cross_fitted_head(values: np.ndarray, labels: np.ndarray, folds: np.ndarray) -> np.ndarray:
    """Out-of-fold stacked probabilities: fold k's head is fitted on the other folds."""
    stacked = np.empty(len(labels))
    names = [f"f{i}" for i in range(values.shape[1])]
    for fold in np.unique(folds):
        test = folds == fold
        head = fit_head(values[~test], labels[~test], names)
        stacked[test] = [
            head.probability(dict(zip(names, row, strict=True))) for row in values[test]
        ]
    return stacked
