"""mammo_edge.evaluation.metrics against scikit-learn on random data, and the one-copy rule."""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from mammo_edge.evaluation import metrics

sklearn_metrics = pytest.importorskip("sklearn.metrics")

REPO_ROOT = Path(__file__).resolve().parents[1]


def random_cases(count: int = 200, seed: int = 0):
    """Labels and scores with both classes; scores rounded so ties are common."""
    rng = np.random.default_rng(seed)
    produced = 0
    while produced < count:
        n = int(rng.integers(2, 80))
        labels = rng.integers(0, 2, n)
        if labels.min() == labels.max():
            continue
        scores = np.round(rng.random(n) * 0.6 + labels * rng.random() * 0.4, rng.integers(1, 4))
        produced += 1
        yield labels, scores


def test_auc_matches_sklearn_including_ties():
    for labels, scores in random_cases():
        assert metrics.roc_auc(labels, scores) == pytest.approx(
            sklearn_metrics.roc_auc_score(labels, scores), abs=1e-12
        )


@pytest.mark.parametrize("drop_intermediate", [True, False])
def test_roc_curve_matches_sklearn(drop_intermediate):
    for labels, scores in random_cases(100, seed=1):
        fpr, tpr, thresholds = sklearn_metrics.roc_curve(
            labels, scores, drop_intermediate=drop_intermediate
        )
        curve = metrics.roc_curve(labels, scores, drop_intermediate=drop_intermediate)
        np.testing.assert_allclose(curve.false_positive_rate, fpr)
        np.testing.assert_allclose(curve.true_positive_rate, tpr)
        # sklearn's first threshold is inf (>= 1.3) or max + 1 (older): both mean "none".
        np.testing.assert_array_equal(curve.thresholds[1:], thresholds[1:])
        assert math.isinf(curve.thresholds[0])


def test_youden_threshold_is_sklearn_roc_argmax():
    for labels, scores in random_cases(100, seed=2):
        fpr, tpr, thresholds = sklearn_metrics.roc_curve(labels, scores)
        best = int(np.argmax(tpr - fpr))
        point = metrics.youden_threshold(labels, scores)
        assert point.threshold == min(thresholds[best], 1.0)
        assert point.sensitivity == pytest.approx(tpr[best])
        assert point.specificity == pytest.approx(1 - fpr[best])


def test_confusion_metrics_match_sklearn():
    for labels, scores in random_cases(100, seed=3):
        threshold = float(np.median(scores))
        counts = metrics.confusion_at(labels, scores, threshold)
        called = (scores >= threshold).astype(int)
        tn, fp, fn, tp = sklearn_metrics.confusion_matrix(labels, called, labels=[0, 1]).ravel()
        assert counts.confusion_matrix == [[tn, fp], [fn, tp]]
        assert counts.sensitivity == pytest.approx(sklearn_metrics.recall_score(labels, called))
        assert counts.specificity == pytest.approx(
            sklearn_metrics.recall_score(labels, called, pos_label=0)
        )
        assert counts.balanced_accuracy == pytest.approx(
            sklearn_metrics.balanced_accuracy_score(labels, called)
        )
        assert counts.accuracy == pytest.approx(sklearn_metrics.accuracy_score(labels, called))
        if tp + fp:
            assert counts.ppv == pytest.approx(sklearn_metrics.precision_score(labels, called))
        if tn + fn:
            assert counts.npv == pytest.approx(
                sklearn_metrics.precision_score(labels, called, pos_label=0)
            )
        assert counts.always_normal_accuracy == pytest.approx(np.mean(labels == 0))


def test_rates_without_a_denominator_are_nan_not_errors():
    counts = metrics.confusion_at([0, 0, 0], [0.1, 0.7, 0.2], 0.5)
    assert counts.confusion_matrix == [[2, 1], [0, 0]]
    assert math.isnan(counts.sensitivity) and counts.specificity == pytest.approx(2 / 3)
    assert counts.npv == 1.0 and counts.ppv == 0.0
    assert counts.balanced_accuracy == pytest.approx(2 / 3)


def test_ci_contains_the_point_estimate_on_random_data():
    rng = np.random.default_rng(4)
    for _ in range(5):
        labels = rng.integers(0, 2, 120)
        scores = np.clip(labels * 0.25 + rng.normal(0.4, 0.2, 120), 0, 1)
        patients = np.arange(120) // 2
        estimate = metrics.auc_with_ci(labels, scores, patients, replicates=400)
        assert estimate.auc == pytest.approx(sklearn_metrics.roc_auc_score(labels, scores))
        low, high = estimate.ci95
        assert low <= estimate.auc <= high and low < high
        assert estimate.unit == "patient" and "over patients, 400 replicates" in estimate.method


def test_bootstrap_resamples_patients_not_images():
    rng = np.random.default_rng(5)
    labels = rng.integers(0, 2, 100)
    scores = np.clip(labels * 0.3 + rng.normal(0.35, 0.2, 100), 0, 1)
    patients = np.arange(100)
    width = np.subtract(*metrics.auc_with_ci(labels, scores, patients, 400).ci95[::-1])
    # Five copies of each image inside its patient: same interval width, not ~sqrt(5) less.
    copies = metrics.auc_with_ci(
        np.repeat(labels, 5), np.repeat(scores, 5), np.repeat(patients, 5), 400
    )
    assert copies.ci95[1] - copies.ci95[0] == pytest.approx(width, rel=0.35)
    # Treating the copies as independent images makes the interval falsely narrow.
    naive = metrics.auc_with_ci(np.repeat(labels, 5), np.repeat(scores, 5), None, 400)
    assert naive.unit == "image" and naive.ci95[1] - naive.ci95[0] < 0.7 * width


