"""Fitting the stacking head (:mod:`mammo_edge.model.heads`): the one fitter, numpy only.

Training (``train.heads``) and ``mammo-edge calibrate`` fit heads alike, so a head refitted
at a site is the same kind of head training shipped. The head is a logistic regression on
standardised features with scikit-learn's objective for ``LogisticRegression(C=1)``
(L2 penalty on the coefficients, the intercept unpenalised)::

    minimise  0.5 * |w|^2 + C * sum_i log(1 + exp(-s_i * (x_i . w + b))),  s_i = +-1

solved by Newton's method (the objective is strictly convex in ``w``, so the optimum is
unique and a few steps reach it to machine precision; tests compare with scikit-learn).
"""

from __future__ import annotations

import numpy as np

from mammo_edge.model.heads import Head

#: Newton steps at most, and the gradient norm below which the optimum is reached.
MAX_STEPS = 100
GRADIENT_TOLERANCE = 1e-10


def fit_logistic(
    values: np.ndarray, labels: np.ndarray, c: float = 1.0
) -> tuple[np.ndarray, float]:
    """L2-regularised logistic regression, intercept unpenalised (sklearn's lbfgs objective).

    Args:
        values: ``(N, K)`` float features (standardise them first, as :func:`fit_head` does).
        labels: ``(N,)`` 0/1, both classes present.
        c: inverse regularisation strength (scikit-learn's ``C``).

    Returns:
        ``(coefficients (K,), intercept)``.

    Raises:
        ValueError: shapes disagree, labels are not 0/1 of both classes, or a value is
            not finite.
    """
    values = np.asarray(values, dtype=np.float64)
    labels = np.asarray(labels)
    if values.ndim != 2 or len(values) != len(labels):
        raise ValueError(f"values {values.shape} and labels {labels.shape} do not pair")
    if not np.isin(labels, (0, 1)).all() or len(np.unique(labels)) != 2:
        raise ValueError("labels must be 0/1 with both classes present")
    if not np.isfinite(values).all():
        raise ValueError("values must be finite")
    if c <= 0:
        raise ValueError(f"c must be positive, got {c}")
    design = np.column_stack([values, np.ones(len(values))])
    target = labels.astype(np.float64)
    penalty = np.ones(design.shape[1])
    penalty[-1] = 0.0  # the intercept is not penalised
    weights = np.zeros(design.shape[1])
    for _ in range(MAX_STEPS):
        probability = _sigmoid(design @ weights)
        gradient = penalty * weights + c * design.T @ (probability - target)
        if np.linalg.norm(gradient) < GRADIENT_TOLERANCE:
            break
        curvature = probability * (1.0 - probability)
        hessian = np.diag(penalty) + c * (design.T * curvature) @ design
        step = np.linalg.solve(hessian, gradient)
        weights = _damped(weights, step, design, target, penalty, c)
    return weights[:-1].copy(), float(weights[-1])


def fit_head(values: np.ndarray, labels: np.ndarray, names: list[str] | tuple[str, ...]) -> Head:
    """The runtime's head: :func:`fit_logistic` (C=1) on features standardised by their mean
    and population standard deviation (a constant feature keeps scale 1).

    Args:
        values: ``(N, K)`` feature values, columns named by ``names``.
        labels: ``(N,)`` 0/1.

    Returns:
        A :class:`~mammo_edge.model.heads.Head` that scores raw (unstandardised) values.
    """
    values = np.asarray(values, dtype=np.float64)
    if values.ndim != 2 or values.shape[1] != len(names):
        raise ValueError(f"values of shape {values.shape} for {len(names)} feature names")
    mean = values.mean(axis=0)
    scale = values.std(axis=0)
    scale[scale == 0] = 1.0
    coefficients, intercept = fit_logistic((values - mean) / scale, labels)
    return Head(
        tuple(names),
        tuple(float(v) for v in mean),
        tuple(float(v) for v in scale),
        tuple(float(v) for v in coefficients),
        intercept,
    )


def head_probabilities(head: Head, values: np.ndarray) -> np.ndarray:
    """``(N,)`` probabilities of ``head`` for ``(N, K)`` raw values in ``head.features`` order
    (the same formula as :meth:`Head.probability`, over many rows at once)."""
    values = np.asarray(values, dtype=np.float64)
    standardised = (values - np.asarray(head.mean)) / np.asarray(head.scale)
    return _sigmoid(head.intercept + standardised @ np.asarray(head.coefficients))


def _objective(weights, design, target, penalty, c) -> float:
    margin = design @ weights
    # log(1 + exp(m)) - y * m, computed without overflow
    loss = np.logaddexp(0.0, margin) - target * margin
    return 0.5 * float(np.sum(penalty * weights**2)) + c * float(loss.sum())


def _damped(weights, step, design, target, penalty, c) -> np.ndarray:
    """The Newton step, halved until the objective does not rise (separable data, far
    starts); a full step nearly always passes."""
    current = _objective(weights, design, target, penalty, c)
    length = 1.0
    for _ in range(30):
        candidate = weights - length * step
        if _objective(candidate, design, target, penalty, c) <= current + 1e-12:
            return candidate
        length /= 2
    return weights - length * step


def _sigmoid(values: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * values))
