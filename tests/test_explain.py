"""Heatmaps and their peaks: model heatmaps, occlusion, overlays, ``mammo-edge explain``."""

from __future__ import annotations

import json
import math
from dataclasses import replace

import cv2
import numpy as np
import pytest
from conftest import build_tiny_model, tiny_metadata
from explain_fixtures import (
    CROP_CONFIG,
    HEATMAP_STRIDE,
    build_heatmap_model,
    heatmap_metadata,
    synthetic_breast,
)

from mammo_edge.cli import main
from mammo_edge.errors import ModelError
from mammo_edge.explain.explainer import (
    EXPLAIN_FIELDS,
    Explainer,
    HeatmapSpec,
    OcclusionSettings,
    heat_on_original,
    heatmap_grid,
    occlusion_grid,
    render_overlay,
)
from mammo_edge.images.preprocess import PreprocessConfig, prepare
from mammo_edge.predictor import Predictor
from mammo_edge.records.record import RESULT_FIELDS

#: A square breast-crop contract for the mean-intensity tiny model (square inputs only).
SQUARE_CROP = PreprocessConfig(
    input_size=128, interpolation="area", breast_crop=True, orientation="chest_wall_left"
)
BLOB = (120.0, 330.0)  # (x, y) in the left-anchored image


def _blob_for(side: str, width: int = 420) -> tuple[float, float]:
    """The same anatomical place in a breast anchored on ``side``."""
    x, y = BLOB
    return (x, y) if side == "left" else (width - 1 - x, y)


@pytest.fixture(scope="module")
def heatmap_model(tmp_path_factory):
    return build_heatmap_model(tmp_path_factory.mktemp("heatmap") / "heatmap.onnx")


@pytest.fixture(scope="module")
def heatmap_predictor(heatmap_model):
    return Predictor(heatmap_model, device="cpu", batch_size=4, workers=1)


@pytest.mark.parametrize("side", ["left", "right"])
def test_heatmap_peak_maps_back_through_crop_flip_and_resize(heatmap_predictor, side):
    blob = _blob_for(side)
    image = synthetic_breast(side=side, blob=blob)
    prepared = prepare(image, CROP_CONFIG)
    # The image anchored on the right must be flipped, and both cropped and resized.
    assert prepared.geometry.flipped is (side == "right")
    assert prepared.geometry.crop != (0, 0, image.shape[1], image.shape[0])
    explained = next(Explainer(heatmap_predictor).iter_explain([image]))
    assert explained.record.ok
    assert explained.grid.method == "heatmap"
    peak = explained.peak
    # One heatmap cell spans `stride` input pixels: the peak may sit half a cell off.
    tolerance = HEATMAP_STRIDE * explained.item.geometry.scale
    assert math.dist((peak.x, peak.y), blob) <= tolerance, (peak, blob, tolerance)


def test_heatmap_peak_through_resize_only(tmp_path):
    config = PreprocessConfig(input_size=128, input_height=128, input_width=96)
    model = build_heatmap_model(tmp_path / "plain.onnx", heatmap_metadata(config))
    predictor = Predictor(model, device="cpu", workers=1)
    image = synthetic_breast(side="right", blob=(300.0, 150.0))
    explained = next(Explainer(predictor).iter_explain([image]))
    assert not explained.item.geometry.flipped
    assert explained.item.geometry.crop == (0, 0, 420, 600)
    tolerance = HEATMAP_STRIDE * explained.item.geometry.scale
    assert math.dist((explained.peak.x, explained.peak.y), (300.0, 150.0)) <= tolerance


def test_heatmap_grid_centres_follow_the_metadata():
    spec = HeatmapSpec("heatmap", stride=32, window=128)
    grid = heatmap_grid(np.zeros((13, 5, 1), dtype=np.float32), spec)
    # lite0's windows: cell (i, j) centred on (32 j + 63.5, 32 i + 63.5).
    assert grid.centre(0, 0) == (63.5, 63.5)
    assert grid.centre(2, 3) == (32 * 3 + 63.5, 32 * 2 + 63.5)
    assert grid.values.shape == (13, 5)