def test_bootstrap_is_reproducible_and_defaults_to_2000_replicates():
    labels = np.array([0, 1] * 20)
    scores = np.linspace(0, 1, 40)
    first = metrics.auc_with_ci(labels, scores)
    assert first == metrics.auc_with_ci(labels, scores)
    assert first.replicates == metrics.BOOTSTRAP_REPLICATES == 2000


def test_one_class_gives_nan_not_an_exception():
    labels, scores = np.ones(5, dtype=int), np.linspace(0.1, 0.9, 5)
    assert math.isnan(metrics.roc_auc(labels, scores))
    estimate = metrics.auc_with_ci(labels, scores)
    assert math.isnan(estimate.auc) and all(math.isnan(v) for v in estimate.ci95)
    assert math.isnan(metrics.youden_threshold(labels, scores).threshold)
    assert math.isnan(metrics.sensitivity_at_specificity(labels, scores).sensitivity)


def test_sensitivity_at_90_specificity_against_brute_force():
    for labels, scores in random_cases(100, seed=6):
        best = (-1.0, None)
        for cut in np.r_[np.unique(scores), np.inf]:
            called = scores >= cut
            specificity = np.mean(~called[labels == 0])
            sensitivity = np.mean(called[labels == 1])
            if specificity >= 0.9 - 1e-12 and sensitivity > best[0]:
                best = (sensitivity, specificity)
        point = metrics.sensitivity_at_specificity(labels, scores, 0.9)
        assert point.sensitivity == pytest.approx(best[0])
        assert point.specificity >= 0.9 - 1e-12
        counts = metrics.confusion_at(labels, scores, point.threshold)
        assert counts.sensitivity == pytest.approx(point.sensitivity)


def test_per_group_is_the_metric_within_each_group():
    rng = np.random.default_rng(7)
    labels = rng.integers(0, 2, 90)
    scores = rng.random(90)
    groups = np.array(["fatty", "dense", "", None] * 22 + ["dense", "fatty"], dtype=object)
    results = {group.group: group for group in metrics.per_group(labels, scores, groups, 0.5)}
    assert sorted(results) == ["dense", "fatty"]  # no group is no group, not a group ""
    for name, result in results.items():
        inside = groups == name
        assert result.n == inside.sum() and result.n_abnormal == labels[inside].sum()
        assert result.auc == pytest.approx(
            sklearn_metrics.roc_auc_score(labels[inside], scores[inside])
        )
        assert result.sensitivity == pytest.approx(np.mean(scores[inside & (labels == 1)] >= 0.5))


@pytest.mark.parametrize(
    ("labels", "scores", "message"),
    [
        ([0, 2], [0.1, 0.2], "labels must be 0 or 1"),
        ([0, 1], [0.1, float("nan")], "finite"),
        ([0, 1, 1], [0.1, 0.2], "equal length"),
    ],
)
def test_bad_input_is_a_clear_value_error(labels, scores, message):
    with pytest.raises(ValueError, match=message):
        metrics.roc_auc(labels, scores)


def test_train_wrappers_return_the_shared_numbers():
    pytest.importorskip("train.metrics")
    from train import metrics as train_metrics

    rng = np.random.default_rng(8)
    labels = rng.integers(0, 2, 60)
    scores = rng.random(60)
    patients = np.arange(60) // 2
    estimate = metrics.auc_with_ci(labels, scores, patients)
    assert train_metrics.auc_with_patient_ci(labels, scores, patients) == (
        estimate.auc,
        estimate.ci95,
    )
    assert train_metrics.youden_threshold(labels, scores) == (
        metrics.youden_threshold(labels, scores).threshold
    )


@pytest.mark.parametrize("module", ["train/metrics.py", "export/threshold.py"])
def test_no_second_copy_of_the_maths(module):
    """The wrappers import the maths from mammo_edge.evaluation.metrics (an import, not a
    mention)."""
    import ast

    tree = ast.parse((REPO_ROOT / module).read_text())
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            imported |= {f"{node.module}.{alias.name}" for alias in node.names}
        elif isinstance(node, ast.Import):
            imported |= {alias.name for alias in node.names}
    assert not any(name.startswith("sklearn") for name in imported)
    assert "mammo_edge.evaluation.metrics" in imported or any(
        name.startswith("mammo_edge.evaluation.metrics.") for name in imported
    ), sorted(imported)


def test_metrics_module_needs_numpy_only():
    # matplotlib is imported for roc.png only, when one is written.
    code = (
        "import sys, mammo_edge.evaluation.metrics, mammo_edge.evaluation.repeated_metrics, "
        "mammo_edge.evaluation.labels, mammo_edge.evaluation.results, "
        "mammo_edge.evaluation.summary, mammo_edge.evaluation.plots; "
        "bad = [m for m in ('sklearn', 'scipy', 'tensorflow', 'matplotlib') if m in sys.modules]; "
        "sys.exit(str(bad) if bad else 0)"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO_ROOT)
