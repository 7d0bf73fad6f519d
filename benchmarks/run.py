"""One benchmark run, top to bottom: machine, GEMM peak, then for every model family
(a shipped model, its INT8 twin, its Keras source): FLOPs, model timings, thread/batch
choice, end to end, cold start, INT8 accuracy; then the targets. Returns one JSON-able dict.
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

from export.provenance import file_sha256
from mammo_edge.bench.model_alone import random_batch
from mammo_edge.bench.timing import FULL_POLICY, QUICK_POLICY
from mammo_edge.model.metadata import MetadataError, ModelMetadata

from .choice import best_row, choose
from .endtoend import cli_throughput, cold_start, prepare_pgm_folder, stage_split, startup_parts
from .errors import BenchmarkError
from .flops import count_keras_flops, count_onnx_flops, op_histogram
from .inference import (
    CPU,
    CUDA,
    InferenceRow,
    cuda_absent_reason,
    onnx_session,
    time_keras,
    time_onnx,
)
from .machine import CpuWatch, blas_warning, machine_info, measure_gemm_peak
from .sources import ModelFamily, parse_keras_overrides, quick_names, resolve_sources
from .targets import TargetResult, evaluate

FP32 = "onnxruntime FP32"
INT8 = "onnxruntime INT8"
KERAS_CALL = "keras model(x)"
KERAS_PREDICT = "keras predict"
#: Issue 8's targets for the default model (the seed CNN keeps its own, older ones).
DEFAULT_E2E_TARGET = 60.0
DEFAULT_COLD_START_TARGET = 1.0
SEED_E2E_TARGET = 250.0
SEED_COLD_START_TARGET = 0.5


@dataclass(frozen=True)
class RunOptions:
    """What ``python -m benchmarks`` was asked to do.

    ``keras`` holds the ``--keras`` values (``NAME=PATH``, or a bare ``PATH`` for the
    default model); ``models`` the families to measure (None: all, or with ``quick`` the
    default model's and the seed CNN's).
    """

    quick: bool = False
    out: Path = Path(__file__).resolve().parent / "results"
    keras: tuple[str, ...] = ()
    model: Path | None = None
    models: tuple[str, ...] | None = None
    seed_cnn: bool = False
    threads: tuple[int, ...] = (1, 2)
    batches: tuple[int, ...] | None = None
    e2e_images: int | None = None
    skip_keras: bool = False
    skip_e2e: bool = False
    skip_accuracy: bool | None = None
    gemm_size: int = 2048
    command: str = "python -m benchmarks"

    @property
    def batch_sizes(self) -> tuple[int, ...]:
        if self.batches:
            return self.batches
        return (1, 8) if self.quick else (1, 8, 32)

    @property
    def check_accuracy(self) -> bool:
        """INT8 against FP32 on every MIAS image: on by default, off with ``--quick``."""
        return not self.quick if self.skip_accuracy is None else not self.skip_accuracy


@dataclass
class Progress:
    """Prints one line per step with the elapsed time, so a long run shows where it is."""

    started: float = field(default_factory=time.perf_counter)
    enabled: bool = True

    def say(self, message: str) -> None:
        if self.enabled:
            print(f"[{time.perf_counter() - self.started:6.1f}s] {message}", flush=True)


@dataclass
class _Context:
    """What every family's measurement shares."""

    options: RunOptions
    policy: object
    batches: list[int]
    cores: int
    peak_by_threads: dict[int, float]
    cuda_reason: str | None
    progress: Progress
    work: Path | None = None
    e2e_count: int = 0


def run_benchmarks(options: RunOptions, progress: Progress | None = None) -> dict:
    """Measure everything the issue asks for; returns the results dict (see results.json)."""
    progress = progress or Progress()
    policy = QUICK_POLICY if options.quick else FULL_POLICY
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

    watch = CpuWatch().start()
    progress.say("resolving models")
    sources = resolve_sources(
        options.model,
        parse_keras_overrides(options.keras),
        options.seed_cnn,
        options.models,
        options.skip_keras,
    )
    try:
        if options.quick and options.models is None:
            keep = quick_names(sources.families)
            sources.families = [f for f in sources.families if f.name in keep]
        results["origin"] = sources.origin
        results["notes"] = list(sources.notes)
        results["default_model"] = next((f.name for f in sources.families if f.default), None)
        _measure(options, sources.families, policy, cores, results, progress)
    finally:
        sources.close()
    results["elapsed_s"] = round(time.perf_counter() - progress.started, 1)
    results["other_processes"] = watch.stop()
    return results


