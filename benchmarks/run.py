"""One benchmark run, top to bottom: machine, models, FLOPs, GEMM peak, model timings,
thread/batch choice, end to end, INT8 accuracy, targets. Returns one JSON-able dict.
"""

from __future__ import annotations

import datetime as dt
import os
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import onnx

from .choice import best_row, choose
from .endtoend import cli_throughput, cold_start, prepare_pgm_folder, stage_split
from .flops import count_keras_flops, count_onnx_flops, op_histogram
from .inference import (
    CPU,
    CUDA,
    InferenceRow,
    absent_rows,
    cuda_absent_reason,
    onnx_session,
    random_batch,
    time_keras,
    time_onnx,
)
from .machine import blas_warning, machine_info, measure_gemm_peak
from .sources import DEFAULT_KERAS, resolve_sources
from .targets import TargetResult, evaluate
from .timing import FULL_POLICY, QUICK_POLICY

FP32 = "onnxruntime FP32"
INT8 = "onnxruntime INT8"
KERAS_CALL = "keras model(x)"
KERAS_PREDICT = "keras predict"


@dataclass(frozen=True)
class RunOptions:
    """What ``python -m benchmarks`` was asked to do."""

    quick: bool = False
    out: Path = Path(__file__).resolve().parent / "results"
    keras: Path | None = DEFAULT_KERAS
    model: Path | None = None
    seed_cnn: bool = False
    threads: tuple[int, ...] = (1, 2)
    batches: tuple[int, ...] | None = None
    e2e_images: int | None = None
    skip_keras: bool = False
    skip_e2e: bool = False
    gemm_size: int = 2048
    command: str = "python -m benchmarks"

    @property
    def batch_sizes(self) -> tuple[int, ...]:
        if self.batches:
            return self.batches
        return (1, 32) if self.quick else (1, 8, 32, 128)


@dataclass
class Progress:
    """Prints one line per step with the elapsed time, so a long run shows where it is."""

    started: float = field(default_factory=time.perf_counter)
    enabled: bool = True

    def say(self, message: str) -> None:
        if self.enabled:
            print(f"[{time.perf_counter() - self.started:6.1f}s] {message}", flush=True)


def run_benchmarks(options: RunOptions, progress: Progress | None = None) -> dict:
    """Measure everything the issue asks for; returns the results dict (see results.json)."""
    progress = progress or Progress()
    policy = QUICK_POLICY if options.quick else FULL_POLICY
    batches = list(options.batch_sizes)
    cores = os.cpu_count() or 1
    results: dict = {
        "created": dt.datetime.now(tz=dt.timezone.utc).replace(microsecond=0).isoformat(),
        "command": options.command,
        "mode": "quick" if options.quick else "full",
        "machine": machine_info(),
        "warnings": [],
        "repeat_policy": asdict(policy),
    }
    warning = blas_warning()
    if warning:
        results["warnings"].append(warning)

    progress.say("resolving models")
    keras = None if options.skip_keras else options.keras
    sources = resolve_sources(options.model, keras, options.seed_cnn)
    try:
        _measure(options, sources, policy, batches, cores, results, progress)
    finally:
        sources.close()
    results["elapsed_s"] = round(time.perf_counter() - progress.started, 1)
    return results


