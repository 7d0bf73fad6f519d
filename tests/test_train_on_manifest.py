"""``python -m train --data DATASET.csv`` on a tiny synthetic manifest (DICOM and 16-bit PNG,
20 patients, 256x128 inputs, one epoch): trains, resumes, exports, predicts; lite0 under
the patient protocol; fine-tuning from a model file."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from conftest import synthetic_mammogram, write_dicom

pytest.importorskip("tensorflow", reason="needs the train extra")
pytest.importorskip("tf2onnx", reason="needs the train extra")
pytestmark = pytest.mark.tensorflow

from train.cli import main as train_main  # noqa: E402

TINY = ["--folds", "2", "--epochs", "1", "--image-size", "256", "--seed", "3"]
LESION = (40.0, 60.0, 9.0)  # x, y, radius from the top-left, inside the breast


def _image(patient: int, side: str, abnormal: bool) -> np.ndarray:
    image = synthetic_mammogram(128, 100, seed=patient * 2 + (side == "R"))
    if side == "R":
        image = image[:, ::-1]  # chest wall on the right, as a right breast is shown
    if abnormal:
        x, y, radius = LESION
        cv2.circle(image, (int(x), int(y)), int(radius), 250, -1)
    return np.ascontiguousarray(image)


@pytest.fixture(scope="module")
def manifest(tmp_path_factory) -> Path:
    """20 patients, both breasts: 1-10 with an abnormal left breast (1-5 with its circle),
    odd patients as 16-bit PNGs, even ones as DICOMs carrying their laterality tag."""
    folder = tmp_path_factory.mktemp("dataset")
    rows = []
    for patient in range(1, 21):
        for side in ("L", "R"):
            abnormal = patient <= 10 and side == "L"
            pixels = _image(patient, side, abnormal).astype(np.uint16) * 257
            if patient % 2:
                name = f"png/p{patient:02d}_{side}.png"
                (folder / "png").mkdir(exist_ok=True)
                assert cv2.imwrite(str(folder / name), pixels)
                laterality = side
            else:
                name = f"dicom/p{patient:02d}_{side}.dcm"
                (folder / "dicom").mkdir(exist_ok=True)
                write_dicom(folder / name, pixels, extra={"ImageLaterality": side})
                laterality = ""  # from the DICOM tag
            circle = [str(v) for v in LESION] if abnormal and patient <= 5 else ["", "", ""]
            rows.append([name, int(abnormal), f"P{patient}", laterality, "mass", *circle])
    path = folder / "dataset.csv"
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["image", "label", "patient", "laterality", "finding", "x", "y", "radius"])
        writer.writerows(rows)
    return path


@pytest.fixture(scope="module")
def lesion_run(manifest, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("run") / "lesion"
    arguments = ["--arch", "lite0", "--data", str(manifest), "--out", str(out), *TINY]
    assert train_main([*arguments, "--patches-per-epoch", "32"]) == 0
    return out


def test_lesion_recipe_on_a_manifest_writes_the_reports(lesion_run, manifest):
    metrics = json.loads((lesion_run / "metrics.json").read_text())
    assert metrics["n"] == 40 and metrics["n_patients"] == 20 and metrics["n_abnormal"] == 10
    assert metrics["n_images_with_lesion_geometry"] == 5
    assert len(metrics["auc_ci95"]) == 2 and len(metrics["per_fold"]) == 2
    assert set(metrics["operating_points_cross_fitted"]) == {"triage", "balanced"}
    with (lesion_run / "predictions.csv").open(newline="") as handle:
        predictions = list(csv.DictReader(handle))
    assert len(predictions) == 40 and {row["fold"] for row in predictions} == {"1", "2"}
    folds_of = {}
    for row in predictions:  # a patient's two breasts share a fold
        folds_of.setdefault(row["patient"], set()).add(row["fold"])
    assert all(len(folds) == 1 for folds in folds_of.values())
    assert (lesion_run / "roc.png").is_file() and (lesion_run / "model.keras").is_file()
    head = json.loads((lesion_run / "head.json").read_text())  # both breasts of each patient
    assert head["pair_head"] is True and set(head["head"]) == {"pair", "single"}
    assert set(head["operating_points"]["single_view"]["points"]) == {"triage", "balanced"}


def test_a_rerun_keeps_every_finished_fold_and_the_final_model(lesion_run, manifest, capsys):
    arguments = ["--arch", "lite0", "--data", str(manifest), "--out", str(lesion_run), *TINY]
    assert train_main([*arguments, "--patches-per-epoch", "32"]) == 0
    err = capsys.readouterr().err
    assert "fold 1: done earlier, kept" in err and "fold 2: done earlier, kept" in err
    assert "final model: done earlier, kept" in err
    changed = train_main([*arguments, "--patches-per-epoch", "64"])
    assert changed == 1 and "other settings" in capsys.readouterr().err


def test_the_final_model_exports_and_the_runtime_predicts_with_it(lesion_run, manifest, tmp_path):
    from export.cli import main as export_main
    from mammo_edge.predictor import Predictor

    onnx_path = tmp_path / "manifest-lite0.onnx"
    code = export_main(
        [
            "--model",
            str(lesion_run / "model.keras"),
            "--out",
            str(onnx_path),
            "--data",
            str(manifest),
            "--predictions",
            str(lesion_run / "predictions.csv"),
            "--metrics",
            str(lesion_run / "metrics.json"),
            "--protocol",
            "lesion",
            "--head",
            str(lesion_run / "head.json"),
        ]
    )
    assert code == 0
    images = sorted(str(path) for path in manifest.parent.glob("*/p0[12]_*"))
    predictor = Predictor(onnx_path, device="cpu")
    assert set(predictor.metadata.head) == {"pair", "single"}
    assert set(predictor.metadata.operating_points["single_view"]["points"]) == {
        "triage",
        "balanced",
    }
    results = predictor.predict(images)
    assert len(results) == 4
    assert all(r.error_code is None and 0.0 <= r.probability <= 1.0 for r in results)


def test_lite0_trains_under_the_patient_protocol_and_fine_tunes_from_a_model(
    lesion_run, manifest, tmp_path, capsys
):
    out = tmp_path / "patient"
    arguments = ["--arch", "lite0", "--protocol", "patient", "--data", str(manifest)]
    init = ["--init", str(lesion_run / "model.keras"), "--no-final-model"]
    assert train_main([*arguments, "--out", str(out), *TINY, *init]) == 0
    err = capsys.readouterr().err
    assert "layers' weights from" in err and "fold 1/2 epoch 1/1" in err
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["n_images"] == 40 and "operating_points_cross_fitted" in metrics
    assert "not out of sample" in metrics["init_note"]
    assert len(list((out / "folds").glob("fold_*.json"))) == 2


def test_init_copies_every_weight_of_the_start_model(tmp_path):
    import keras

    from train.architectures import lite0
    from train.initialise import InitError, initialise_from

    config = lite0.test_preprocess()
    start = lite0.Networks(pretrained=False, seed=1).image_model(config)
    start.save(tmp_path / "start.keras")
    fresh = lite0.Networks(pretrained=False, seed=2).image_model(config)
    before = [w.copy() for w in fresh.get_weights()]
    copied = initialise_from(fresh, tmp_path / "start.keras")
    assert copied > 50
    for mine, theirs in zip(fresh.get_weights(), start.get_weights(), strict=True):
        np.testing.assert_array_equal(mine, theirs)
    assert any(not np.array_equal(a, b) for a, b in zip(before, fresh.get_weights(), strict=True))
    other = keras.Sequential([keras.Input((8,)), keras.layers.Dense(1, name="x")])
    other.save(tmp_path / "other.keras")
    with pytest.raises(InitError, match="no layer in common"):
        initialise_from(fresh, tmp_path / "other.keras")
    with pytest.raises(InitError, match="no such model file"):
        initialise_from(fresh, tmp_path / "absent.keras")
