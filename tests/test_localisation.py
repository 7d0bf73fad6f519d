"""train.localisation: hits inside grown lesion circles, the breast-area chance, the p-value."""

from __future__ import annotations

import csv
import json
import math
from itertools import product

import numpy as np
import pytest
from explain_fixtures import build_heatmap_model, synthetic_breast
from mias_fixtures import INFO_HEADER, pgm_bytes

from mammo_edge.images.preprocess import breast_mask
from train.localisation import (
    LesionImage,
    circles_mask,
    lesion_images,
    main,
    poisson_binomial_tail,
    score_peak,
)
from train.mias import open_mias

# Info.txt y is measured from the bottom: row from top = 1023 - y.
INFO = INFO_HEADER + (
    "mdb001 F CIRC B 300 623 30\n"  # centre x 300, row 400
    "mdb002 G SPIC M 700 523 20\n"  # centre x 700, row 500 (a right-anchored breast)
    "mdb003 D NORM \n"
    "mdb004 F CALC B *NOTE 3* \n"
)


@pytest.fixture(scope="module")
def mias_folder(tmp_path_factory):
    folder = tmp_path_factory.mktemp("mias_loc")
    (folder / "Info.txt").write_text(INFO, encoding="latin-1")
    images = {
        "mdb001": synthetic_breast(1024, 1024, side="left", blob=(300, 400)),
        "mdb002": synthetic_breast(1024, 1024, side="right", blob=(700, 500)),
        "mdb003": synthetic_breast(1024, 1024, side="left", blob=(200, 200)),
        "mdb004": synthetic_breast(1024, 1024, side="right", blob=(800, 300)),
    }
    for reference, image in images.items():
        (folder / f"{reference}.pgm").write_bytes(pgm_bytes(image))
    return folder


def test_lesion_images_flip_y_to_rows(mias_folder):
    images = lesion_images(open_mias(mias_folder))
    assert [(i.reference, i.abnormality_class) for i in images] == [
        ("mdb001", "CIRC"),
        ("mdb002", "SPIC"),
    ]
    assert images[0].circles == ((300.0, 400.0, 30.0),)
    assert images[1].circles == ((700.0, 500.0, 20.0),)


def test_hit_miss_and_exact_chance():
    image = synthetic_breast(1024, 1024, side="left")
    lesion = LesionImage("mdb001", "CIRC", ((300.0, 400.0, 30.0),))
    inside = score_peak(lesion, (300 + 79.0, 400.0), image, margin_px=50)
    outside = score_peak(lesion, (300 + 81.0, 400.0), image, margin_px=50)
    assert inside.hit and not outside.hit
    assert outside.distance_to_nearest_circle_px == pytest.approx(1.0)
    # The circle lies inside the breast: chance = its pixel count / the breast's.
    breast = breast_mask(image)
    grown = circles_mask(image.shape, lesion.circles, 50)
    assert (grown & ~breast).sum() == 0
    assert inside.chance == pytest.approx(grown.sum() / breast.sum())
    assert grown.sum() == pytest.approx(math.pi * 80**2, rel=0.01)


def test_chance_counts_only_the_breast():
    image = synthetic_breast(1024, 1024, side="left")
    # A circle straddling the breast's edge on the black background: only its breast part.
    lesion = LesionImage("x", "CIRC", ((640.0, 512.0, 100.0),))
    result = score_peak(lesion, (0.0, 0.0), image, margin_px=0)
    breast = breast_mask(image)
    grown = circles_mask(image.shape, lesion.circles, 0)
    assert 0 < (grown & breast).sum() < grown.sum()
    assert result.chance == pytest.approx((grown & breast).sum() / breast.sum())


def test_poisson_binomial_tail_matches_enumeration():
    probabilities = [0.1, 0.35, 0.6, 0.05, 0.9]
    for observed in range(len(probabilities) + 1):
        brute = sum(
            math.prod(p if hit else 1 - p for p, hit in zip(probabilities, hits, strict=True))
            for hits in product([0, 1], repeat=len(probabilities))
            if sum(hits) >= observed
        )
        assert poisson_binomial_tail(probabilities, observed) == pytest.approx(brute)
    # Equal chances: the binomial tail.
    binomial = sum(math.comb(10, k) * 0.2**k * 0.8 ** (10 - k) for k in range(4, 11))
    assert poisson_binomial_tail([0.2] * 10, 4) == pytest.approx(binomial)


def test_main_from_a_predictions_table(tmp_path, mias_folder):
    predictions = tmp_path / "predictions.csv"
    with predictions.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["image", "patient", "fold", "label", "probability", "peak_x", "peak_y"])
        writer.writerow(["mdb001", 1, 0, 1, 0.9, 320.5, 410.0])  # hit
        writer.writerow(["mdb002", 1, 0, 1, 0.4, 100.0, 100.0])  # miss
        writer.writerow(["mdb003", 2, 1, 0, 0.1, 10.0, 10.0])  # normal: not scored
    out = tmp_path / "out"
    assert (
        main(
            ["--data", str(mias_folder), "--predictions", f"oof={predictions}", "--out", str(out)]
            + ["--note", "oof=out-of-fold"]
        )
        == 0
    )
    document = json.loads((out / "localisation.json").read_text())
    (source,) = document["sources"]
    summary = {row["abnormality_class"]: row for row in source["summary"]}
    assert summary["CIRC"]["hits"] == 1 and summary["SPIC"]["hits"] == 0
    assert summary["all"]["n_images"] == 2 and summary["all"]["hit_rate"] == 0.5
    assert 0 < summary["all"]["chance_rate"] < 0.2
    assert "out-of-fold" in source["description"]
    table = (out / "table.md").read_text()
    circ = next(line for line in table.splitlines() if line.startswith("| CIRC"))
    assert [cell.strip() for cell in circ.strip("|").split("|")] == [
        "CIRC (circumscribed mass)",
        "1",
        f"{summary['CIRC']['chance_rate']:.0%}",
        "1/1 (100%)",
    ]
    rows = list(csv.DictReader((out / "peaks_oof.csv").open()))
    assert [row["hit"] for row in rows] == ["True", "False"]


def test_main_runs_a_model_through_explain(tmp_path, mias_folder):
    model = build_heatmap_model(tmp_path / "heatmap.onnx")
    out = tmp_path / "out"
    assert main(["--data", str(mias_folder), "--model", f"tiny={model}", "--out", str(out)]) == 0
    (source,) = json.loads((out / "localisation.json").read_text())["sources"]
    assert source["heatmap_method"] == "heatmap"
    # The model's peak is the brightest window, and each blob sits at its lesion centre.
    overall = next(s for s in source["summary"] if s["abnormality_class"] == "all")
    assert overall["hits"] == 2
    rows = list(csv.DictReader((out / "peaks_tiny.csv").open()))
    peaks = np.array([[float(row["peak_x"]), float(row["peak_y"])] for row in rows])
    # One heatmap cell is ~14 original pixels here (stride 2 at ~7 px per input pixel); the
    # texture under the 8-cell window can move the maximum by a couple of cells.
    assert np.abs(peaks - [[300, 400], [700, 500]]).max() < 40
