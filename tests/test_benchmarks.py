"""Benchmark helpers: FLOP counting, statistics, target verdicts, choice, reports.

No timing assertions: these tests check arithmetic and bookkeeping, never speed.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from benchmarks.choice import best_row, choose
from benchmarks.cli import build_parser
from benchmarks.errors import BenchmarkError
from benchmarks.flops import count_onnx_flops
from benchmarks.inference import CPU, InferenceRow
from benchmarks.report import render_markdown, write_reports
from benchmarks.sources import (
    KerasSource,
    ModelFamily,
    parse_keras_overrides,
    quick_names,
    shipped_families,
    shipped_pair,
)
from benchmarks.targets import evaluate
from mammo_edge.bench.timing import summarize

# The tiny graph below: conv 1->4 channels 3x3 on 8x8 (output 6x6), a per-pixel MatMul
# 4->3 behind a tf2onnx-style computed Reshape, then Gemm 108->1.
TINY_CONV_FLOPS = 2 * 1 * 3 * 3 * (4 * 6 * 6)
TINY_MATMUL_FLOPS = 2 * 4 * (36 * 3)
TINY_GEMM_FLOPS = 2 * 108 * 1


def tiny_model() -> onnx.ModelProto:
    """``image`` [N, 8, 8, 1] -> ``probability`` [N, 1], shaped like a tf2onnx export."""
    rng = np.random.default_rng(0)

    def weight(name: str, shape: tuple[int, ...]) -> onnx.TensorProto:
        return numpy_helper.from_array(rng.normal(0, 0.05, shape).astype(np.float32), name)

    initializers = [
        weight("conv_w", (4, 1, 3, 3)),
        weight("dense_w", (4, 3)),
        weight("head_w", (108, 1)),
        numpy_helper.from_array(np.array([0, 1, 2], dtype=np.int64), "leading_axes"),
        numpy_helper.from_array(np.array([0], dtype=np.int64), "axis0"),
        numpy_helper.from_array(np.array([4], dtype=np.int64), "channels"),
        numpy_helper.from_array(np.array([-1, 108], dtype=np.int64), "flat_shape"),
    ]
    nodes = [
        helper.make_node("Transpose", ["image"], ["nchw"], perm=[0, 3, 1, 2]),
        helper.make_node("Conv", ["nchw", "conv_w"], ["conv"], name="conv"),
        helper.make_node("Relu", ["conv"], ["relu"]),
        helper.make_node("Transpose", ["relu"], ["nhwc"], perm=[0, 2, 3, 1]),
        # Dense on a 4-D tensor, the way tf2onnx writes a Keras Tensordot.
        helper.make_node("Shape", ["nhwc"], ["shape"]),
        helper.make_node("Gather", ["shape", "leading_axes"], ["leading"]),
        helper.make_node("ReduceProd", ["leading"], ["rows"], keepdims=0),
        helper.make_node("Unsqueeze", ["rows", "axis0"], ["rows_1d"]),
        helper.make_node("Concat", ["rows_1d", "channels"], ["pixels_shape"], axis=0),
        helper.make_node("Reshape", ["nhwc", "pixels_shape"], ["pixels"]),
        helper.make_node("MatMul", ["pixels", "dense_w"], ["dense"], name="dense"),
        helper.make_node("Reshape", ["dense", "flat_shape"], ["flat"]),
        helper.make_node("Gemm", ["flat", "head_w"], ["logit"], name="head"),
        helper.make_node("Sigmoid", ["logit"], ["probability"]),
    ]
    graph = helper.make_graph(
        nodes,
        "tiny",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["batch", 8, 8, 1])],
        [helper.make_tensor_value_info("probability", TensorProto.FLOAT, ["batch", 1])],
        initializers,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def test_flops_of_tiny_graph_match_layer_arithmetic():
    count = count_onnx_flops(tiny_model())
    assert count.dense_by_node == {
        "conv": TINY_CONV_FLOPS,
        "dense": TINY_MATMUL_FLOPS,
        "head": TINY_GEMM_FLOPS,
    }
    assert count.dense_flops == TINY_CONV_FLOPS + TINY_MATMUL_FLOPS + TINY_GEMM_FLOPS == 3672
    # Relu (144) + Sigmoid (1) elements; Transpose/Reshape/shape arithmetic are free.
    assert count.other_ops == 4 * 6 * 6 + 1


def test_flop_count_does_not_change_the_callers_model():
    model = tiny_model()
    before = model.SerializeToString()
    count_onnx_flops(model)
    assert model.SerializeToString() == before


@pytest.mark.tensorflow
def test_flops_of_seed_cnn_export_match_keras_layers():
    pytest.importorskip("tensorflow", reason="needs the train extra")
    from benchmarks.flops import count_keras_flops
    from export.convert import keras_to_onnx
    from train.model import build_seed_cnn

    model = build_seed_cnn(seed=0)
    onnx_count = count_onnx_flops(keras_to_onnx(model).model)
    # Layer arithmetic, 2 FLOPs per multiply-add: conv 3x3 1->32 (126x126), 32->64 (124x124),
    # pool to 62, 64->64 (60x60), pool to 30, Dense 64->64 on 30x30 pixels, Dense 57600->1.
    expected = (
        2 * 9 * 1 * 32 * 126 * 126
        + 2 * 9 * 32 * 64 * 124 * 124
        + 2 * 9 * 64 * 64 * 60 * 60
        + 2 * 64 * 64 * 30 * 30
        + 2 * 57600 * 1
    )
    assert expected == 848_874_240
    assert onnx_count.dense_flops == expected
    assert count_keras_flops(model) == expected
    assert len(onnx_count.dense_by_node) == 5


@pytest.mark.tensorflow
def test_keras_flops_walk_nested_models_and_count_depthwise():
    keras = pytest.importorskip("keras", reason="needs the train extra")
    inner_input = keras.Input((8, 8, 4))
    depthwise = keras.layers.DepthwiseConv2D(3, padding="same", use_bias=False)(inner_input)
    pointwise = keras.layers.Conv2D(6, 1, use_bias=False)(depthwise)
    inner = keras.Model(inner_input, pointwise)
    image = keras.Input((8, 8, 4))
    outer = keras.Model(image, keras.layers.Dense(2)(inner(image)))
    from benchmarks.flops import count_keras_flops

    # depthwise 3x3 on 8x8x4, pointwise 4->6 on 8x8, Dense 6->2 on 8x8 pixels.
    assert count_keras_flops(outer) == 2 * 9 * 8 * 8 * 4 + 2 * 4 * 8 * 8 * 6 + 2 * 6 * 8 * 8 * 2
    # A nested model built for any size (lite0's backbone) is counted at the size fed to it.
    any_size = keras.Input((None, None, 1))
    dynamic = keras.Model(any_size, keras.layers.Conv2D(2, 3)(any_size))
    fixed = keras.Input((8, 8, 1))
    assert count_keras_flops(keras.Model(fixed, dynamic(fixed))) == 2 * 9 * 1 * (6 * 6 * 2)
    with pytest.raises(ValueError, match="not fixed"):
        count_keras_flops(dynamic)


def test_target_met_and_missed_with_ratio():
    met = evaluate("speed-up", 5.0, 4.0, "x")
    assert met.met is True and met.shortfall is None and met.verdict() == "yes"
    short = evaluate("throughput", 100.0, 250.0, "images/s")
    assert short.met is False
    assert short.shortfall == pytest.approx(2.5)
    assert short.verdict() == "no (2.500x short)"
    over = evaluate("cold start", 0.75, 0.5, "s", higher_is_better=False)
    assert over.met is False and over.shortfall == pytest.approx(1.5)
    assert over.verdict() == "no (1.500x over)"
    assert evaluate("cold start", 0.4, 0.5, "s", higher_is_better=False).met is True


def test_target_condition_and_unmeasured():
    failed_condition = evaluate("int8", 2.0, 1.8, "x", extra_condition=False)
    assert failed_condition.met is False
    assert "condition failed" in failed_condition.verdict()
    unknown_condition = evaluate("int8", 2.0, 1.8, "x", extra_condition=None)
    assert unknown_condition.met is True
    for missing in (None, float("nan")):
        result = evaluate("ratio", missing, 4.0, "x")
        assert result.met is None and result.verdict() == "not measured"


def make_row(engine, threads, batch, median_ms, provider=CPU) -> InferenceRow:
    seconds = [median_ms / 1e3] * 3
    summary = summarize(seconds, batch)
    return InferenceRow(engine, provider, threads, batch, "ok", summary, 1.0, 0.5)


def test_choice_picks_fastest_throughput_and_lowest_single_latency():
    rows = [
        make_row("onnxruntime FP32", 1, 1, 5.0),
        make_row("onnxruntime FP32", 2, 1, 4.0),
        make_row("onnxruntime FP32", 1, 32, 100.0),  # 320 images/s
        make_row("onnxruntime FP32", 2, 32, 90.0),  # 356 images/s
        make_row("onnxruntime FP32", 2, 128, 400.0),  # 320 images/s
        make_row("onnxruntime INT8", 2, 32, 10.0),  # another engine: ignored
        InferenceRow("onnxruntime FP32", CPU, 1, 8, "absent: test"),
    ]
    choice = choose(rows, "onnxruntime FP32")
    assert (choice.throughput_threads, choice.throughput_batch) == (2, 32)
    assert (choice.latency_threads, choice.latency_ms) == (2, 4.0)
    assert choice.considered == 5
    assert best_row(rows, "onnxruntime FP32", min_batch=64).batch == 128
    assert choose(rows, "keras predict") is None


def fake_results() -> dict:
    """A results dict shaped like run_benchmarks' output (values invented for the test)."""
    rows = [
        make_row("onnxruntime FP32", 2, 1, 5.0),
        make_row("onnxruntime INT8", 2, 32, 60.0),
        make_row("keras model(x)", None, 1, 20.0, provider="tensorflow"),
        InferenceRow("keras predict", "tensorflow", None, 1, "absent: no Keras source"),
    ]
    from benchmarks.run import _row_dict, _summary

    targets = [
        evaluate("ratio target", 4.0, 4.0, "x"),
        evaluate("throughput target", 100.0, 250.0, "images/s", note="short on purpose"),
    ]
    model = {
        "name": "alpha",
        "default": True,
        "int8_name": "alpha-int8",
        "fp32": "alpha.onnx",
        "int8": "alpha-int8.onnx",
        "keras": None,
        "keras_absent_reason": "absent: no Keras source",
        "random_weights": False,
        "outputs": ["probability", "heatmap"],
        "image_size": [16, 8],
        "flops": {"fp32_onnx_dense_flops_per_image": 3672, "fp32_onnx_other_ops_per_image": 145},
        "inference": [_row_dict(row) for row in rows],
        "choice": {"onnxruntime FP32": None},
        "end_to_end": None,
        "int8_accuracy": None,
    }
    model["summary"] = _summary(model, rows, {})
    return {
        "created": "2026-01-01T00:00:00+00:00",
        "command": "python -m benchmarks --quick",
        "mode": "quick",
        "machine": {
            "cpu": "Test CPU",
            "cpu_features": ["avx2"],
            "logical_cores": 2,
            "versions": {"onnxruntime": "1.0"},
        },
        "warnings": [],
        "origin": "test",
        "notes": [],
        "cuda": "absent: no GPU",
        "gemm_peak": [
            {"threads": 1, "size": 64, "repeats": 1, "gflops_per_s": 10.0, "blas_architecture": "X"}
        ],
        "models": [model],
        "targets": [t.__dict__ | {"verdict": t.verdict()} for t in targets],
    }