def _measure(options, families, policy, cores, results, progress) -> None:
    progress.say(f"models: {', '.join(_family_label(f) for f in families)}")
    progress.say("measuring the numpy GEMM peak")
    gemm_threads = sorted(set(options.threads) | {cores})
    peaks = [
        measure_gemm_peak(t, size=options.gemm_size, repeats=5 if options.quick else 20)
        for t in gemm_threads
    ]
    results["gemm_peak"] = [asdict(peak) for peak in peaks]
    context = _Context(
        options=options,
        policy=policy,
        batches=list(options.batch_sizes),
        cores=cores,
        peak_by_threads={peak.threads: peak.gflops_per_s for peak in peaks},
        cuda_reason=cuda_absent_reason(),
        progress=progress,
    )
    results["cuda"] = context.cuda_reason or "measured"
    targets: list[TargetResult] = []
    with tempfile.TemporaryDirectory(prefix="mammo-edge-e2e-") as folder:
        if not options.skip_e2e:
            context.work = Path(folder)
            context.e2e_count = options.e2e_images or (24 if options.quick else 128)
            count = context.e2e_count
            progress.say(f"writing {count} and {2 * count} PGMs for mammo-edge predict")
            results["images_origin"] = prepare_pgm_folder(context.work / "small", count)
            prepare_pgm_folder(context.work / "large", 2 * count)
            progress.say("start-up parts (python, imports)")
            results["startup"] = asdict(
                startup_parts(context.work, repeats=2 if options.quick else 5)
            )
        results["models"] = []
        for family in families:
            watch = CpuWatch().start()
            entry, rows = _measure_family(family, context)
            entry["other_processes"] = watch.stop()
            results["models"].append(entry)
            targets += _family_targets(family, entry, rows)
    if any(f.random_weights for f in families):
        results["warnings"].append("seed CNN with RANDOM weights: speed only, no accuracy")
    results["targets"] = [asdict(t) | {"verdict": t.verdict()} for t in targets]
    progress.say("done measuring")


def _family_label(family: ModelFamily) -> str:
    twin = f" + {family.int8_name}" if family.int8_path else ""
    return f"{family.name}{twin}{' (default)' if family.default else ''}"