def _measure(options, sources, policy, batches, cores, results, progress) -> None:
    results["models"] = {
        "origin": sources.origin,
        "fp32": str(sources.fp32_path),
        "int8": str(sources.int8_path) if sources.int8_path else None,
        "keras": str(sources.keras_path) if sources.keras_path else None,
        "keras_absent_reason": sources.keras_absent_reason,
        "random_weights": sources.random_weights,
        "notes": sources.notes,
    }
    if sources.random_weights:
        results["warnings"].append("seed CNN with RANDOM weights: speed only, no accuracy")

    progress.say("counting FLOPs")
    fp32_model = onnx.load(str(sources.fp32_path))
    dims = fp32_model.graph.input[0].type.tensor_type.shape.dim
    image_size = (dims[1].dim_value, dims[2].dim_value)
    fp32_flops = count_onnx_flops(fp32_model)
    flops = {
        "fp32_onnx_dense_flops_per_image": fp32_flops.dense_flops,
        "fp32_onnx_other_ops_per_image": fp32_flops.other_ops,
        "fp32_dense_by_node": fp32_flops.dense_by_node,
        "fp32_op_histogram": op_histogram(fp32_model),
        "image_size": image_size,
    }
    if sources.int8_path:
        int8_model = onnx.load(str(sources.int8_path))
        try:
            flops["int8_onnx_dense_flops_per_image"] = count_onnx_flops(int8_model).dense_flops
        except ValueError as error:
            # QDQ graphs hide some Reshape targets from shape inference; the Conv/MatMul
            # work is the FP32 graph's by construction, so count that and say so.
            flops["int8_onnx_dense_flops_per_image"] = fp32_flops.dense_flops
            flops["int8_flops_note"] = f"taken from the FP32 graph ({error})"
        flops["int8_op_histogram"] = op_histogram(int8_model)
    if sources.keras_model is not None:
        flops["keras_layer_flops_per_image"] = count_keras_flops(sources.keras_model)
    results["flops"] = flops
    flops_per_image = fp32_flops.dense_flops

    progress.say("measuring the numpy GEMM peak")
    gemm_threads = sorted(set(options.threads) | {cores})
    peaks = [
        measure_gemm_peak(t, size=options.gemm_size, repeats=5 if options.quick else 20)
        for t in gemm_threads
    ]
    results["gemm_peak"] = [asdict(peak) for peak in peaks]
    peak_by_threads = {peak.threads: peak.gflops_per_s for peak in peaks}

    rows: list[InferenceRow] = []
    models = [(FP32, sources.fp32_path)]
    if sources.int8_path:
        models.append((INT8, sources.int8_path))
    else:
        rows += absent_rows(INT8, CPU, batches, "absent: no INT8 model shipped or given")
    for engine, path in models:
        for threads in options.threads:
            progress.say(f"timing {engine}, {threads} thread(s), batches {batches}")
            rows += time_onnx(
                engine, path, threads, batches, image_size, policy, flops_per_image, peak_by_threads
            )
    cuda_reason = cuda_absent_reason()
    for engine, path in [(FP32, sources.fp32_path), (INT8, sources.int8_path)]:
        if cuda_reason or path is None:
            rows += absent_rows(engine, CUDA, batches, cuda_reason or "absent: no model")
        else:
            progress.say(f"timing {engine} on CUDA")
            rows += time_onnx(
                engine, path, None, batches, image_size, policy, flops_per_image, {}, CUDA
            )

    if options.skip_keras:
        for engine in (KERAS_CALL, KERAS_PREDICT):
            rows += absent_rows(engine, "tensorflow", batches, "absent: --skip-keras")
    elif sources.keras_model is None:
        for engine in (KERAS_CALL, KERAS_PREDICT):
            rows += absent_rows(engine, "tensorflow", batches, sources.keras_absent_reason)
    else:
        progress.say(f"timing Keras, batches {batches}")
        results["models"]["keras_vs_fp32_max_abs_difference"] = _keras_onnx_difference(
            sources.keras_model, sources.fp32_path, image_size
        )
        rows += time_keras(
            sources.keras_model,
            batches,
            image_size,
            policy,
            flops_per_image,
            peak_by_threads,
            cores,
        )
    results["inference"] = [_row_dict(row) for row in rows]

    choices = {engine: choose(rows, engine) for engine in (FP32, INT8)}
    results["choice"] = {k: asdict(v) if v else None for k, v in choices.items()}

    e2e = None if options.skip_e2e else _end_to_end(options, sources, choices, progress)
    results["end_to_end"] = e2e

    accuracy = None
    if sources.int8_path:
        progress.say("scoring INT8 against FP32 on MIAS")
        from .accuracy import int8_accuracy

        accuracy = int8_accuracy(sources.fp32_path, sources.int8_path)
    results["int8_accuracy"] = (
        {**asdict(accuracy), "within_limit": accuracy.within_limit} if accuracy else None
    )
    results["targets"] = [
        asdict(t) | {"verdict": t.verdict()} for t in _targets(rows, e2e, accuracy)
    ]
    progress.say("done measuring")


def _end_to_end(options, sources, choices, progress) -> dict:
    count = options.e2e_images or (24 if options.quick else 128)
    model_args = {"fp32": [], "int8": []}
    if not sources.uses_shipped_default:
        model_args["fp32"] = ["--model", str(sources.fp32_path)]
        if sources.int8_path:
            model_args["int8"] = ["--model", str(sources.int8_path)]
    elif sources.int8_path:
        # The shipped twin by its manifest name (the file stem), as a user would type it.
        model_args["int8"] = ["--model", sources.int8_path.stem]
    result: dict = {}
    with tempfile.TemporaryDirectory(prefix="mammo-edge-e2e-") as folder:
        work = Path(folder)
        progress.say(f"writing {count} and {2 * count} PGMs for mammo-edge predict")
        origin = prepare_pgm_folder(work / "small", count)
        prepare_pgm_folder(work / "large", 2 * count)
        result["images_origin"] = origin
        runs = [("FP32 (CLI defaults)", model_args["fp32"])]
        if sources.int8_path:
            runs.append(("INT8 (CLI defaults)", model_args["int8"]))
        tuned = choices.get(INT8) or choices.get(FP32)
        if tuned is not None:
            key = "int8" if choices.get(INT8) else "fp32"
            flags = ["--batch-size", str(tuned.throughput_batch)]
            if tuned.throughput_threads is not None:
                flags += ["--threads", str(tuned.throughput_threads)]
            runs.append((f"{key.upper()} (chosen batch/threads)", model_args[key] + flags))
        throughput = []
        for label, extra in runs:
            progress.say(f"mammo-edge predict: {label}")
            throughput.append(
                asdict(
                    cli_throughput(
                        label,
                        work / "small",
                        work / "large",
                        extra,
                        work,
                        repeats=1 if options.quick else 3,
                    )
                )
            )
        result["cli"] = throughput
        progress.say("cold start")
        single = sorted((work / "small").glob("*.pgm"))[0]
        result["cold_start"] = asdict(
            cold_start(single, model_args["fp32"], work, repeats=2 if options.quick else 5)
        )
        split_choice = choices.get(FP32)
        if split_choice is not None:
            progress.say("stage split (decode / resize / inference)")
            result["stage_split"] = {}
            for name, path, choice in (
                ("FP32", sources.fp32_path, choices.get(FP32)),
                ("INT8", sources.int8_path, choices.get(INT8)),
            ):
                if path is None or choice is None:
                    continue
                split = stage_split(
                    work / "large", path, choice.throughput_batch, choice.throughput_threads
                )
                result["stage_split"][name] = asdict(split) | {"total_ms": split.total_ms}
    return result