@pytest.mark.parametrize("side", ["left", "right"])
def test_occlusion_on_a_tiny_model_finds_the_blob(tmp_path, side):
    model = build_tiny_model(tmp_path / "tiny.onnx", tiny_metadata(preprocess=SQUARE_CROP))
    predictor = Predictor(model, device="cpu", workers=1)
    explainer = Explainer(predictor)
    assert explainer.method == "occlusion"
    blob = _blob_for(side)
    image = synthetic_breast(side=side, blob=blob)
    explained = next(explainer.iter_explain([image]))
    assert explained.record.ok
    grid = explained.grid
    assert grid.method == "occlusion"
    assert grid.values.shape == (15, 15)  # 1/8 patches at half-patch stride on 128 px
    # Hiding bright tissue lowers a mean-intensity score: every drop is >= 0 here.
    assert float(grid.values.min()) >= -1e-6
    # The peak patch (16 input pixels wide) must hold the blob.
    half_patch = 8 * explained.item.geometry.scale
    assert abs(explained.peak.x - blob[0]) <= half_patch
    assert abs(explained.peak.y - blob[1]) <= half_patch


def test_occlusion_batches_and_fills_with_the_background():
    model_input = np.full((32, 32, 1), 100.0, dtype=np.float32)
    model_input[:4] = 3.0  # the background level (1st percentile)
    seen = []

    def score(batch):
        seen.append(batch.copy())
        return batch.reshape(len(batch), -1).mean(axis=1) / 255.0

    grid = occlusion_grid(
        model_input, score, OcclusionSettings(batch_size=10), base_probability=100 / 255
    )
    copies = sum(len(batch) for batch in seen)
    assert copies == 15 * 15
    assert max(len(batch) for batch in seen) == 10
    assert {float(batch.min()) for batch in seen} == {3.0}
    # A patch over the background changes nothing... almost: the top rows are dark already.
    assert grid.values[0, 0] < grid.values[7, 7]