def test_markdown_table_has_every_row_and_target():
    results = fake_results()
    text = render_markdown(results)
    lines = text.splitlines()
    for row in results["models"][0]["inference"]:
        threads = "default" if row["threads"] is None else str(row["threads"])
        prefix = f"| {row['engine']} | {row['provider']} | {threads} | {row['batch']} |"
        assert sum(line.startswith(prefix) for line in lines) == 1, prefix
    assert "absent: no Keras source" in text and "CUDA: absent: no GPU" in text
    # The side-by-side row of the model: input, both outputs, GFLOP, batch-1 latencies.
    summary = [line for line in lines if line.startswith("| alpha | 16x8 |")]
    assert len(summary) == 1
    assert "probability, heatmap" in summary[0] and "| 0.000 | 5 | — | 20.0 |" in summary[0]
    assert "## alpha + alpha-int8 (default)" in text
    for target in results["targets"]:
        assert any(target["name"] in line and target["verdict"] in line for line in lines)
    assert "no (2.500x short)" in text
    assert "Test CPU" in text


def test_write_reports_creates_json_markdown_and_plot(tmp_path):
    pytest.importorskip("matplotlib")
    paths = write_reports(fake_results(), tmp_path / "out")
    assert json.loads(paths["json"].read_text())["machine"]["cpu"] == "Test CPU"
    assert paths["markdown"].read_text().startswith("# mammo-edge benchmark")
    assert paths["plot"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_cpu_watch_counts_this_process_as_its_own():
    import time

    from benchmarks.machine import CpuWatch

    watch = CpuWatch().start()
    started = time.process_time()
    while time.process_time() - started < 0.3:
        pass
    other = watch.stop()
    assert watch.own_s >= 0.25  # os.times counts in clock ticks
    assert other["foreign_cpu_s"] >= 0 and other["foreign_share"] >= 0


def test_shipped_pair_reads_manifest_and_names_problems(tmp_path):
    assert shipped_pair(tmp_path) is None
    (tmp_path / "seed.onnx").write_bytes(b"x")
    manifest = {"default": "seed", "models": {"seed": {"file": "seed.onnx", "sha256": "0"}}}
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    assert shipped_pair(tmp_path) == (tmp_path / "seed.onnx", None)
    # The default's INT8 twin is the model named NAME-int8, whatever the file is called.
    manifest["models"]["seed-int8"] = {"file": "quantised.onnx", "sha256": "0"}
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(BenchmarkError, match="quantised.onnx: listed"):
        shipped_pair(tmp_path)
    (tmp_path / "quantised.onnx").write_bytes(b"y")
    assert shipped_pair(tmp_path) == (tmp_path / "seed.onnx", tmp_path / "quantised.onnx")
    (tmp_path / "other.onnx").write_bytes(b"z")
    manifest["models"]["other"] = {"file": "other.onnx", "sha256": "0"}
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    assert shipped_pair(tmp_path, "other") == (tmp_path / "other.onnx", None)
    (tmp_path / "manifest.json").write_text("{not json")
    with pytest.raises(BenchmarkError, match="unreadable"):
        shipped_pair(tmp_path)


def test_cli_parses_lists_and_rejects_bad_ones(capsys):
    parser = build_parser()
    options = parser.parse_args(["--quick", "--threads", "1,2", "--batches", "1,8"])
    assert options.quick and options.threads == (1, 2) and options.batches == (1, 8)
    with pytest.raises(SystemExit):
        parser.parse_args(["--threads", "0"])
    assert "positive integers" in capsys.readouterr().err


def test_run_on_a_tiny_onnx_model_measures_every_requested_row(tmp_path):
    from benchmarks.run import Progress, RunOptions, run_benchmarks

    model_path = tmp_path / "tiny.onnx"
    onnx.save(tiny_model(), str(model_path))
    options = RunOptions(
        quick=True,
        model=model_path,
        keras=(str(tmp_path / "missing.keras"),),
        threads=(1,),
        batches=(1, 2),
        skip_e2e=True,
        gemm_size=64,
    )
    results = run_benchmarks(options, Progress(enabled=False))
    (model,) = results["models"]
    assert model["name"] == "tiny" and model["default"] and results["default_model"] == "tiny"
    assert model["flops"]["fp32_onnx_dense_flops_per_image"] == 3672
    measured = [r for r in model["inference"] if r["status"] == "ok"]
    assert {(r["engine"], r["batch"]) for r in measured} == {
        ("onnxruntime FP32", 1),
        ("onnxruntime FP32", 2),
    }
    keras_rows = [r for r in model["inference"] if r["engine"].startswith("keras")]
    assert len(keras_rows) == 4
    assert all(r["status"].startswith("absent: no Keras source at") for r in keras_rows)
    # The default model's targets (issue 8); no seed rows for a model not called seed.
    names = [t["name"] for t in results["targets"]]
    assert names == [
        "tiny (default): mammo-edge predict on 1024x1024 PGMs, faster precision",
        "tiny (default): cold start, one image (fresh process)",
    ]
    assert all(t["verdict"] == "not measured" for t in results["targets"])
    json.dumps(results, default=str)  # the whole record is serialisable


def heatmap_model() -> onnx.ModelProto:
    """The tiny graph with a second output, ``heatmap`` (the ReLU map), like lite0's."""
    model = tiny_model()
    model.graph.output.append(
        helper.make_tensor_value_info("heatmap", TensorProto.FLOAT, ["batch", 4, 6, 6])
    )
    model.graph.node[2].output[0] = "heatmap"
    model.graph.node[3].input[0] = "heatmap"
    onnx.checker.check_model(model)
    return model


def write_models_folder(folder, with_metadata: bool = False) -> dict[str, str]:
    """``alpha`` (default, two outputs), its twin ``alpha-int8``, ``beta``, and an
    orphan twin ``gamma-int8``; returns name -> file."""
    import hashlib

    from tests.conftest import build_tiny_model

    folder.mkdir(parents=True, exist_ok=True)
    files = {
        "alpha": "alpha.onnx",
        "alpha-int8": "alpha-q.onnx",
        "beta": "beta.onnx",
        "gamma-int8": "gamma-int8.onnx",
    }
    for name, file in files.items():
        if with_metadata:
            build_tiny_model(folder / file, shift=-6.0 + len(name) / 10)
        else:
            onnx.save(heatmap_model() if name == "alpha" else tiny_model(), str(folder / file))
    manifest = {
        "default": "alpha",
        "models": {
            name: {
                "file": file,
                "sha256": hashlib.sha256((folder / file).read_bytes()).hexdigest(),
            }
            for name, file in files.items()
        },
    }
    (folder / "manifest.json").write_text(json.dumps(manifest))
    return files


def test_families_group_each_model_with_its_int8_twin(tmp_path):
    files = write_models_folder(tmp_path)
    families = shipped_families(tmp_path)
    assert [(f.name, f.int8_name, f.default) for f in families] == [
        ("alpha", "alpha-int8", True),
        ("beta", None, False),
        ("gamma-int8", None, False),  # a twin without its model is measured on its own
    ]
    alpha = families[0]
    assert alpha.fp32_path == tmp_path / files["alpha"]
    assert alpha.int8_path == tmp_path / files["alpha-int8"]
    # A folder given with --model: the CLI gets each file's path.
    assert alpha.cli_fp32 == ["--model", str(tmp_path / files["alpha"])]
    assert alpha.cli_int8 == ["--model", str(tmp_path / files["alpha-int8"])]
    # The installed folder: names, and nothing at all for the default (as a user runs it).
    installed = shipped_families(tmp_path, installed=True)
    assert installed[0].cli_fp32 == [] and installed[0].cli_int8 == ["--model", "alpha-int8"]
    assert installed[1].cli_fp32 == ["--model", "beta"]
    assert quick_names(families) == ("alpha",)
    seed = ModelFamily("seed", tmp_path / "s.onnx", None)
    assert quick_names([*families, seed]) == ("alpha", "seed")


def test_keras_sources_by_name_and_overrides(tmp_path, monkeypatch):
    from benchmarks import sources

    assert parse_keras_overrides(("lite0=/a/b.keras", "/c/d.keras")) == {
        "lite0": Path("/a/b.keras"),
        None: Path("/c/d.keras"),
    }
    present = tmp_path / "second.keras"
    present.write_bytes(b"k")
    candidates = (KerasSource(tmp_path / "first.keras"), KerasSource(present))
    monkeypatch.setattr(sources, "KERAS_SOURCES", {"alpha": candidates})
    alpha = ModelFamily("alpha", tmp_path / "a.onnx", None, default=True)
    sources._attach_keras(alpha, {}, skip_keras=False, explicit_only=False)
    assert alpha.keras == KerasSource(present)  # the first candidate that exists
    beta = ModelFamily("beta", tmp_path / "b.onnx", None)
    sources._attach_keras(beta, {}, skip_keras=False, explicit_only=False)
    assert beta.keras is None and "--keras beta=PATH" in beta.keras_absent_reason
    missing = ModelFamily("alpha", tmp_path / "a.onnx", None, default=True)
    sources._attach_keras(missing, {None: tmp_path / "x.keras"}, False, False)
    assert missing.keras is None and str(tmp_path / "x.keras") in missing.keras_absent_reason
    skipped = ModelFamily("alpha", tmp_path / "a.onnx", None)
    sources._attach_keras(skipped, {}, skip_keras=True, explicit_only=False)
    assert skipped.keras_absent_reason == "absent: --skip-keras"


def test_run_measures_every_model_of_a_manifest(tmp_path):
    from benchmarks.run import Progress, RunOptions, run_benchmarks

    write_models_folder(tmp_path / "models")
    options = RunOptions(
        quick=True,
        model=tmp_path / "models",
        models=("alpha", "beta", "gamma-int8"),
        threads=(1,),
        batches=(1, 2),
        skip_e2e=True,
        gemm_size=64,
    )
    results = run_benchmarks(options, Progress(enabled=False))
    assert [m["name"] for m in results["models"]] == ["alpha", "beta", "gamma-int8"]
    alpha, beta, _ = results["models"]
    # Timed as shipped: both outputs of alpha; its twin timed in the same family.
    assert alpha["outputs"] == ["probability", "heatmap"] and beta["outputs"] == ["probability"]
    ok = {(r["engine"], r["batch"]) for r in alpha["inference"] if r["status"] == "ok"}
    assert ok == {(e, b) for e in ("onnxruntime FP32", "onnxruntime INT8") for b in (1, 2)}
    assert {r["engine"] for r in beta["inference"] if r["status"] == "ok"} == {"onnxruntime FP32"}
    for model in results["models"]:
        assert model["flops"]["fp32_onnx_dense_flops_per_image"] == 3672
        assert model["summary"]["gflop_per_image"] == pytest.approx(3672 / 1e9)
        keras = [r for r in model["inference"] if r["engine"].startswith("keras")]
        assert keras and all("no known Keras source" in r["status"] for r in keras)
    assert alpha["summary"]["int8_batch1_ms"] is not None
    assert beta["summary"]["int8_batch1_ms"] is None
    assert [t["name"].split(":")[0] for t in results["targets"]] == ["alpha (default)"] * 2
    # --models keeps only the families named; an unknown name is a clear error.
    only = run_benchmarks(
        RunOptions(**{**options.__dict__, "models": ("beta",)}), Progress(enabled=False)
    )
    assert [m["name"] for m in only["models"]] == ["beta"] and only["targets"] == []
    # --quick without --models: the default model (and seed, not shipped here) only.
    quick = run_benchmarks(
        RunOptions(**{**options.__dict__, "models": None}), Progress(enabled=False)
    )
    assert [m["name"] for m in quick["models"]] == ["alpha"]
    with pytest.raises(BenchmarkError, match="no model family named delta"):
        run_benchmarks(
            RunOptions(**{**options.__dict__, "models": ("delta",)}), Progress(enabled=False)
        )
    text = render_markdown(results)
    assert text.count("| alpha | ") == 1 and "## beta" in text and "## gamma-int8" in text
    # Every file measured is named with its SHA-256; INT8/FP32 is a same-run ratio.
    digest = hashlib.sha256(Path(alpha["int8"]).read_bytes()).hexdigest()
    assert alpha["sha256"]["int8"] == digest and digest in text
    ratio = alpha["summary"]["same_run_ratios"]["int8_vs_fp32_batch1_1t"]
    fp32, int8 = (
        next(r for r in alpha["inference"] if (r["engine"], r["batch"]) == (engine, 1))
        for engine in ("onnxruntime FP32", "onnxruntime INT8")
    )
    assert ratio == pytest.approx(fp32["median_ms"] / int8["median_ms"])
    assert f"{ratio:.2f}x" in text.split("## Same-run ratios", 1)[1]


def test_run_end_to_end_per_model_and_precision(tmp_path):
    """A family gets mammo-edge predict runs and a cold start per precision."""
    from benchmarks.run import Progress, RunOptions, run_benchmarks

    write_models_folder(tmp_path / "models", with_metadata=True)
    options = RunOptions(
        quick=True,
        model=tmp_path / "models",
        models=("alpha",),
        threads=(1,),
        batches=(1,),
        e2e_images=1,
        gemm_size=64,
    )
    results = run_benchmarks(options, Progress(enabled=False))
    (alpha,) = results["models"]
    assert [run["label"] for run in alpha["end_to_end"]["cli"]] == [
        "alpha (CLI defaults)",
        "alpha-int8 (CLI defaults)",
    ]
    assert all(run["status"] == "ok" and run["images"] == 2 for run in alpha["end_to_end"]["cli"])
    assert set(alpha["end_to_end"]["cold_start"]) == {"FP32", "INT8"}
    assert alpha["end_to_end"]["cold_start"]["FP32"]["arguments"][0] == "--model"
    assert alpha["summary"]["int8_e2e_images_per_s"] > 0
    assert results["startup"]["import_onnxruntime_s"] > 0
    verdicts = {t["name"]: t for t in results["targets"]}
    assert verdicts["alpha (default): cold start, one image (fresh process)"]["measured"] > 0


def test_end_to_end_runs_the_cli_on_1024_pgms(tmp_path, tiny_model_path):
    from benchmarks.endtoend import cli_throughput, cold_start, prepare_pgm_folder

    origin = prepare_pgm_folder(tmp_path / "small", 2)
    prepare_pgm_folder(tmp_path / "large", 4)
    header = (tmp_path / "large" / "image00003.pgm").read_bytes()[:20]
    assert header.startswith(b"P5") and b"1024 1024" in header
    assert origin
    extra = ["--model", str(tiny_model_path)]
    result = cli_throughput(
        "tiny model", tmp_path / "small", tmp_path / "large", extra, tmp_path, repeats=1
    )
    assert result.status == "ok", result.status
    assert (result.images, result.scored) == (4, 4)
    assert result.peak_rss_mb > 0 and result.images_per_s_with_startup > 0
    start = cold_start(tmp_path / "small" / "image00000.pgm", extra, tmp_path, repeats=1)
    assert start.status == "ok" and start.runs == 1 and start.predict_one_image_s > 0


def test_end_to_end_failure_is_reported_not_raised(tmp_path):
    from benchmarks.endtoend import cli_throughput, prepare_pgm_folder

    prepare_pgm_folder(tmp_path / "small", 1)
    prepare_pgm_folder(tmp_path / "large", 2)
    extra = ["--model", str(tmp_path / "no-such-model.onnx")]
    result = cli_throughput(
        "missing", tmp_path / "small", tmp_path / "large", extra, tmp_path, repeats=1
    )
    assert result.status.startswith("failed: exit 1")
    assert "no-such-model.onnx" in result.status
