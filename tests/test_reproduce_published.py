"""The reproduction of the study's table: split parsing, the study's rotation, a tiny run."""

from __future__ import annotations

import csv
import gzip
import json

import cv2
import numpy as np
import pytest
from conftest import build_tiny_models_dir, synthetic_mammogram
from mias_fixtures import info_rows, pgm_bytes, write_mias_folder

pytest.importorskip("sklearn", reason="train needs the train extra")

from train.mias import open_mias  # noqa: E402
from train.reproduce_published import read_split, run, study_input  # noqa: E402

HEADER = ["sample_index", "info_row", "reference", "label", "angle", "split"]


def _write_split(path, rows):
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(HEADER)
        writer.writerows(rows)
    return path


def test_study_rotation_is_the_study_warp_on_8_bit_pixels():
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (128, 128), dtype=np.uint8)
    expected = cv2.warpAffine(image, cv2.getRotationMatrix2D((64, 64), 34, 1), (128, 128))
    rotated = study_input(image, 34.0)
    assert rotated.dtype == np.uint8 and np.array_equal(rotated, expected)
    assert study_input(image, None) is image


def test_read_split_rejects_an_unknown_split(tmp_path):
    path = _write_split(tmp_path / "split.csv", [["0", "0", "mdb001", "1", "0", "holdout"]])
    with pytest.raises(ValueError, match="unexpected split"):
        read_split(path)


def test_tiny_reproduction_writes_every_output(tmp_path):
    folder = write_mias_folder(tmp_path / "mias", info_rows(6), size=64)
    # The runtime scores only what looks like a mammogram (mammo_edge.images.guard): a breast on
    # a dark background, as every real MIAS sample is (rotated ones included).
    for seed, image in enumerate(sorted(folder.glob("*.pgm"))):
        image.write_bytes(pgm_bytes(synthetic_mammogram(64, 64, seed)))
    mias = open_mias(folder)
    models = build_tiny_models_dir(tmp_path / "models")
    rows, index = [], 0
    for position, record in enumerate(mias.records):
        if position < 2 and record.label == 0:
            rows.append(["", position, record.reference, 0, "", "dropped"])
            continue
        for angle, split in ((0, "fit"), (90, "validation"), (180, "test"), (270, "test")):
            rows.append([index, position, record.reference, record.label, angle, split])
            index += 1
    split = read_split(_write_split(tmp_path / "split.csv", rows))
    out = tmp_path / "out"
    result = run(mias, split, str(models), out, log=lambda _: None)

    table = result["study_splits"]
    assert table["test"]["n_samples"] == 2 * (len(mias.records) - 2)
    assert table["dropped"]["n_samples"] == 2 and table["fit"]["study_accuracy_percent"] == 97.21
    assert result["n_images"] == len(mias.records) == 12 and result["n_patients"] == 6
    assert result["n_images_fitted_by_study"] == 10
    assert result["always_normal_accuracy"] == pytest.approx(10 / 12)
    assert result["auc_ci95"][0] <= result["auc"] <= result["auc_ci95"][1]
    assert set(result["input_scale_check"]) >= {"accuracy_0..255", "accuracy_0..1"}
    assert json.loads((out / "metrics.json").read_text())["auc"] == result["auc"]
    with gzip.open(out / "samples.csv.gz", "rt") as handle:
        assert len(handle.read().splitlines()) == len(rows) + 1
    assert len((out / "predictions.csv").read_text().splitlines()) == 13
    assert "| test (rotated copies) |" in (out / "card_notes.md").read_text()
