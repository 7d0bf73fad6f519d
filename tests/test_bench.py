"""``mammo-edge bench`` and its core (mammo_edge.bench): records, choices, refusals.

Every run here uses the tiny test model (tests/conftest.py) and a handful of images, so
each test takes seconds. No assertion is about how fast anything is: the figures are
checked for presence, type and arithmetic, the choices for what they compare.
"""

from __future__ import annotations

import csv
import json
import subprocess
import sys
import time

import cv2
import numpy as np
import onnxruntime as ort
import pytest

from mammo_edge.bench import ROW_FIELDS, BenchSettings, run_bench
from mammo_edge.bench.images import synthetic_mammogram, write_synthetic_set
from mammo_edge.bench.machine import MachineFacts
from mammo_edge.bench.model_alone import (
    BATCH_MARGIN,
    CPU_BATCHES,
    GPU_BATCHES,
    candidate_batches,
    choose_batch,
    search_best_batch,
)
from mammo_edge.bench.process import run_process
from mammo_edge.bench.run import VIEWS_PER_STUDY, default_devices, precision_of
from mammo_edge.bench.timing import RepeatPolicy, spread, summarize, time_calls
from mammo_edge.cli import main
from mammo_edge.errors import ProviderError
from mammo_edge.images.preprocess import PreprocessConfig
from mammo_edge.model.providers import CPU_PROVIDER, CUDA_PROVIDER, TENSORRT_PROVIDER, providers_for
from mammo_edge.predictor import Predictor, default_batch_size

#: The machine fields of ``--json``, as issue 24 lists them.
MACHINE_FIELDS = {
    "cpu",
    "cores",
    "isa_flags",
    "gpu",
    "onnxruntime_version",
    "providers",
    "mammo_edge_version",
}
#: The type each row field must have in ``--json``.
ROW_TYPES = {
    "model": str,
    "sha256": str,
    "device": str,
    "provider": str,
    "precision": str,
    "batch": int,
    "threads": (int, type(None)),
    "streams": int,
    **{
        name: (int, float)
        for name in (
            "model_alone_images_per_s",
            "end_to_end_images_per_s",
            "end_to_end_share",
            "latency_ms_p50",
            "latency_ms_p95",
            "peak_rss_mb",
            "cold_start_s",
            "studies_per_hour",
        )
    },
}
NO_CUDA = CUDA_PROVIDER not in ort.get_available_providers()


def bench_json(capsys, *arguments: str) -> dict:
    capsys.readouterr()
    assert main(["bench", "--json", "--quiet", "--rounds", "1", *arguments]) == 0
    return json.loads(capsys.readouterr().out)


def test_json_has_exactly_the_machine_and_row_fields(capsys, tiny_model_path, tmp_path):
    report = bench_json(
        capsys, "--model", str(tiny_model_path), "--images", "4", "--csv", str(tmp_path / "r.csv")
    )
    assert set(report) == {"machine", "rows"}
    assert set(report["machine"]) == MACHINE_FIELDS
    assert report["machine"]["providers"] == ort.get_available_providers()
    assert report["machine"]["cores"] >= 1 and isinstance(report["machine"]["isa_flags"], list)
    (row,) = report["rows"]
    assert tuple(row) == ROW_FIELDS == tuple(ROW_TYPES)
    for name, kind in ROW_TYPES.items():
        assert isinstance(row[name], kind), (name, row[name])
    assert (row["model"], row["device"], row["provider"]) == (
        str(tiny_model_path),
        "cpu",
        CPU_PROVIDER,
    )
    assert row["precision"] == "FP32" and len(row["sha256"]) == 64
    for name in ROW_TYPES:
        if ROW_TYPES[name] == (int, float):
            assert row[name] > 0, name
    assert row["studies_per_hour"] == pytest.approx(
        row["end_to_end_images_per_s"] * 3600 / VIEWS_PER_STUDY, rel=0.01
    )
    assert row["latency_ms_p95"] >= row["latency_ms_p50"]
    with (tmp_path / "r.csv").open(newline="") as handle:
        (written,) = list(csv.DictReader(handle))
    assert tuple(written) == ROW_FIELDS
    assert written["sha256"] == row["sha256"] and int(written["batch"]) == row["batch"]