def _targets(rows, e2e, accuracy) -> list[TargetResult]:
    targets = []
    keras_single = best_row(rows, KERAS_CALL, 1, 1)
    fp32_single = [
        r for r in rows if r.engine == FP32 and r.provider == CPU and r.ok and r.batch == 1
    ]
    fastest_single = min(fp32_single, key=lambda r: r.latency.median_ms) if fp32_single else None
    ratio = (
        keras_single.latency.median_ms / fastest_single.latency.median_ms
        if keras_single and fastest_single
        else None
    )
    targets.append(
        evaluate(
            "FP32 batch-1 latency vs Keras model(x) (ratio)",
            ratio,
            4.0,
            "x",
            note="Keras median / best onnxruntime FP32 median at batch 1"
            if ratio
            else "needs both Keras and FP32 batch-1 rows",
        )
    )
    big_fp32 = [r for r in rows if r.engine == FP32 and r.ok and r.batch >= 32 and r.peak_fraction]
    best_fraction = max(big_fp32, key=lambda r: r.peak_fraction) if big_fp32 else None
    targets.append(
        evaluate(
            "FP32 batch>=32 share of numpy GEMM peak",
            best_fraction.peak_fraction * 100 if best_fraction else None,
            80.0,
            "%",
            note=(
                f"{best_fraction.threads} thread(s), batch {best_fraction.batch}, against the "
                f"GEMM peak at the same thread count"
                if best_fraction
                else "no FP32 row at batch >= 32"
            ),
        )
    )
    int8_best = best_row(rows, INT8, 32)
    fp32_best = best_row(rows, FP32, 32)
    speedup = (
        int8_best.latency.images_per_s / fp32_best.latency.images_per_s
        if int8_best and fp32_best
        else None
    )
    if accuracy is None:
        condition, accuracy_note = None, "accuracy not checked (no MIAS archive)"
    else:
        condition = accuracy.within_limit
        accuracy_note = (
            f"|dAUC| {abs(accuracy.delta_auc):.4f} vs limit {accuracy.auc_tolerance} "
            f"({'within' if condition else 'OUTSIDE'}) on {accuracy.images} MIAS images"
        )
    targets.append(
        evaluate(
            "INT8 / FP32 throughput at batch>=32",
            speedup,
            1.8,
            "x",
            note=f"best of each over threads and batches >= 32; {accuracy_note}",
            extra_condition=condition,
        )
    )
    cli_rate, cli_note, cold = None, "end to end not run", None
    if e2e:
        ok = [run for run in e2e["cli"] if run["status"] == "ok"]
        if ok:
            best = max(ok, key=lambda run: run["images_per_s_with_startup"])
            cli_rate = best["images_per_s_with_startup"]
            marginal = best["images_per_s_marginal"]
            cli_note = f"{best['label']}, {best['images']} images incl. process start" + (
                f"; marginal {marginal:.0f} images/s" if marginal else ""
            )
        else:
            cli_note = "; ".join(run["status"] for run in e2e["cli"])
        cold = e2e["cold_start"]["predict_one_image_s"]
    targets.append(
        evaluate("mammo-edge predict on 1024x1024 PGMs", cli_rate, 250.0, "images/s", note=cli_note)
    )
    targets.append(
        evaluate(
            "cold start, one image (fresh process)",
            cold,
            0.5,
            "s",
            higher_is_better=False,
            note="wall time of `mammo-edge predict one.pgm`, interpreter start included",
        )
    )
    return targets


def _keras_onnx_difference(keras_model, fp32_path: Path, image_size: tuple[int, int]) -> float:
    batch = random_batch(8, image_size, seed=1)
    keras_out = np.asarray(keras_model(batch, training=False)).reshape(-1)
    session = onnx_session(fp32_path, threads=None)
    onnx_out = session.run(None, {session.get_inputs()[0].name: batch})[0].reshape(-1)
    return float(np.max(np.abs(keras_out - onnx_out)))


def _row_dict(row: InferenceRow) -> dict:
    result = asdict(row)
    result.pop("latency")
    result.update(asdict(row.latency) if row.latency else {})
    return result
