"""``mammo-edge calibrate``: a site's labelled images turned into a calibrated model folder.

Synthetic site: 24 mini-MIAS-named patients (both breasts each, so the pair head can be
refitted), 14 abnormal images brighter than the normal ones, and the tiny mean-intensity
model (tests/conftest.py) carrying a pair head and two operating points.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from conftest import build_tiny_model, build_tiny_models_dir, synthetic_mammogram, tiny_metadata

from mammo_edge.calibration.figures import after_figures
from mammo_edge.calibration.fitting import IMAGE, PAIRED, SINGLE_VIEW, fit_calibration
from mammo_edge.calibration.site import CalibrationError, SiteImages, patient_folds
from mammo_edge.cli import main
from mammo_edge.evaluation.repeated_metrics import OPERATING_POINT_RULES
from mammo_edge.model.onnx_props import METADATA_PROPS_FIELD, top_level_fields

PATIENTS = 24
ABNORMAL_PATIENTS = 14
PAIR = {
    "features": ["cnn_logit", "cnn_logit_minus_other"],
    "mean": [0.0, 0.0],
    "scale": [1.0, 1.0],
    "coefficients": [1.0, 0.7],
    "intercept": 0.1,
}


def _point(threshold: float) -> dict:
    return {"threshold": threshold, "rule": "test", "sensitivity": 0.5, "specificity": 0.5}


BASE_POINTS = {
    "default": "balanced",
    "points": {"triage": _point(0.2), "balanced": _point(0.5)},
}


def write_site(folder: Path, abnormal_patients: int = ABNORMAL_PATIENTS, splits: int = 0) -> Path:
    """Images mdb001..mdb048 and ``labels.csv``, a dataset manifest (image,label,patient,
    and with ``splits`` a split column dealing patients to that many splits)."""
    rng = np.random.default_rng(7)
    folder.mkdir(parents=True, exist_ok=True)
    rows = ["image,label,patient" + (",split" if splits else "")]
    for patient in range(1, PATIENTS + 1):
        offset = rng.normal(0, 8)  # a patient's breasts look alike: the pair head's cue
        for side, number in (("L", 2 * patient - 1), ("R", 2 * patient)):
            abnormal = int(side == "L" and patient <= abnormal_patients)
            level = int(np.clip(118 + offset + 18 * abnormal + rng.normal(0, 7), 60, 200))
            name = f"mdb{number:03d}.png"
            image = synthetic_mammogram(96, 80, seed=number, level=level)
            assert cv2.imwrite(str(folder / name), image)
            split = f",s{patient % splits}" if splits else ""
            rows.append(f"{name},{abnormal},p{patient}{split}")
    labels = folder / "labels.csv"
    labels.write_text("\n".join(rows) + "\n", encoding="utf-8")
    return labels


def folder_digests(folder: Path) -> dict[str, str]:
    return {
        str(path.relative_to(folder)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }


@pytest.fixture(scope="module", autouse=True)
def _fewer_bootstrap_replicates():
    """200 resamples instead of 2,000: the intervals' code is the same, in a tenth of the time."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("mammo_edge.calibration.figures.REPLICATES", 200)
        yield


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    root = tmp_path_factory.mktemp("calibrate")
    labels = write_site(root / "site")
    base = build_tiny_models_dir(
        root / "base",
        tiny_metadata(head={"pair": PAIR}, operating_points=BASE_POINTS, threshold=0.5),
    )
    before = folder_digests(base)
    out = root / "calibrated"
    code = main(
        ["calibrate", str(root / "site"), "--labels", str(labels), "--model", str(base)]
        + ["--out", str(out), "--quiet", "--threads", "1"]
    )
    return {
        "root": root,
        "labels": labels,
        "base": base,
        "out": out,
        "code": code,
        "before": before,
    }


def test_calibrate_writes_a_model_folder_that_loads_with_new_thresholds_and_sha(site):
    from mammo_edge.model.onnx_model import Model

    assert site["code"] == 0
    out = site["out"]
    assert sorted(p.name for p in out.iterdir()) == [
        "MODEL_CARD.md",
        "fp32-calibrated.onnx",
        "manifest.json",
    ]
    base, calibrated = Model(site["base"], device="cpu"), Model(out, device="cpu")
    assert calibrated.verified and calibrated.sha256 != base.sha256
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["models"]["fp32-calibrated"]["sha256"] == calibrated.sha256
    points = calibrated.metadata.operating_points
    assert set(points["points"]) == set(points["single_view"]["points"]) == {"triage", "balanced"}
    shipped = {name: p["threshold"] for name, p in BASE_POINTS["points"].items()}
    refitted = {name: p["threshold"] for name, p in points["points"].items()}
    assert refitted != shipped and all(0 < t <= 1 for t in refitted.values())
    assert calibrated.metadata.threshold == refitted["balanced"]
    assert calibrated.metadata.head["pair"] != PAIR
    assert calibrated.metadata.head["single"]["features"] == ["cnn_logit"]
    card = (out / "MODEL_CARD.md").read_text()
    assert "before: fp32 as shipped" in card and "after: calibrated, cross-fitted" in card