def test_table_names_the_provider_and_the_batch_search(capsys, tiny_model_path):
    capsys.readouterr()
    arguments = ["--model", str(tiny_model_path), "--rounds", "1", "--images", "4", "--quiet"]
    assert main(["bench", *arguments]) == 0
    table = capsys.readouterr().out
    header, rule, row = table.splitlines()[:3]
    assert header.startswith("| model | precision | device (provider) |")
    assert "cpu (CPU)" in row and "FP32" in row
    assert "batch search (images/s) 1:" in table
    assert "onnxruntime" in table and "4 synthetic 1024x1024 PGMs" in table


def test_best_batch_is_the_fastest_of_every_size_tried():
    calls = []

    def score(batch: np.ndarray) -> None:
        calls.append(len(batch))
        time.sleep(0.005)  # a fixed cost per call, as a launch overhead: big batches win

    inputs = np.zeros((8, 4, 4, 1), dtype=np.float32)
    best, rates = search_best_batch(score, inputs, [1, 2, 8], streams=1, default=1)
    assert sorted(rates) == [1, 2, 8] and best == max(rates, key=rates.get)
    assert best == 8 and rates[8] > rates[1] * (1 + BATCH_MARGIN)
    # Each size: one untimed warm-up call; then, twice in turn, a pass over the 8 inputs,
    # at least two batches long (inputs repeated), so that a stream never waits for work.
    assert calls == [1, 2, 8] + ([1] * 8 + [2] * 4 + [8] * 2) * 2


def test_another_batch_must_beat_the_default_by_the_margin():
    rates = {1: 100.0, 2: 100.0 * (1 + BATCH_MARGIN) - 0.01, 4: 90.0}
    assert choose_batch(rates, default=1) == 1  # within the margin: noise, keep predict's
    assert choose_batch({**rates, 8: 100.0 * (1 + BATCH_MARGIN) + 0.01}, default=1) == 8
    assert choose_batch(rates, default=4) == 2  # the default itself is slower by more
    assert choose_batch(rates) == 2  # no default: the fastest
    assert choose_batch(rates, default=16) == 2  # a default not tried does not count


def test_candidate_batches_depend_on_the_device_and_the_images():
    assert candidate_batches(CPU_PROVIDER, default=1, limit=48) == list(CPU_BATCHES)
    assert candidate_batches(CPU_PROVIDER, default=16, limit=48) == [*CPU_BATCHES, 16]
    assert candidate_batches(CPU_PROVIDER, default=16, limit=3) == [1, 2]
    assert candidate_batches(CUDA_PROVIDER, default=16, limit=64) == list(GPU_BATCHES)
    assert candidate_batches(TENSORRT_PROVIDER, default=16, limit=20) == [1, 8, 16]


def test_device_choice_follows_the_installed_onnxruntime(tiny_model_path):
    available = ort.get_available_providers()  # the real list: no mock
    expected = ["cpu"] + [
        device
        for device, provider in (("cuda", CUDA_PROVIDER), ("tensorrt", TENSORRT_PROVIDER))
        if provider in available
    ]
    assert default_devices() == expected
    predictor = Predictor(tiny_model_path, device="auto")
    on_cuda = CUDA_PROVIDER in available
    assert predictor.provider == (CUDA_PROVIDER if on_cuda else CPU_PROVIDER)
    preprocess = predictor.metadata.preprocess
    assert predictor.batch_size == default_batch_size(
        preprocess, predictor.streams, predictor.provider
    )
    if not on_cuda:
        assert providers_for("auto") == [CPU_PROVIDER]
        with pytest.raises(ProviderError) as refused:
            providers_for("cuda")
        assert ", ".join(available) in str(refused.value)
        assert "onnxruntime-gpu[cuda,cudnn]" in str(refused.value)


def test_batch_default_is_chosen_for_the_provider():
    lite0 = PreprocessConfig(input_height=512, input_width=256)
    seed = PreprocessConfig()
    assert default_batch_size(lite0, streams=2) == 1  # CPU: one batch shared by the calls
    assert default_batch_size(lite0, streams=1) == 2
    assert default_batch_size(lite0, provider=CUDA_PROVIDER) == 16
    assert default_batch_size(seed, streams=2, provider=CUDA_PROVIDER) == 64  # the cap
    assert default_batch_size(seed, provider=TENSORRT_PROVIDER) == 64
    assert default_batch_size(seed) == 16