def test_heat_on_original_is_empty_outside_the_crop(heatmap_predictor):
    image = synthetic_breast(side="left")
    explained = next(Explainer(heatmap_predictor).iter_explain([image]))
    heat, inside = heat_on_original(explained.grid, explained.item.geometry, 420, 600)
    assert heat.shape == inside.shape == (600, 420)
    x0, y0, x1, y1 = explained.item.geometry.crop
    assert not inside[:, min(x1 + 2, 419) :].any()
    assert inside[(y0 + y1) // 2, (x0 + x1) // 2]


def test_overlay_marks_the_peak(heatmap_predictor):
    image = synthetic_breast(side="right", blob=_blob_for("right"))
    explained = next(Explainer(heatmap_predictor).iter_explain([image]))
    overlay = render_overlay(
        image, explained.grid, explained.item.geometry, explained.peak, max_side=300
    )
    assert overlay.shape == (300, 210, 3) and overlay.dtype == np.uint8
    plain = render_overlay(
        image,
        explained.grid,
        explained.item.geometry,
        replace(explained.peak, x=-1000, y=-1000),
        max_side=300,
    )
    # The only difference between the two overlays is the peak's mark, drawn around it.
    changed = np.argwhere(np.any(overlay != plain, axis=2))
    centre = np.array([explained.peak.y, explained.peak.x]) * 300 / 600
    assert len(changed) > 0
    assert np.abs(changed.mean(axis=0) - centre).max() < 4


def test_heatmap_metadata_without_grid_is_refused(tmp_path):
    metadata = heatmap_metadata(outputs={"probability": "probability", "heatmap": "heatmap"})
    predictor = Predictor(build_heatmap_model(tmp_path / "m.onnx", metadata), device="cpu")
    with pytest.raises(ModelError, match="heatmap_stride"):
        Explainer(predictor)
    # Occlusion needs no grid description.
    assert Explainer(predictor, method="occlusion").method == "occlusion"


def test_heatmap_method_needs_a_heatmap(tiny_predictor):
    with pytest.raises(ModelError, match="no heatmap output"):
        Explainer(tiny_predictor, method="heatmap")


def test_heatmap_output_missing_from_the_graph_is_refused(tmp_path):
    metadata = tiny_metadata(
        outputs={"heatmap": "lesions", "heatmap_stride": 32, "heatmap_window": 128}
    )
    predictor = Predictor(build_tiny_model(tmp_path / "m.onnx", metadata), device="cpu")
    with pytest.raises(ModelError, match="'lesions'"):
        Explainer(predictor)


def test_explain_command_records_overlays_and_errors(tmp_path, heatmap_model):
    images = tmp_path / "in"
    images.mkdir()
    left = synthetic_breast(side="left")
    cv2.imwrite(str(images / "a_left.png"), left)
    cv2.imwrite(
        str(images / "b_right.png"), synthetic_breast(side="right", blob=_blob_for("right"))
    )
    (images / "c_text.png").write_text("not an image", encoding="utf-8")
    cv2.imwrite(str(images / "d_blank.png"), np.zeros((300, 200), dtype=np.uint8))
    out = tmp_path / "out"
    code = main(["explain", str(images), "--out", str(out), "--model", str(heatmap_model), "-q"])
    assert code == 2  # some inputs failed, the others were explained
    records = [json.loads(line) for line in (out / "explain.jsonl").read_text().splitlines()]
    assert [r["path"].rsplit("/", 1)[-1] for r in records] == [
        "a_left.png",
        "b_right.png",
        "c_text.png",
        "d_blank.png",
    ]
    for record in records:
        assert list(record) == list(RESULT_FIELDS) + list(EXPLAIN_FIELDS)
    good = records[:2]
    for record, blob in zip(good, (BLOB, _blob_for("right")), strict=True):
        assert record["status"] == "ok" and record["heatmap_method"] == "heatmap"
        assert 0.0 <= record["probability"] <= 1.0
        assert math.dist((record["peak_x"], record["peak_y"]), blob) < 20
        overlay = cv2.imread(str(out / record["overlay"]))
        assert overlay.shape == (600, 420, 3)
    assert records[0]["overlay"] == "overlays/0001_a_left.png"
    assert records[2]["error_code"] == "NOT_AN_IMAGE"
    assert records[3]["error_code"] == "NO_BREAST_FOUND"
    for record in records[2:]:
        assert record["status"] == "error"
        assert record["peak_x"] is None and record["overlay"] is None
    assert sorted(path.name for path in (out / "overlays").iterdir()) == [
        "0001_a_left.png",
        "0002_b_right.png",
    ]


def test_explain_command_occlusion_on_the_tiny_model(tmp_path, tiny_model_path):
    image = tmp_path / "scan.png"
    cv2.imwrite(str(image), synthetic_breast())
    out = tmp_path / "out"
    code = main(["explain", str(image), "--out", str(out), "--model", str(tiny_model_path), "-q"])
    assert code == 0
    (record,) = [json.loads(line) for line in (out / "explain.jsonl").read_text().splitlines()]
    assert record["heatmap_method"] == "occlusion"
    assert 0 <= record["peak_x"] < 420 and 0 <= record["peak_y"] < 600
    assert (out / record["overlay"]).is_file()


def test_explain_command_refuses_heatmap_for_a_model_without_one(tmp_path, tiny_model_path):
    image = tmp_path / "scan.png"
    cv2.imwrite(str(image), synthetic_breast())
    code = main(
        ["explain", str(image), "--out", str(tmp_path / "o"), "--model", str(tiny_model_path)]
        + ["--method", "heatmap"]
    )
    assert code == 1


def test_every_shipped_model_explains_an_example(tmp_path):
    """The metadata the export writes is the metadata explain reads (lite0: its heatmap)."""
    from conftest import EXAMPLES_DIR

    from mammo_edge.model.registry import installed_model_names

    example = EXAMPLES_DIR / "mdb028.pgm"
    names = installed_model_names()
    if not names or not example.is_file():
        pytest.skip("no shipped model or example image")
    for name in names:
        predictor = Predictor(name, device="cpu")
        # Coarse occlusion (7 x 7 patches) keeps this quick; the method is what is checked.
        explainer = Explainer(predictor, occlusion=OcclusionSettings(patch_fraction=1 / 4))
        has_heatmap = bool(predictor.metadata.outputs.get("heatmap"))
        assert explainer.method == ("heatmap" if has_heatmap else "occlusion"), name
        explained = next(explainer.iter_explain([str(example)]))
        assert explained.record.ok, (name, explained.record.error_message)
        assert 0 <= explained.peak.x < 1024 and 0 <= explained.peak.y < 1024
