"""The triage threshold, the paired AUC difference, the pair feature and the ablation table."""

import numpy as np
import pytest

from mammo_edge.evaluation import metrics, repeated_metrics
from train.ablation import markdown_table, pair_scores, partner_index, summarise
from train.mias import group_by_image, parse_info

RNG = np.random.default_rng(7)


def random_scores(n=120):
    labels = RNG.integers(0, 2, n)
    scores = np.clip(labels * 0.3 + RNG.normal(0.4, 0.2, n), 0, 1)
    return labels, scores


@pytest.mark.parametrize("target", [0.5, 0.8, 0.9, 1.0])
def test_specificity_at_sensitivity_is_the_highest_threshold_reaching_it(target):
    labels, scores = random_scores()
    point = metrics.specificity_at_sensitivity(labels, scores, target)
    counts = metrics.confusion_at(labels, scores, point.threshold)
    assert counts.sensitivity >= target and counts.sensitivity == pytest.approx(point.sensitivity)
    assert counts.specificity == pytest.approx(point.specificity)
    higher = np.unique(scores[scores > point.threshold])
    # Any higher observed cut loses the sensitivity target.
    assert all(metrics.confusion_at(labels, scores, cut).sensitivity < target for cut in higher)


def test_paired_difference_of_a_model_with_itself_is_zero():
    labels, scores = random_scores()
    same = repeated_metrics.paired_auc_difference(labels, scores, scores)
    assert same.difference == 0 and same.ci95 == (0.0, 0.0)


def test_paired_difference_ci_contains_the_estimate_and_agrees_with_sklearn():
    from sklearn.metrics import roc_auc_score

    labels, better = random_scores()
    worse = better + RNG.normal(0, 0.3, len(better))
    patients = np.arange(len(labels)) // 2
    result = repeated_metrics.paired_auc_difference(labels, better, worse, patients, replicates=300)
    expected = roc_auc_score(labels, better) - roc_auc_score(labels, worse)
    assert result.difference == pytest.approx(expected)
    assert result.ci95[0] <= result.difference <= result.ci95[1]
    assert result.unit == "patient"


def test_export_threshold_rules():
    pytest.importorskip("onnx")
    from export.errors import ExportError
    from export.threshold import OutOfFoldPredictions, choose_threshold

    labels, scores = random_scores(40)
    predictions = OutOfFoldPredictions(
        images=tuple(f"i{k}" for k in range(40)),
        patients=np.arange(40),
        folds=np.arange(40) % 5,
        labels=labels,
        probabilities=scores,
        source="test",
    )
    triage = choose_threshold(predictions, "sensitivity:0.9")
    assert triage.sensitivity >= 0.9 and "triage" in triage.method
    assert choose_threshold(predictions, "youden").threshold == pytest.approx(
        metrics.youden_threshold(labels, scores).threshold
    )
    for bad in ("sensitivity:1.5", "sensitivity:x", "median"):
        with pytest.raises(ExportError, match="threshold-rule"):
            choose_threshold(predictions, bad)


def _records(count_patients=20):
    lines = []
    for patient in range(1, count_patients + 1):
        for number in (2 * patient - 1, 2 * patient):
            abnormal = number % 4 == 1
            kind = "CIRC B 500 500 30" if abnormal else "NORM"
            tissue = "FGD"[number % 3]
            lines.append(f"mdb{number:03d} {tissue} {kind}")
    return group_by_image(parse_info("\n".join(lines)))


def test_partner_is_the_other_breast_of_the_patient():
    records = _records(5)
    partner = partner_index(records)
    for index, other in enumerate(partner):
        assert records[other].patient_id == records[index].patient_id and other != index


def test_pair_scores_are_fitted_outside_the_test_fold():
    records = _records()
    scores = RNG.uniform(0.05, 0.95, len(records))
    folds = np.array([record.patient_id % 4 for record in records])
    stacked = pair_scores(records, scores, folds)
    # Flip the labels of fold 0: its own stacked scores must not move (no leakage).
    flipped = [
        type(record)(
            record.reference, record.patient_id, record.tissue, 1 - record.label, record.rows
        )
        if folds[index] == 0
        else record
        for index, record in enumerate(records)
    ]
    again = pair_scores(flipped, scores, folds)
    np.testing.assert_allclose(stacked[folds == 0], again[folds == 0])
    assert not np.allclose(stacked[folds != 0], again[folds != 0])


def test_summary_has_every_class_tissue_and_baseline_difference():
    records = _records()
    labels = np.array([record.label for record in records])
    scores = np.clip(labels * 0.5 + RNG.uniform(0, 0.5, len(records)), 0, 1)
    summary = summarise("model", records, scores, ("coin", RNG.uniform(0, 1, len(records))))
    assert set(summary.per_class_auc) == {"CALC", "CIRC", "SPIC", "MISC", "ARCH", "ASYM"}
    assert set(summary.per_tissue_auc) == {"F", "G", "D"}
    assert summary.per_class_auc["CIRC"]["n_abnormal"] == labels.sum()
    assert summary.auc_ci95[0] <= summary.auc <= summary.auc_ci95[1]
    assert summary.baseline == "coin" and summary.auc_minus_baseline is not None
    table = markdown_table([summary])
    assert table.count("\n") == 3 and "| model |" in table