def _measure_family(family: ModelFamily, context: _Context) -> tuple[dict, list[InferenceRow]]:
    """Every measurement of one family; returns its results entry and its timing rows."""
    options, progress, batches = context.options, context.progress, context.batches
    entry: dict = {
        "name": family.name,
        "default": family.default,
        "int8_name": family.int8_name,
        "fp32": str(family.fp32_path),
        "int8": str(family.int8_path) if family.int8_path else None,
        "keras": str(family.keras.path) if family.keras else None,
        "keras_absent_reason": family.keras_absent_reason,
        "random_weights": family.random_weights,
        "outputs": [],
        "sha256": {
            "fp32": file_sha256(family.fp32_path),
            "int8": file_sha256(family.int8_path) if family.int8_path else None,
        },
    }
    for precision, digest in entry["sha256"].items():
        if digest:
            progress.say(f"[{family.name}] {precision} sha256 {digest}")
    progress.say(f"[{family.name}] counting FLOPs")
    fp32_model = onnx.load(str(family.fp32_path))
    dims = fp32_model.graph.input[0].type.tensor_type.shape.dim
    image_size = (dims[1].dim_value, dims[2].dim_value)
    entry["outputs"] = [output.name for output in fp32_model.graph.output]
    entry["image_size"] = list(image_size)
    fp32_flops = count_onnx_flops(fp32_model)
    flops = {
        "fp32_onnx_dense_flops_per_image": fp32_flops.dense_flops,
        "fp32_onnx_other_ops_per_image": fp32_flops.other_ops,
        "fp32_dense_nodes": len(fp32_flops.dense_by_node),
        "fp32_op_histogram": op_histogram(fp32_model),
    }
    del fp32_model
    if family.int8_path:
        int8_model = onnx.load(str(family.int8_path))
        try:
            flops["int8_onnx_dense_flops_per_image"] = count_onnx_flops(int8_model).dense_flops
        except ValueError as error:
            # QDQ graphs hide some Reshape targets from shape inference; the Conv/MatMul
            # work is the FP32 graph's by construction, so count that and say so.
            flops["int8_onnx_dense_flops_per_image"] = fp32_flops.dense_flops
            flops["int8_flops_note"] = f"taken from the FP32 graph ({error})"
        flops["int8_op_histogram"] = op_histogram(int8_model)
        del int8_model
    entry["flops"] = flops
    flops_per_image = fp32_flops.dense_flops
    entry["cli_default_batch"] = _cli_default_batch(family.fp32_path)

    rows: list[InferenceRow] = []
    engines = [(FP32, family.fp32_path)]
    if family.int8_path:
        engines.append((INT8, family.int8_path))
    for engine, path in engines:
        for threads in options.threads:
            progress.say(f"[{family.name}] timing {engine}, {threads} thread(s), batches {batches}")
            rows += time_onnx(
                engine,
                path,
                threads,
                batches,
                image_size,
                context.policy,
                flops_per_image,
                context.peak_by_threads,
            )
        if context.cuda_reason is None:
            progress.say(f"[{family.name}] timing {engine} on CUDA")
            rows += time_onnx(
                engine, path, None, batches, image_size, context.policy, flops_per_image, {}, CUDA
            )
    rows += _keras_rows(family, entry, image_size, flops_per_image, context)
    entry["inference"] = [_row_dict(row) for row in rows]
    choices = {engine: choose(rows, engine) for engine, _ in engines}
    entry["choice"] = {k: asdict(v) if v else None for k, v in choices.items()}
    entry["end_to_end"] = _end_to_end(family, choices, context) if context.work else None

    accuracy = None
    if family.int8_path and options.check_accuracy:
        progress.say(f"[{family.name}] scoring INT8 against FP32 on MIAS")
        from .accuracy import int8_accuracy

        accuracy = int8_accuracy(family.fp32_path, family.int8_path)
    entry["int8_accuracy"] = (
        {**asdict(accuracy), "within_limit": accuracy.within_limit} if accuracy else None
    )
    entry["summary"] = _summary(entry, rows, choices)
    return entry, rows


def _cli_default_batch(path: Path) -> int | None:
    """The batch size ``mammo-edge predict`` uses for this model when none is given
    (``None`` for a file without mammo-edge metadata, which the CLI would refuse)."""
    from mammo_edge.predictor import default_batch_size

    model = onnx.load(str(path), load_external_data=False)
    props = {prop.key: prop.value for prop in model.metadata_props}
    try:
        metadata = ModelMetadata.from_props(props, source=str(path))
    except MetadataError:
        return None
    return default_batch_size(metadata.preprocess)


def _keras_rows(family, entry, image_size, flops_per_image, context) -> list[InferenceRow]:
    """Keras ``model(x)`` and ``predict`` rows, or rows saying why they are absent."""
    batches = context.batches
    try:
        keras_model = family.load_keras()
    except BenchmarkError as error:
        family.keras_absent_reason = f"absent: {error}"
        entry["keras_absent_reason"] = family.keras_absent_reason
        keras_model = None
    if keras_model is None:
        reason = family.keras_absent_reason or "absent: no Keras source"
        return [
            InferenceRow(engine, "tensorflow", None, batch, reason)
            for engine in (KERAS_CALL, KERAS_PREDICT)
            for batch in batches
        ]
    context.progress.say(f"[{family.name}] timing Keras, batches {batches}")
    try:
        entry["flops"]["keras_layer_flops_per_image"] = count_keras_flops(keras_model)
    except ValueError as error:
        entry["flops"]["keras_layer_flops_note"] = str(error)
    entry["keras_vs_fp32_max_abs_difference"] = _keras_onnx_difference(
        keras_model, family.fp32_path, image_size
    )
    rows = time_keras(
        keras_model,
        batches,
        image_size,
        context.policy,
        flops_per_image,
        context.peak_by_threads,
        context.cores,
    )
    family.release_keras()
    return rows