def test_the_calibration_block_says_what_was_used(site, capsys):
    capsys.readouterr()
    assert main(["info", "--model", str(site["out"]), "--json"]) in (0, None)
    details = json.loads(capsys.readouterr().out)
    block = details["calibration"]
    base_file = site["base"] / "fp32.onnx"
    assert block["labels_sha256"] == hashlib.sha256(site["labels"].read_bytes()).hexdigest()
    assert (block["images"], block["patients"]) == (2 * PATIENTS, PATIENTS)
    assert (block["abnormal_images"], block["normal_images"]) == (14, 2 * PATIENTS - 14)
    assert block["paired_images"] == 2 * PATIENTS
    assert block["base_model"] == "fp32"
    assert block["base_model_name"] == "tiny-test-model"
    assert block["base_sha256"] == hashlib.sha256(base_file.read_bytes()).hexdigest()
    assert block["created"].endswith("Z") and block["mammo_edge_version"]
    assert block["refitted"] == ["pair", "single"] and block["kept"] == []
    for side in ("before", "after"):
        assert set(block[side]) == {PAIRED, SINGLE_VIEW}
        figures = block[side][PAIRED]
        assert figures["images"] == 2 * PATIENTS and 0 <= figures["auc"] <= 1
        for point in figures["points"].values():
            low, high = point["balanced_accuracy_ci95"]
            assert low <= point["balanced_accuracy"] <= high
    assert set(block["before"][PAIRED]["points"]) == {"triage", "balanced"}
    assert main(["info", "--model", str(site["out"])]) in (0, None)
    text = capsys.readouterr().out
    assert "calibration:" in text and block["labels_sha256"] in text


def test_the_network_bytes_are_the_base_models(site):
    onnx = pytest.importorskip("onnx")
    base_bytes = (site["base"] / "fp32.onnx").read_bytes()
    new_bytes = (site["out"] / "fp32-calibrated.onnx").read_bytes()

    def without_props(data):
        return [f for f in top_level_fields(data) if f[0] != METADATA_PROPS_FIELD]

    assert without_props(new_bytes) == without_props(base_bytes)
    base, new = onnx.load_from_string(base_bytes), onnx.load_from_string(new_bytes)
    assert new.graph.SerializeToString() == base.graph.SerializeToString()
    assert {p.key: p.value for p in new.metadata_props}["mammo_edge.model_name"] == (
        "fp32-calibrated"
    )


def test_the_base_model_files_are_untouched(site):
    assert folder_digests(site["base"]) == site["before"]


def test_every_verb_loads_the_folder(site, capsys):
    out, images = site["out"], site["root"] / "site"
    predictions = site["root"] / "predictions.jsonl"
    code = main(
        ["predict", str(images), "--model", str(out), "-f", "jsonl", "-o", str(predictions)]
    )
    assert code == 0
    records = [json.loads(line) for line in predictions.read_text().splitlines()]
    assert {r["model_name"] for r in records} == {"fp32-calibrated"}
    from mammo_edge.model.onnx_model import Model

    balanced = Model(out, device="cpu").metadata.operating_points["points"]["balanced"]
    assert {r["threshold"] for r in records if r["view_group"] == "exam"} == {balanced["threshold"]}
    evaluation = site["root"] / "evaluation"
    code = main(
        ["evaluate", str(images), "--labels", str(site["labels"]), "--model", str(out)]
        + ["--out", str(evaluation), "--quiet"]
    )
    assert code == 0 and (evaluation / "metrics.json").is_file()


def test_too_little_data_is_refused_with_the_counts_and_writes_nothing(tmp_path, capsys):
    labels = write_site(tmp_path / "site", abnormal_patients=9)
    base = build_tiny_models_dir(tmp_path / "base")
    out = tmp_path / "calibrated"
    capsys.readouterr()
    code = main(
        ["calibrate", str(tmp_path / "site"), "--labels", str(labels), "--model", str(base)]
        + ["--out", str(out), "--quiet"]
    )
    error = capsys.readouterr().err
    assert code == 1
    assert "9 abnormal images (at least 10 needed)" in error and "24 patients" in error
    assert not out.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["base", "site"]


def test_images_that_fail_to_score_count_against_the_floor(tmp_path, capsys):
    labels = write_site(tmp_path / "site", abnormal_patients=10)
    flat = np.full((96, 80), 128, dtype=np.uint8)  # no breast: the mammogram guard refuses it
    assert cv2.imwrite(str(tmp_path / "site" / "mdb001.png"), flat)
    base = build_tiny_models_dir(tmp_path / "base")
    out = tmp_path / "calibrated"
    capsys.readouterr()
    code = main(
        ["calibrate", str(tmp_path / "site"), "--labels", str(labels), "--model", str(base)]
        + ["--out", str(out), "--quiet"]
    )
    error = capsys.readouterr().err
    assert code == 1 and not out.exists()
    assert "1 input(s) that could not be scored" in error and "mdb001.png" in error
    assert "47 labelled, scored images" in error and "9 abnormal images" in error