@pytest.mark.skipif(not NO_CUDA, reason="this onnxruntime offers CUDA")
@pytest.mark.parametrize("device, provider", [("cuda", CUDA_PROVIDER), ("tensorrt", None)])
def test_a_missing_provider_is_refused_cleanly(device, provider, tmp_path):
    command = [sys.executable, "-m", "mammo_edge.cli", "bench", "--device", device, "--json"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert done.returncode == 1
    assert done.stdout == ""
    assert "Traceback" not in done.stderr
    message = done.stderr.strip()
    assert message.startswith("mammo-edge: error: device")
    assert (provider or TENSORRT_PROVIDER) in message
    assert ", ".join(ort.get_available_providers()) in message


def write_study_with_bad_files(folder):
    """Three mammogram-shaped PNGs, a PNG of garbage bytes and an all-black PNG."""
    folder.mkdir()
    for index in range(3):
        image = cv2.resize(synthetic_mammogram(index, side=256), (200, 240))
        assert cv2.imwrite(str(folder / f"good{index}.png"), image)
    (folder / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"not really" * 20)
    assert cv2.imwrite(str(folder / "black.png"), np.zeros((240, 200), np.uint8))
    return folder


def test_bad_files_in_folder_are_counted_not_timed(tmp_path, tiny_model_path, capsys):
    folder = write_study_with_bad_files(tmp_path / "study")
    settings = BenchSettings(rounds=1, images=10, folder=folder)
    report = run_bench([str(tiny_model_path)], ["cpu"], settings)
    (result,) = report.results
    assert result.timed == 3
    assert sum(result.errors.values()) == 2
    assert result.errors.get("NO_BREAST_FOUND") == 1, result.errors
    assert "5 of the 5 files" in report.images
    assert result.row.end_to_end_images_per_s > 0
    # The table says so. --images caps the files taken from the folder, in sorted order:
    # black, broken, good0, good1.
    capsys.readouterr()
    arguments = ["--model", str(tiny_model_path), "--rounds", "1", "--images", "4", "--quiet"]
    assert main(["bench", str(folder), *arguments]) == 0
    table = capsys.readouterr().out
    assert "4 of the 5 files" in table
    assert "2 file(s) did not load" in table and "counted, not timed; 2 timed" in table


def test_folder_where_nothing_loads_is_an_error(tmp_path, tiny_model_path, capsys):
    folder = tmp_path / "blank"
    folder.mkdir()
    assert cv2.imwrite(str(folder / "black.png"), np.zeros((240, 200), np.uint8))
    capsys.readouterr()
    code = main(["bench", str(folder), "--model", str(tiny_model_path), "--quiet"])
    assert code == 1
    assert "none of the 1 files loads" in capsys.readouterr().err


def test_bench_runs_without_training_frameworks(tiny_model_path, tmp_path):
    code = (
        "import json, sys\n"
        "from mammo_edge.cli import main\n"
        f"code = main(['bench', '--model', {str(tiny_model_path)!r}, '--rounds', '1', "
        "'--images', '2', '--json', '--quiet'])\n"
        "heavy = sorted({m.split('.')[0] for m in sys.modules} & "
        "{'tensorflow', 'keras', 'tf2onnx', 'onnx', 'torch', 'jax'})\n"
        "print(json.dumps({'code': code, 'heavy': heavy}), file=sys.stderr)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=tmp_path
    )
    assert done.returncode == 0, done.stderr
    outcome = json.loads(done.stderr.strip().splitlines()[-1])
    assert outcome == {"code": 0, "heavy": []}
    assert json.loads(done.stdout)["rows"][0]["provider"] == CPU_PROVIDER


def test_precision_is_read_from_the_graph(tiny_model_path):
    assert precision_of(tiny_model_path.read_bytes()) == "FP32"
    pytest.importorskip("onnx")
    from onnx import TensorProto, helper

    nodes = [
        helper.make_node("QuantizeLinear", ["x", "scale", "zero"], ["q"]),
        helper.make_node("DequantizeLinear", ["q", "scale", "zero"], ["y"]),
    ]
    graph = helper.make_graph(
        nodes,
        "qdq",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])],
        [
            helper.make_tensor("scale", TensorProto.FLOAT, [], [0.1]),
            helper.make_tensor("zero", TensorProto.INT8, [], [0]),
        ],
    )
    quantised = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    assert precision_of(quantised.SerializeToString()) == "INT8"


