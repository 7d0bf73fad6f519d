"""python -m export int8: an exported FP32 model -> NAME-int8, only through the ΔAUC gate."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest

pytest.importorskip("tensorflow")
pytest.importorskip("onnx")

from conftest import build_tiny_model, tiny_metadata  # noqa: E402
from mias_fixtures import info_rows, write_mias_folder  # noqa: E402
from onnx import TensorProto, helper  # noqa: E402

from export import quantize  # noqa: E402
from export.int8 import main  # noqa: E402
from export.quantize import QuantRecipe, calibration_subset, fp32_node_names  # noqa: E402
from mammo_edge.model.registry import read_verified, resolve_model  # noqa: E402


@pytest.fixture
def shipped_tiny(tmp_path):
    """A models folder shipping one FP32 model ``tiny`` and its manifest; MIAS beside it."""
    models = tmp_path / "models"
    model_path = build_tiny_model(models / "tiny.onnx", tiny_metadata(model_name="tiny"))
    manifest = {
        "default": "tiny",
        "models": {
            "tiny": {
                "file": "tiny.onnx",
                "sha256": hashlib.sha256(model_path.read_bytes()).hexdigest(),
                "model_name": "tiny",
                "model_version": "0.0.1",
                "description": "tiny test model",
            }
        },
    }
    (models / "manifest.json").write_text(json.dumps(manifest))
    mias = write_mias_folder(tmp_path / "mias", info_rows(12))
    return models, mias


def test_a_drifting_int8_model_is_refused_and_nothing_is_written(shipped_tiny, monkeypatch, capsys):
    models, mias = shipped_tiny
    manifest_before = (models / "manifest.json").read_text()
    # Ranges from one normal image clip every brighter image: the probabilities drift.
    drifting = QuantRecipe(name="drift", calibration="MinMax", calibration_images=1)
    monkeypatch.setitem(quantize.RECIPES, "drift", drifting)
    report_path = models.parent / "gate.json"
    argv = ["--onnx", str(models / "tiny.onnx"), "--data", str(mias), "--recipe", "drift"]
    exit_code = main([*argv, "--ship", "--report", str(report_path)])
    assert exit_code == 1
    assert "REFUSED" in capsys.readouterr().out
    report = json.loads(report_path.read_text())
    assert not report["accepted"] and abs(report["delta_auc"]) > report["auc_tolerance"]
    assert report["file"] is None
    assert not (models / "tiny-int8.onnx").exists()
    assert (models / "manifest.json").read_text() == manifest_before


def test_a_faithful_int8_model_ships_beside_the_unchanged_fp32(shipped_tiny, capsys):
    models, mias = shipped_tiny
    fp32_bytes = (models / "tiny.onnx").read_bytes()
    exit_code = main(["--onnx", str(models / "tiny.onnx"), "--data", str(mias), "--ship"])
    assert exit_code == 0, capsys.readouterr()
    assert (models / "tiny.onnx").read_bytes() == fp32_bytes
    manifest = json.loads((models / "manifest.json").read_text())
    assert manifest["default"] == "tiny"
    assert manifest["models"]["tiny-int8"]["model_name"] == "tiny-int8"
    model_bytes, _ = read_verified(resolve_model(models / "tiny-int8.onnx"))
    assert b"QuantizeLinear" in model_bytes


def _conv(name: str, source: str, channels_in: int, channels_out: int) -> list:
    weight = helper.make_tensor(
        f"{name}_w",
        TensorProto.FLOAT,
        [channels_out, channels_in, 1, 1],
        np.ones(channels_out * channels_in, np.float32),
    )
    return [helper.make_node("Conv", [source, weight.name], [name], name=name)], [weight]


def test_first_convolution_and_head_are_found_by_structure():
    nodes, weights = [], []
    for name, source, cin, cout in (
        ("stem", "x", 1, 4),
        ("block", "stem_relu", 4, 4),
        ("cell_logit", "block", 4, 1),
    ):
        conv_nodes, conv_weights = _conv(name, source, cin, cout)
        nodes += conv_nodes
        weights += conv_weights
        if name == "stem":
            nodes.append(helper.make_node("Relu", ["stem"], ["stem_relu"], name="stem_relu"))
    nodes += [
        helper.make_node("ReduceMean", ["cell_logit"], ["mean"], name="mean", keepdims=0),
        helper.make_node("Sigmoid", ["mean"], ["probability"], name="sigmoid"),
    ]
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 1, 4, 4])],
        [helper.make_tensor_value_info("probability", TensorProto.FLOAT, None)],
        weights,
    )
    model = helper.make_model(graph)
    assert fp32_node_names(model, ("first_conv",)) == ["stem"]
    assert fp32_node_names(model, ("head",)) == ["cell_logit", "mean", "sigmoid"]
    assert fp32_node_names(model, ()) == []
    with pytest.raises(Exception, match="unknown FP32 part"):
        fp32_node_names(model, ("tail",))


def test_calibration_images_are_spread_over_the_batch():
    batch = np.arange(10, dtype=np.float32).reshape(10, 1, 1, 1)
    assert calibration_subset(batch, 3).ravel().tolist() == [0.0, 4.0, 9.0]
    assert calibration_subset(batch, None) is batch