def test_an_output_folder_with_files_or_the_shipped_models_is_refused(site, tmp_path, capsys):
    from mammo_edge.calibration.folder import check_out_folder
    from mammo_edge.model.registry import MODELS_DIR

    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "notes.txt").write_text("keep")
    code = main(
        ["calibrate", str(site["root"] / "site"), "--labels", str(site["labels"])]
        + ["--model", str(site["base"]), "--out", str(busy), "--quiet"]
    )
    assert code == 1 and "not an empty folder" in capsys.readouterr().err
    assert [p.name for p in busy.iterdir()] == ["notes.txt"]
    for protected in (MODELS_DIR, MODELS_DIR / "new", site["base"]):
        with pytest.raises(CalibrationError, match="never writes there"):
            check_out_folder(protected, site["base"] / "fp32.onnx")


def test_a_model_without_a_head_gets_points_only(tmp_path):
    from mammo_edge.model.onnx_model import Model

    labels = write_site(tmp_path / "site")
    base = build_tiny_model(tmp_path / "plain.onnx")
    out = tmp_path / "calibrated"
    code = main(
        ["calibrate", str(tmp_path / "site"), "--labels", str(labels), "--model", str(base)]
        + ["--out", str(out), "--quiet", "--name", "plain-site"]
    )
    assert code == 0
    model = Model(out, device="cpu")
    assert model.metadata.model_name == "plain-site" and model.metadata.head == {}
    points = model.metadata.operating_points
    assert "single_view" not in points and set(points["points"]) == {"triage", "balanced"}


def synthetic_site(n_patients: int = 30, seed: int = 0) -> SiteImages:
    """Arrays for the fitting functions: two images a patient, partners each other."""
    rng = np.random.default_rng(seed)
    labels = (rng.random(2 * n_patients) < 0.35).astype(np.int64)
    labels[:4] = [1, 0, 1, 0]
    network = 1 / (1 + np.exp(-(rng.normal(0, 1, len(labels)) + 1.2 * labels - 0.5)))
    partner = network.reshape(-1, 2)[:, ::-1].reshape(-1)
    patients = np.repeat([f"p{i}" for i in range(n_patients)], 2)
    folds = patient_folds(patients, labels)
    return SiteImages(
        tuple(map(str, range(len(labels)))), labels, patients, network, partner, folds
    )


def test_patient_folds_keep_patients_together_and_both_classes_in_every_complement():
    site = synthetic_site()
    for patient in set(site.patients.tolist()):
        assert len(set(site.folds[site.patients == patient].tolist())) == 1
    assert sorted(set(site.folds.tolist())) == [0, 1, 2, 3, 4]
    for fold in range(5):
        assert set(site.labels[site.folds != fold].tolist()) == {0, 1}


def test_after_figures_judge_each_fold_by_thresholds_chosen_on_the_others():
    site = synthetic_site()
    base = {IMAGE: {"default": 0.5}}
    final = fit_calibration(site, np.arange(len(site.labels)), {}, base, False)
    figures = after_figures(site, {}, base, False, final)[IMAGE]
    called = np.zeros(len(site.labels), dtype=bool)
    for fold in range(5):
        test = site.folds == fold
        rule = OPERATING_POINT_RULES["balanced"]
        threshold = rule(site.labels[~test], site.network[~test]).threshold
        called[test] = site.network[test] >= threshold
    truth = site.labels == 1
    assert figures.points["balanced"].sensitivity == pytest.approx(called[truth].mean())
    assert figures.points["balanced"].specificity == pytest.approx((~called[~truth]).mean())
    assert figures.points["balanced"].threshold == final.thresholds[IMAGE]["balanced"]


def test_a_fold_is_never_judged_by_its_own_labels():
    site = synthetic_site()
    flipped = site.labels.copy()
    flipped[site.folds == 0] = 1 - flipped[site.folds == 0]
    other = SiteImages(site.paths, flipped, site.patients, site.network, site.partner, site.folds)
    train = np.flatnonzero(site.folds != 0)
    fits = [fit_calibration(s, train, {"pair": PAIR}, {}, True) for s in (site, other)]
    assert fits[0].heads == fits[1].heads and fits[0].thresholds == fits[1].thresholds


def test_a_manifest_split_fixes_the_folds_and_unusable_rows_are_named(tmp_path, capsys):
    from mammo_edge.model.onnx_model import Model

    labels = write_site(tmp_path / "site", splits=3)
    with labels.open("a") as handle:
        handle.write("missing.png,1,p99,s0\n")
    base = build_tiny_models_dir(tmp_path / "base")
    out = tmp_path / "calibrated"
    capsys.readouterr()
    code = main(
        ["calibrate", str(tmp_path / "site"), "--labels", str(labels), "--model", str(base)]
        + ["--out", str(out), "--quiet"]
    )
    error = capsys.readouterr().err
    assert code == 0
    assert "1 row(s) of the dataset manifest that cannot be used" in error
    assert "missing.png" in error
    props = Model(out, device="cpu").session.get_modelmeta().custom_metadata_map
    block = json.loads(props["mammo_edge.calibration"])
    assert block["folds"] == 3 and block["fold_rule"] == "the labels' split column"
    assert block["images"] == 2 * PATIENTS
