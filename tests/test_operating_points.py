"""Operating points chosen out of sample, and repeated-CV AUCs."""

from __future__ import annotations

import numpy as np
import pytest

from mammo_edge.evaluation import metrics, repeated_metrics
from mammo_edge.images.preprocess import PreprocessConfig
from mammo_edge.model.metadata import MetadataError, ModelMetadata


def scored(n=120, seed=0):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 2, n)
    scores = np.clip(0.5 + 0.25 * (labels - 0.5) + rng.normal(0, 0.2, n), 0, 1)
    folds = np.arange(n) % 5 + 1
    return labels, scores, folds


@pytest.mark.parametrize("rule", ["triage", "balanced"])
def test_a_folds_threshold_never_sees_its_own_labels_or_scores(rule):
    labels, scores, folds = scored()
    thresholds = repeated_metrics.cross_fitted_thresholds(labels, scores, folds, rule)
    test = folds == 3
    flipped_labels, shuffled_scores = labels.copy(), scores.copy()
    flipped_labels[test] = 1 - flipped_labels[test]
    shuffled_scores[test] = np.random.default_rng(1).random(test.sum())
    again = repeated_metrics.cross_fitted_thresholds(flipped_labels, shuffled_scores, folds, rule)
    assert np.array_equal(thresholds[test], again[test])
    # ...while the other folds' thresholds did depend on fold 3
    assert not np.array_equal(thresholds[~test], again[~test])


def test_cross_fitted_thresholds_follow_the_rule_on_the_other_folds():
    labels, scores, folds = scored()
    thresholds = repeated_metrics.cross_fitted_thresholds(labels, scores, folds, "triage")
    rest = folds != 1
    expected = metrics.specificity_at_sensitivity(labels[rest], scores[rest], 0.90).threshold
    assert np.all(thresholds[folds == 1] == expected)
    counts = repeated_metrics.confusion_at_thresholds(labels, scores, thresholds)
    assert counts.n == len(labels)


def test_repeated_auc_is_the_mean_over_repeats_with_an_interval_around_it():
    labels, scores, _ = scored()
    other = np.clip(scores + np.random.default_rng(2).normal(0, 0.1, len(scores)), 0, 1)
    patients = np.arange(len(labels)) // 2
    estimate = repeated_metrics.repeated_auc_with_ci(
        labels, [scores, other], patients, replicates=200
    )
    mean = (metrics.roc_auc(labels, scores) + metrics.roc_auc(labels, other)) / 2
    assert estimate.auc == pytest.approx(mean)
    assert estimate.ci95[0] < mean < estimate.ci95[1]


def test_a_paired_repeated_difference_of_a_candidate_with_itself_is_zero():
    labels, scores, _ = scored()
    patients = np.arange(len(labels))
    same = repeated_metrics.repeated_paired_auc_difference(
        labels, [scores, scores], [scores, scores], patients, replicates=50
    )
    assert same.difference == 0 and same.ci95 == (0.0, 0.0)
    worse = repeated_metrics.repeated_paired_auc_difference(
        labels, [1 - scores], [scores], patients, replicates=50
    )
    assert worse.difference < 0 and worse.ci95[1] < 0
    with pytest.raises(ValueError, match="not paired"):
        repeated_metrics.repeated_paired_auc_difference(
            labels, [scores], [scores, scores], patients
        )


def metadata_with(points):
    return ModelMetadata(
        model_name="m", model_version="1", preprocess=PreprocessConfig(), operating_points=points
    )


POINTS = {
    "default": "balanced",
    "points": {"triage": {"threshold": 0.2}, "balanced": {"threshold": 0.4}},
}


def test_named_operating_points_travel_in_the_metadata():
    props = metadata_with(POINTS).to_props()
    parsed = ModelMetadata.from_props({**props}, "test")
    assert parsed.operating_point(None) == (0.4, "balanced")
    assert parsed.operating_point("triage") == (0.2, "triage")
    with pytest.raises(MetadataError, match="no operating point 'strict'.*balanced, triage"):
        parsed.operating_point("strict")


def test_a_model_without_points_keeps_its_one_threshold():
    plain = metadata_with({})
    assert "mammo_edge.operating_points" not in plain.to_props()
    assert plain.operating_point(None) == (0.5, "default")
    with pytest.raises(MetadataError, match="one threshold"):
        plain.operating_point("triage")


@pytest.mark.parametrize(
    "bad",
    [
        {"points": {"triage": {"threshold": 1.5}}},
        {"default": "nope", "points": {"triage": {"threshold": 0.1}}},
    ],
)
def test_malformed_operating_points_are_refused_at_load(bad):
    props = metadata_with(POINTS).to_props()
    props["mammo_edge.operating_points"] = __import__("json").dumps(bad)
    with pytest.raises(MetadataError):
        ModelMetadata.from_props(props, "test")


def test_predict_and_evaluate_take_a_named_operating_point(capsys, tmp_path):
    import json as json_module

    import cv2
    from conftest import build_tiny_model, synthetic_mammogram, tiny_metadata

    from mammo_edge.cli import main

    model = build_tiny_model(tmp_path / "points.onnx", tiny_metadata(operating_points=POINTS))
    image = tmp_path / "mdb001.png"
    assert cv2.imwrite(str(image), synthetic_mammogram(96, 80, 0))

    def thresholds(*extra):
        code = main(["predict", str(image), "-m", str(model), "-f", "jsonl", *extra])
        captured = capsys.readouterr()
        return code, captured

    code, captured = thresholds()
    assert code == 0 and json_module.loads(captured.out)["threshold"] == 0.4
    assert "(balanced)" in captured.err
    code, captured = thresholds("--operating-point", "triage")
    assert code == 0 and json_module.loads(captured.out)["threshold"] == 0.2
    code, captured = thresholds("--operating-point", "strict")
    assert code == 1 and "no operating point 'strict'" in captured.err
    code, captured = thresholds("--operating-point", "triage", "--threshold", "0.3")
    assert code == 1 and "not both" in captured.err
    code, captured = thresholds("--group-by", "none")
    assert json_module.loads(captured.out)["view_group"] == "single_view"
    code, captured = thresholds()
    assert json_module.loads(captured.out)["view_group"] == "single_view"