def _end_to_end(family: ModelFamily, choices: dict, context: _Context) -> dict:
    """``mammo-edge predict`` at the CLI defaults (FP32, INT8) and at the chosen
    batch/threads of the faster engine; cold start and stage split per precision."""
    options, progress, work = context.options, context.progress, context.work
    precisions = [("FP32", family.name, family.fp32_path, family.cli_fp32, choices.get(FP32))]
    if family.int8_path:
        precisions.append(
            ("INT8", family.int8_name, family.int8_path, family.cli_int8, choices.get(INT8))
        )
    runs = [(f"{name} (CLI defaults)", arguments) for _, name, _, arguments, _ in precisions]
    fastest = max(
        (p for p in precisions if p[4] is not None),
        key=lambda p: p[4].images_per_s,
        default=None,
    )
    if fastest is not None and not options.quick:
        _, name, _, arguments, choice = fastest
        flags = ["--batch-size", str(choice.throughput_batch)]
        if choice.throughput_threads is not None:
            flags += ["--threads", str(choice.throughput_threads)]
        runs.append((f"{name} (chosen batch/threads)", arguments + flags))
    throughput = []
    for label, arguments in runs:
        progress.say(f"[{family.name}] mammo-edge predict: {label}")
        throughput.append(
            asdict(
                cli_throughput(
                    label,
                    work / "small",
                    work / "large",
                    arguments,
                    work,
                    repeats=1 if options.quick else 3,
                )
            )
        )
    result: dict = {"cli": throughput, "cold_start": {}, "stage_split": {}}
    single = sorted((work / "small").glob("*.pgm"))[0]
    for precision, name, path, arguments, choice in precisions:
        progress.say(f"[{family.name}] cold start, {name}")
        result["cold_start"][precision] = asdict(
            cold_start(single, arguments, work, repeats=2 if options.quick else 5)
        ) | {"model": name, "arguments": arguments}
        if choice is not None:
            progress.say(f"[{family.name}] stage split, {name}")
            split = stage_split(
                work / "large",
                path,
                choice.throughput_batch,
                choice.throughput_threads,
                limit=16 if options.quick else 64,
            )
            result["stage_split"][precision] = asdict(split) | {"total_ms": split.total_ms}
    return result


def _summary(entry: dict, rows: list[InferenceRow], choices: dict) -> dict:
    """One line per family for the summary table (docs/benchmarks.md's)."""
    summary: dict = {
        "gflop_per_image": entry["flops"]["fp32_onnx_dense_flops_per_image"] / 1e9,
    }
    for engine, key in ((FP32, "fp32"), (INT8, "int8"), (KERAS_CALL, "keras")):
        single = best_row(rows, engine, 1, 1)
        summary[f"{key}_batch1_ms"] = single.latency.median_ms if single else None
        for batch in (8, 32):
            row = best_row(rows, engine, batch, batch)
            summary[f"{key}_batch{batch}_images_per_s"] = row.latency.images_per_s if row else None
    big = [
        r
        for r in rows
        if r.engine == FP32 and r.provider == CPU and r.ok and r.batch >= 8 and r.peak_fraction
    ]
    best = max(big, key=lambda r: r.peak_fraction) if big else None
    summary["fp32_peak_fraction"] = best.peak_fraction if best else None
    summary["fp32_peak_fraction_at"] = (
        f"{best.threads} threads, batch {best.batch}" if best else None
    )
    e2e = entry.get("end_to_end")
    if e2e:
        for precision, model in (("FP32", entry["name"]), ("INT8", entry["int8_name"])):
            run = next((r for r in e2e["cli"] if r["label"] == f"{model} (CLI defaults)"), None)
            key = precision.lower()
            summary[f"{key}_e2e_images_per_s"] = run["images_per_s_with_startup"] if run else None
            summary[f"{key}_e2e_marginal"] = run["images_per_s_marginal"] if run else None
            summary[f"{key}_peak_rss_mb"] = run["peak_rss_mb"] if run else None
            cold = e2e["cold_start"].get(precision)
            summary[f"{key}_cold_start_s"] = cold["predict_one_image_s"] if cold else None
    accuracy = entry.get("int8_accuracy")
    summary["int8_delta_auc"] = accuracy["delta_auc"] if accuracy else None
    summary["same_run_ratios"] = same_run_ratios(entry, rows)
    return summary


