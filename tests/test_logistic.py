"""The one head fitter (mammo_edge/model/logistic.py) against scikit-learn's LogisticRegression."""

from __future__ import annotations

import numpy as np
import pytest

from mammo_edge.model.logistic import fit_head, fit_logistic, head_probabilities


def _data(n: int, k: int, seed: int, separable: bool = False):
    rng = np.random.default_rng(seed)
    values = rng.normal(size=(n, k)) * rng.uniform(0.5, 3, k) + rng.normal(size=k)
    noise = 0 if separable else rng.normal(size=n)
    labels = (values @ rng.normal(size=k) + noise > 0.2).astype(int)
    return values, labels


@pytest.mark.parametrize(
    "n, k, seed, separable",
    [(40, 1, 0, False), (300, 2, 1, False), (25, 5, 2, False), (60, 2, 3, True)],
)
def test_fit_logistic_matches_sklearn(n, k, seed, separable):
    linear_model = pytest.importorskip("sklearn.linear_model")
    values, labels = _data(n, k, seed, separable)
    coefficients, intercept = fit_logistic(values, labels)
    reference = linear_model.LogisticRegression(C=1.0, tol=1e-12, max_iter=100_000)
    reference.fit(values, labels)
    np.testing.assert_allclose(coefficients, reference.coef_[0], atol=1e-5)
    assert intercept == pytest.approx(reference.intercept_[0], abs=1e-5)


def test_fit_head_standardises_as_training_did():
    linear_model = pytest.importorskip("sklearn.linear_model")
    values, labels = _data(120, 2, 4)
    values[:, 1] = 3.0  # a constant column keeps scale 1
    head = fit_head(values, labels, ["cnn_logit", "cnn_logit_minus_other"])
    mean, scale = values.mean(axis=0), values.std(axis=0)
    scale[scale == 0] = 1.0
    reference = linear_model.LogisticRegression(C=1.0, tol=1e-12, max_iter=100_000)
    reference.fit((values - mean) / scale, labels)
    np.testing.assert_allclose(head.mean, mean)
    np.testing.assert_allclose(head.scale, scale)
    np.testing.assert_allclose(head.coefficients, reference.coef_[0], atol=1e-5)
    assert head.intercept == pytest.approx(reference.intercept_[0], abs=1e-5)
    one_by_one = [head.probability(dict(zip(head.features, row, strict=True))) for row in values]
    np.testing.assert_allclose(head_probabilities(head, values), one_by_one, rtol=1e-12)


def test_train_fits_heads_with_the_runtime_fitter():
    from train import heads

    assert heads.fit_head is fit_head


@pytest.mark.parametrize(
    "labels, message",
    [([0, 0, 0, 0], "both classes"), ([0, 1, 2, 1], "0/1"), ([0, 1, 0], "do not pair")],
)
def test_bad_labels_are_refused(labels, message):
    with pytest.raises(ValueError, match=message):
        fit_logistic(np.zeros((4, 1)), np.array(labels))