def test_synthetic_set_passes_the_mammogram_guard(tmp_path, tiny_model_path):
    paths = write_synthetic_set(tmp_path / "set", 5)
    assert [path.name for path in paths][:2] == ["synthetic00000.pgm", "synthetic00001.pgm"]
    header = paths[0].read_bytes()[:16]
    assert header.startswith(b"P5\n1024 1024\n255")
    records = Predictor(tiny_model_path, device="cpu").predict([str(p) for p in paths])
    assert all(record.ok for record in records), [r.error_code for r in records]
    left, right = synthetic_mammogram(0), synthetic_mammogram(1)
    assert left[:, :100].mean() > left[:, -100:].mean()  # chest wall on the left
    assert right[:, -100:].mean() > right[:, :100].mean()


def test_machine_facts_and_spread():
    assert set(MachineFacts.__dataclass_fields__) == MACHINE_FIELDS
    figure = spread([3.0, 1.0, 2.0])
    assert (figure.min, figure.median, figure.max, figure.rounds) == (1.0, 2.0, 3.0, 3)
    with pytest.raises(ValueError):
        spread([])


def test_summary_percentiles_and_throughput():
    milliseconds = np.arange(1, 101, dtype=float)
    summary = summarize(milliseconds / 1e3, batch=8)
    assert summary.runs == 100
    assert summary.median_ms == pytest.approx(50.5)
    assert summary.p95_ms == pytest.approx(95.05)
    assert summary.p99_ms == pytest.approx(99.01)
    assert summary.images_per_s == pytest.approx(8 / 0.0505)


@pytest.mark.parametrize("seconds, batch", [([], 1), ([0.1, 0.0], 1), ([0.1], 0)])
def test_summary_rejects_bad_input(seconds, batch):
    with pytest.raises(ValueError):
        summarize(seconds, batch)


def test_time_calls_excludes_warm_up_and_honours_repeat_counts():
    calls = []
    policy = RepeatPolicy(warmup=3, min_repeats=5, min_seconds=0.0, max_repeats=7, max_seconds=60)
    timings = time_calls(lambda: calls.append(1), policy)
    assert len(timings) == 5
    assert len(calls) == 8
    capped = RepeatPolicy(warmup=0, min_repeats=50, min_seconds=0.0, max_repeats=4, max_seconds=60)
    assert len(time_calls(lambda: None, capped)) == 4


def test_run_process_reports_the_childs_own_peak_memory(tmp_path):
    allocate = "import numpy; a = numpy.ones(200 * 2**20 // 8); print(a.sum())"
    run = run_process([sys.executable, "-c", allocate], tmp_path / "stdout.txt")
    assert run.exit_code == 0
    assert run.peak_rss_mb > 150
    assert (tmp_path / "stdout.txt").read_text().strip() == str(float(200 * 2**20 // 8))
    failing = run_process([sys.executable, "-c", "import sys; sys.exit(3)"], tmp_path / "o.txt")
    assert failing.exit_code == 3


def test_predict_info_and_bench_name_the_provider_that_ran(capsys, tiny_model_path, tmp_path):
    image = write_synthetic_set(tmp_path / "one", 1)[0]
    capsys.readouterr()
    assert main(["predict", str(image), "--model", str(tiny_model_path)]) == 0
    assert f"on {CPU_PROVIDER}" in capsys.readouterr().err
    assert main(["info", "--model", str(tiny_model_path), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["providers"]["ran"] == CPU_PROVIDER
    assert main(["info", "--model", str(tiny_model_path)]) == 0
    assert f"this check ran on {CPU_PROVIDER}" in capsys.readouterr().out
