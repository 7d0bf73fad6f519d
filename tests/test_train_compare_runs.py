"""``python -m train compare-runs``: a run's out-of-fold scores against a reference's."""

import csv
import json

import numpy as np

from train.compare_runs import main


def write_runs(tmp_path, shift=0.0, drop=None):
    rng = np.random.default_rng(0)
    images = [f"mdb{i:03d}" for i in range(1, 41)]
    labels = [int(i % 3 == 0) for i in range(40)]
    scores = np.clip(np.array(labels) * 0.4 + rng.uniform(0, 0.6, 40), 0, 1)
    reference = tmp_path / "reference.csv"
    with reference.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["repeat", "image", "patient", "fold", "label", "lite0"])
        for repeat in ("seed_0", "seed_1"):
            for i, image in enumerate(images):
                score = scores[i] if repeat == "seed_0" else 0.5
                writer.writerow([repeat, image, i // 2, i % 5 + 1, labels[i], f"{score:.6f}"])
    run = tmp_path / "run"
    run.mkdir()
    with (run / "predictions.csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["image", "patient", "fold", "label", "probability"])
        for i, image in enumerate(images):
            if image != drop:
                probability = scores[i] + (shift if i == 7 else 0.0)
                writer.writerow([image, i // 2, i % 5 + 1, labels[i], f"{probability:.6f}"])
    return reference, run


def test_the_same_scores_compare_equal(tmp_path, capsys):
    reference, run = write_runs(tmp_path)
    out = tmp_path / "comparison.json"
    assert main([str(run), "--reference", str(reference), "--out", str(out)]) == 0
    result = json.loads(out.read_text())
    assert result == json.loads(capsys.readouterr().out)
    assert result["images"] == 40 and result["same_fold_for_every_image"]
    assert result["same_label_and_patient"]
    assert result["max_abs_probability_difference"] == 0
    assert result["archive_path_seed_0"] == result["manifest_path_seed_0"]


def test_one_changed_score_is_counted(tmp_path, capsys):
    reference, run = write_runs(tmp_path, shift=0.25)
    assert main([str(run), "--reference", str(reference)]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["images_with_a_different_probability"] == 1
    assert abs(result["max_abs_probability_difference"] - 0.25) < 1e-6


def test_different_images_are_refused(tmp_path, capsys):
    reference, run = write_runs(tmp_path, drop="mdb005")
    assert main([str(run), "--reference", str(reference)]) == 1
    assert "different images (1 in one file only, e.g. ['mdb005'])" in capsys.readouterr().err
