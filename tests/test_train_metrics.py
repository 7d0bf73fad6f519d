"""Metrics: baseline beside accuracy, patient-resampled AUC intervals."""

import numpy as np
import pytest

from train.metrics import auc_with_patient_ci, classification_metrics, youden_threshold


def test_confusion_matrix_and_baseline():
    labels = np.array([0, 0, 0, 1, 1])
    probabilities = np.array([0.1, 0.6, 0.2, 0.9, 0.3])
    metrics = classification_metrics(labels, probabilities, 0.5)
    assert metrics["confusion_matrix"] == [[2, 1], [1, 1]]
    assert metrics["accuracy"] == pytest.approx(3 / 5)
    assert metrics["always_normal_accuracy"] == pytest.approx(3 / 5)
    assert metrics["sensitivity"] == pytest.approx(0.5)
    assert metrics["specificity"] == pytest.approx(2 / 3)
    assert metrics["balanced_accuracy"] == pytest.approx((0.5 + 2 / 3) / 2)


def test_auc_interval_brackets_the_estimate_and_resamples_patients():
    rng = np.random.default_rng(1)
    labels = rng.integers(0, 2, 200)
    probabilities = np.clip(labels * 0.3 + rng.normal(0.35, 0.2, 200), 0, 1)
    patients = np.arange(200) // 2
    auc, (low, high) = auc_with_patient_ci(labels, probabilities, patients, replicates=300)
    assert low < auc < high and 0.6 < auc < 0.95
    # Duplicating every sample inside its patient must not narrow a patient bootstrap.
    _, (dup_low, dup_high) = auc_with_patient_ci(
        np.repeat(labels, 5),
        np.repeat(probabilities, 5),
        np.repeat(patients, 5),
        replicates=300,
    )
    assert dup_high - dup_low == pytest.approx(high - low, rel=0.35)


def test_youden_threshold_separates_a_clean_split():
    labels = np.array([0, 0, 1, 1])
    threshold = youden_threshold(labels, np.array([0.1, 0.2, 0.7, 0.8]))
    assert 0.2 < threshold <= 0.7