def same_run_ratios(entry: dict, rows: list[InferenceRow]) -> dict:
    """Ratios of figures measured in this run, which a busy machine slows alike.

    - ``int8_vs_fp32_batch1_<T>t``: FP32 / INT8 median latency at batch 1, T threads;
    - ``e2e_vs_model_<precision>``: ``mammo-edge predict`` images/s at the CLI defaults
      (with start-up, and marginal) / the model alone at the CLI's batch size and thread
      count (all cores), when the run measured that batch size (``--batches``).
    """
    ratios: dict = {}
    cpu_rows = [r for r in rows if r.provider == CPU and r.ok]
    for threads in sorted({r.threads for r in cpu_rows if r.threads is not None}):
        fp32 = next(
            (r for r in cpu_rows if (r.engine, r.batch, r.threads) == (FP32, 1, threads)), None
        )
        int8 = next(
            (r for r in cpu_rows if (r.engine, r.batch, r.threads) == (INT8, 1, threads)), None
        )
        if fp32 and int8:
            ratios[f"int8_vs_fp32_batch1_{threads}t"] = (
                fp32.latency.median_ms / int8.latency.median_ms
            )
    e2e = entry.get("end_to_end")
    cores = os.cpu_count() or 1
    batch = entry.get("cli_default_batch")
    for precision, engine, model in (
        ("fp32", FP32, entry["name"]),
        ("int8", INT8, entry["int8_name"]),
    ):
        run = e2e and next((r for r in e2e["cli"] if r["label"] == f"{model} (CLI defaults)"), None)
        alone = next(
            (r for r in cpu_rows if (r.engine, r.batch, r.threads) == (engine, batch, cores)), None
        )
        if run and alone:
            rate = alone.latency.images_per_s
            ratios[f"e2e_vs_model_{precision}"] = {
                "model_alone_images_per_s": rate,
                "batch": batch,
                "threads": cores,
                "with_startup": run["images_per_s_with_startup"] / rate,
                "marginal": run["images_per_s_marginal"] / rate,
            }
    return ratios


def _family_targets(family: ModelFamily, entry: dict, rows: list[InferenceRow]) -> list:
    targets = []
    if family.default:
        targets += _default_targets(entry)
    if family.name == "seed" or (family.random_weights and family.default):
        targets += _seed_targets(entry, rows)
    return targets


def _best_cli_run(e2e: dict | None) -> tuple[float | None, str]:
    if not e2e:
        return None, "end to end not run"
    ok = [run for run in e2e["cli"] if run["status"] == "ok"]
    if not ok:
        return None, "; ".join(run["status"] for run in e2e["cli"])
    best = max(ok, key=lambda run: run["images_per_s_with_startup"])
    marginal = best["images_per_s_marginal"]
    arguments = f" `{' '.join(best['arguments'])}`" if best["arguments"] else ""
    note = f"{best['label']}{arguments}, {best['images']} images incl. process start" + (
        f"; marginal {marginal:.0f} images/s" if marginal else ""
    )
    return best["images_per_s_with_startup"], note


