"""The stacking head and the full-resolution calcification evidence it reads."""

from __future__ import annotations

import math

import cv2
import numpy as np
import pytest
from conftest import build_tiny_model, synthetic_mammogram, tiny_metadata, tiny_probability

from mammo_edge.errors import ModelError
from mammo_edge.images.calcifications import assumed_mm_per_pixel, calcification_features
from mammo_edge.model.heads import Head, HeadError, logit

HEAD = {
    "features": ["cnn_logit", "calc_cluster"],
    "mean": [0.0, 1.0],
    "scale": [1.0, 2.0],
    "coefficients": [1.5, 0.8],
    "intercept": -0.2,
}


def breast_with_specks(specks: int, seed: int = 0) -> np.ndarray:
    """A 400x300 synthetic breast at 0.2 mm/px with ``specks`` 2-px bright dots in 1 cm."""
    image = synthetic_mammogram(400, 300, seed=seed, level=120)
    rng = np.random.default_rng(seed)
    for _ in range(specks):
        y, x = 200 + rng.integers(-20, 20), 80 + rng.integers(-20, 20)
        image[y : y + 2, x : x + 2] = 200
    return image


def test_a_cluster_of_specks_raises_the_cluster_features():
    plain = calcification_features(breast_with_specks(0))
    cluster = calcification_features(breast_with_specks(12))
    assert cluster.calc_cluster > plain.calc_cluster + 1.0
    assert cluster.calc_density > plain.calc_density
    assert math.exp(cluster.calc_cluster) - 1 >= 8  # most of the 12 specks found in 1 cm


def test_a_finer_image_is_measured_at_0_2_mm():
    image = breast_with_specks(12)
    double = cv2.resize(image, None, fx=2, fy=2, interpolation=cv2.INTER_NEAREST)
    at_native = calcification_features(image)
    at_0_1_mm = calcification_features(double, mm_per_pixel=0.1)
    assert at_0_1_mm.calc_cluster == pytest.approx(at_native.calc_cluster, abs=0.5)
    assert assumed_mm_per_pixel((1024, 1024)) == 0.2
    assert assumed_mm_per_pixel((4800, 3000)) == pytest.approx(0.05)


def test_the_head_is_a_logistic_on_standardised_features():
    head = Head.from_dict(HEAD)
    value = head.probability({"cnn_logit": 0.5, "calc_cluster": 3.0})
    assert value == pytest.approx(1 / (1 + math.exp(-(-0.2 + 1.5 * 0.5 + 0.8 * 1.0))))
    assert logit(0.5) == 0 and logit(1.0) == pytest.approx(math.log(1e6), rel=1e-3)


@pytest.mark.parametrize(
    "change, message",
    [
        ({"features": ["cnn_logit", "bmi"]}, "cannot compute"),
        ({"mean": [0.0]}, "differ in length"),
        ({"scale": [1.0, 0.0]}, "positive"),
        ({"intercept": "x"}, "malformed"),
    ],
)
def test_a_malformed_head_is_refused(change, message):
    with pytest.raises(HeadError, match=message):
        Head.from_dict({**HEAD, **change})


def test_a_model_with_a_broken_head_is_refused_at_load(tmp_path):
    from mammo_edge import Predictor

    bad = tiny_metadata(head={"single": {**HEAD, "features": ["cnn_logit", "bmi"]}})
    with pytest.raises(ModelError, match="cannot compute"):
        Predictor(build_tiny_model(tmp_path / "bad.onnx", bad))


def test_the_runtime_applies_the_head_to_the_network_and_the_evidence(tmp_path):
    from mammo_edge import Predictor

    model = build_tiny_model(tmp_path / "head.onnx", tiny_metadata(head={"single": HEAD}))
    image = breast_with_specks(12)
    result = Predictor(model, threads=1).predict(image)
    network = tiny_probability(image)
    evidence = calcification_features(image)
    expected = Head.from_dict(HEAD).probability(
        {"cnn_logit": logit(network), "calc_cluster": evidence.calc_cluster}
    )
    assert result.network_probability == pytest.approx(network, abs=1e-5)
    assert result.probability == pytest.approx(expected, abs=1e-5)
    plain = Predictor(build_tiny_model(tmp_path / "plain.onnx"), threads=1).predict(image)
    assert plain.network_probability is None


PAIR = {
    "features": ["cnn_logit", "cnn_logit_minus_other"],
    "mean": [0.0, 0.0],
    "scale": [1.0, 1.0],
    "coefficients": [1.0, 0.7],
    "intercept": 0.1,
}