def _default_targets(entry: dict) -> list[TargetResult]:
    """Issue 8: the default model end to end with its faster precision; cold start."""
    name = entry["name"]
    rate, note = _best_cli_run(entry["end_to_end"])
    cold, cold_note = None, "end to end not run"
    if entry["end_to_end"]:
        start = entry["end_to_end"]["cold_start"]["FP32"]
        cold = start["predict_one_image_s"]
        command = " ".join(["mammo-edge predict", *start["arguments"], "one.pgm"])
        cold_note = f"wall time of `{command}` (the default model), interpreter start included"
        if start["status"] != "ok":
            cold_note = start["status"]
    return [
        evaluate(
            f"{name} (default): mammo-edge predict on 1024x1024 PGMs, faster precision",
            rate,
            DEFAULT_E2E_TARGET,
            "images/s",
            note=note,
        ),
        evaluate(
            f"{name} (default): cold start, one image (fresh process)",
            cold,
            DEFAULT_COLD_START_TARGET,
            "s",
            higher_is_better=False,
            note=cold_note,
        ),
    ]


def _seed_targets(entry: dict, rows: list[InferenceRow]) -> list[TargetResult]:
    """The seed CNN's targets from the first benchmark issue, kept for comparison."""
    name = entry["name"]
    targets = []
    keras_single = best_row(rows, KERAS_CALL, 1, 1)
    fastest_single = best_row(rows, FP32, 1, 1)
    ratio = (
        keras_single.latency.median_ms / fastest_single.latency.median_ms
        if keras_single and fastest_single
        else None
    )
    targets.append(
        evaluate(
            f"{name}: FP32 batch-1 latency vs Keras model(x) (ratio)",
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
            f"{name}: FP32 batch>=32 share of numpy GEMM peak",
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
    accuracy = entry.get("int8_accuracy")
    if accuracy is None:
        condition, accuracy_note = None, "accuracy not checked (--quick, or no MIAS archive)"
    else:
        condition = accuracy["within_limit"]
        accuracy_note = (
            f"|dAUC| {abs(accuracy['delta_auc']):.4f} vs limit {accuracy['auc_tolerance']} "
            f"({'within' if condition else 'OUTSIDE'}) on {accuracy['images']} MIAS images"
        )
    targets.append(
        evaluate(
            f"{name}: INT8 / FP32 throughput at batch>=32",
            speedup,
            1.8,
            "x",
            note=f"best of each over threads and batches >= 32; {accuracy_note}",
            extra_condition=condition,
        )
    )
    rate, note = _best_cli_run(entry["end_to_end"])
    targets.append(
        evaluate(
            f"{name}: mammo-edge predict on 1024x1024 PGMs",
            rate,
            SEED_E2E_TARGET,
            "images/s",
            note=note,
        )
    )
    cold, cold_note = None, "end to end not run"
    if entry["end_to_end"]:
        start = entry["end_to_end"]["cold_start"]["FP32"]
        cold = start["predict_one_image_s"]
        command = " ".join(["mammo-edge predict", *start["arguments"], "one.pgm"])
        cold_note = f"wall time of `{command}`, interpreter start included"
    targets.append(
        evaluate(
            f"{name}: cold start, one image (fresh process)",
            cold,
            SEED_COLD_START_TARGET,
            "s",
            higher_is_better=False,
            note=cold_note,
        )
    )
    return targets


def _keras_onnx_difference(keras_model, fp32_path: Path, image_size: tuple[int, int]) -> float:
    """Largest |Keras - onnxruntime| probability on a random batch of 4 (the probability
    output only: a heatmap has its own parity check in the export)."""
    batch = random_batch(4, image_size, seed=1)
    keras_out = keras_model(batch, training=False)
    if isinstance(keras_out, dict):
        keras_out = keras_out["probability"]
    elif isinstance(keras_out, (list, tuple)):
        keras_out = keras_out[0]  # the export's order: probability, then heatmap
    session = onnx_session(fp32_path, threads=None)
    names = [output.name for output in session.get_outputs()]
    wanted = "probability" if "probability" in names else names[0]
    onnx_out = session.run([wanted], {session.get_inputs()[0].name: batch})[0]
    return float(np.max(np.abs(np.asarray(keras_out).reshape(-1) - onnx_out.reshape(-1))))


def _row_dict(row: InferenceRow) -> dict:
    result = asdict(row)
    result.pop("latency")
    result.update(asdict(row.latency) if row.latency else {})
    return result