def test_a_pair_head_reads_the_other_breast_once_it_is_in(tmp_path):
    from mammo_edge import Predictor

    model = build_tiny_model(tmp_path / "pair.onnx", tiny_metadata(head={"pair": PAIR}))
    left, right = synthetic_mammogram(level=170), synthetic_mammogram(level=110, seed=1)
    for name, image in (("mdb001.png", left), ("mdb002.png", right), ("mdb005.png", left)):
        assert cv2.imwrite(str(tmp_path / name), image)
    predictor = Predictor(model, threads=1)
    results = {r.path.rsplit("/", 1)[-1]: r for r in predictor.iter_predict_paths([str(tmp_path)])}
    head = Head.from_dict(PAIR)
    own, other = (logit(tiny_probability(image)) for image in (left, right))
    paired = head.probability({"cnn_logit": own, "cnn_logit_minus_other": own - other})
    alone = head.probability({"cnn_logit": own, "cnn_logit_minus_other": 0.0})
    assert results["mdb001.png"].probability == pytest.approx(paired, abs=1e-5)
    assert results["mdb001.png"].label == ("abnormal" if paired >= 0.5 else "normal")
    assert results["mdb005.png"].probability == pytest.approx(alone, abs=1e-5)
    assert results["mdb001.png"].exam_probability == pytest.approx(
        max(results["mdb001.png"].probability, results["mdb002.png"].probability)
    )
    ungrouped = Predictor(model, threads=1, group_by="none").predict(tmp_path / "mdb001.png")
    assert ungrouped.probability == pytest.approx(alone, abs=1e-5)


def test_a_pair_head_reading_calcifications_is_refused(tmp_path):
    from mammo_edge import Predictor

    head = {**PAIR, "features": ["cnn_logit", "calc_cluster"]}
    model = build_tiny_model(tmp_path / "bad.onnx", tiny_metadata(head={"pair": head}))
    with pytest.raises(ModelError, match="not supported"):
        Predictor(model)


SINGLE = {
    "features": ["cnn_logit"],
    "mean": [0.0],
    "scale": [1.0],
    "coefficients": [1.3],
    "intercept": 0.4,
}
#: Paired points at 0.5/0.3, single-view points at 0.6/0.2: each family is told apart.
PAIRED_AND_SINGLE_POINTS = {
    "default": "balanced",
    "points": {"balanced": {"threshold": 0.5}, "triage": {"threshold": 0.3}},
    "single_view": {
        "default": "balanced",
        "points": {"balanced": {"threshold": 0.6}, "triage": {"threshold": 0.2}},
    },
}


def _single_and_pair_model(tmp_path):
    metadata = tiny_metadata(
        head={"pair": PAIR, "single": SINGLE},
        operating_points=PAIRED_AND_SINGLE_POINTS,
        threshold=0.5,
    )
    return build_tiny_model(tmp_path / "both.onnx", metadata)


@pytest.mark.parametrize("point, paired_at, single_at", [(None, 0.5, 0.6), ("triage", 0.3, 0.2)])
def test_an_image_alone_gets_the_single_view_head_and_point(tmp_path, point, paired_at, single_at):
    from mammo_edge import Predictor

    model = _single_and_pair_model(tmp_path)
    left, right = synthetic_mammogram(level=170), synthetic_mammogram(level=110, seed=1)
    for name, image in (("mdb001.png", left), ("mdb002.png", right), ("mdb005.png", left)):
        assert cv2.imwrite(str(tmp_path / name), image)
    predictor = Predictor(model, threads=1, operating_point=point)
    results = {r.path.rsplit("/", 1)[-1]: r for r in predictor.iter_predict_paths([str(tmp_path)])}
    own, other = (logit(tiny_probability(image)) for image in (left, right))
    paired = Head.from_dict(PAIR).probability(
        {"cnn_logit": own, "cnn_logit_minus_other": own - other}
    )
    alone = Head.from_dict(SINGLE).probability({"cnn_logit": own})
    name = point or "balanced"
    with_partner, lone = results["mdb001.png"], results["mdb005.png"]
    assert (with_partner.view_group, with_partner.threshold) == ("exam", paired_at)
    assert with_partner.probability == pytest.approx(paired, abs=1e-5)
    assert with_partner.operating_point == name
    assert (lone.view_group, lone.threshold, lone.operating_point) == (
        "single_view",
        single_at,
        name,
    )
    assert lone.probability == pytest.approx(alone, abs=1e-5)
    assert lone.label == ("abnormal" if alone >= single_at else "normal")
    ungrouped = Predictor(model, threads=1, group_by="none", operating_point=point)
    record = ungrouped.predict(tmp_path / "mdb001.png")
    assert (record.view_group, record.threshold) == ("single_view", single_at)
    assert record.probability == pytest.approx(alone, abs=1e-5)


def test_a_custom_threshold_labels_both_families_alike(tmp_path):
    from mammo_edge import Predictor

    predictor = Predictor(_single_and_pair_model(tmp_path), threads=1, threshold=0.45)
    assert predictor.exam_scoring.paired_threshold == predictor.exam_scoring.single_threshold
    assert predictor.operating_point == "custom threshold"


def test_single_view_points_must_name_the_paired_points(tmp_path):
    from mammo_edge import Predictor

    points = {**PAIRED_AND_SINGLE_POINTS, "single_view": {"points": {"other": {"threshold": 1}}}}
    model = build_tiny_model(tmp_path / "bad.onnx", tiny_metadata(operating_points=points))
    with pytest.raises(ModelError, match="single-view operating points"):
        Predictor(model)


def test_a_single_head_beside_a_pair_head_reads_the_logit_only(tmp_path):
    from mammo_edge import Predictor

    single = {**SINGLE, "features": ["calc_cluster"]}
    metadata = tiny_metadata(head={"pair": PAIR, "single": single})
    with pytest.raises(ModelError, match="cnn_logit only"):
        Predictor(build_tiny_model(tmp_path / "bad.onnx", metadata))
