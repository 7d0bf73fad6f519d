"""Write one run's results: ``results.json``, ``results.md`` (Markdown tables), ``results.png``."""

from __future__ import annotations

import json
import math
from pathlib import Path


def write_reports(results: dict, out: Path) -> dict[str, Path]:
    """Write the three files into ``out`` (created if needed); returns their paths."""
    out.mkdir(parents=True, exist_ok=True)
    paths = {
        "json": out / "results.json",
        "markdown": out / "results.md",
        "plot": out / "results.png",
    }
    paths["json"].write_text(json.dumps(results, indent=2, default=str) + "\n")
    paths["markdown"].write_text(render_markdown(results))
    write_plot(results, paths["plot"])
    return paths


def render_markdown(results: dict) -> str:
    """All tables of the run as Markdown, headed by the machine and the command."""
    machine = results["machine"]
    load = machine.get("load_average_at_start")
    lines = [
        f"# mammo-edge benchmark ({results['mode']})",
        "",
        f"- CPU: {machine['cpu']} ({machine['logical_cores']} logical cores; "
        f"{', '.join(machine['cpu_features']) or 'no SIMD flags read'})"
        + (f"; load average at start {load[0]:.2f}" if load else ""),
        f"- Command: `{results['command']}`; {results['created']}; "
        f"took {results.get('elapsed_s', '?')} s",
        f"- Versions: {', '.join(f'{k} {v}' for k, v in machine['versions'].items())}",
        f"- Models: {results['origin']}; measured: "
        + ", ".join(_model_label(model) for model in results["models"]),
        f"- CUDA: {results.get('cuda', 'not recorded')}",
    ]
    others = results.get("other_processes")
    if others:
        lines.append(
            f"- Other processes on this machine during the run: {others['foreign_cpu_s']} CPU s "
            f"in {others['wall_s']} s ({_percent(others['foreign_share'])} of all cores' time; "
            "per model below)"
        )
    for note in results.get("notes", []):
        lines.append(f"- Note: {note}")
    for warning in results.get("warnings", []):
        lines.append(f"- **Warning**: {warning}")
    lines += ["", "## Targets", ""]
    lines += _table(
        ["target", "measured", "goal", "met", "how"],
        [
            [
                t["name"],
                _number(t["measured"], t["unit"]),
                ("≥ " if t["higher_is_better"] else "≤ ") + _number(t["target"], t["unit"]),
                t["verdict"],
                t["note"],
            ]
            for t in results["targets"]
        ],
    )
    lines += ["", "## Every model, side by side", ""]
    lines += _summary_lines(results["models"])
    lines += ["", "## Model files measured (SHA-256)", ""]
    lines += _table(
        ["model (precision)", "file", "sha256"],
        [
            [f"{name} ({precision.upper()})", path, model["sha256"][precision]]
            for model in results["models"]
            for precision, name, path in (
                ("fp32", model["name"], model["fp32"]),
                ("int8", model.get("int8_name"), model.get("int8")),
            )
            if model.get("sha256", {}).get(precision)
        ],
    )
    lines += ["", "## Same-run ratios", ""]
    lines += _ratio_lines(results["models"])
    lines += ["", "## The machine's limit", ""]
    lines += _table(
        ["numpy GEMM", "threads", "best GFLOP/s", "BLAS kernel"],
        [
            [
                f"float32 {p['size']}x{p['size']}, best of {p['repeats']}",
                str(p["threads"]),
                f"{p['gflops_per_s']:.1f}",
                p["blas_architecture"],
            ]
            for p in results["gemm_peak"]
        ],
    )
    startup = results.get("startup")
    if startup:
        lines += ["", "## What any cold start pays (fresh processes, median seconds)", ""]
        lines += _table(
            ["part", "seconds"],
            [
                ["python start-up (`python -c pass`)", _number(startup["python_startup_s"], "")],
                ["import onnxruntime", _number(startup["import_onnxruntime_s"], "")],
                ["import mammo_edge", _number(startup["import_mammo_edge_s"], "")],
                ["import mammo_edge.cli", _number(startup["import_mammo_edge_cli_s"], "")],
            ],
        )
    for model in results["models"]:
        lines += ["", f"## {_model_label(model)}", ""]
        lines += _model_lines(model, results)
    return "\n".join(lines) + "\n"


def _ratio_lines(models: list[dict]) -> list[str]:
    """INT8/FP32 speed and end to end/model alone, each from one run (a busy machine
    slows both sides of a ratio alike; the absolute rates are only as good as its quiet)."""
    rows = []
    for model in models:
        ratios = model.get("summary", {}).get("same_run_ratios", {})
        for key, value in ratios.items():
            if key.startswith("int8_vs_fp32"):
                threads = key.rsplit("_", 1)[-1].removesuffix("t")
                rows.append(
                    [
                        f"{model['int8_name']} / {model['name']} speed, batch 1, "
                        f"{threads} thread(s)",
                        f"{value:.2f}x",
                    ]
                )
            else:
                precision = key.rsplit("_", 1)[-1].upper()
                rows.append(
                    [
                        f"{model['name']}: `mammo-edge predict` at the CLI defaults "
                        f"({precision}) / model alone "
                        f"(batch {value['batch']}, {value['threads']} threads, "
                        f"{value['model_alone_images_per_s']:.1f} images/s)",
                        f"{100 * value['with_startup']:.0f}% with start-up, "
                        f"{100 * value['marginal']:.0f}% marginal",
                    ]
                )
    if not rows:
        return ["(none measured: no INT8 twin, or --batches without the CLI's batch size)"]
    return _table(["ratio", "value"], rows)


def _model_label(model: dict) -> str:
    twin = f" + {model['int8_name']}" if model.get("int8") else ""
    return f"{model['name']}{twin}{' (default)' if model.get('default') else ''}"


def _summary_lines(models: list[dict]) -> list[str]:
    lines = [
        "Model alone (onnxruntime on CPU, best thread count; Keras `model(x)` on all cores; "
        "GFLOP counted from the ONNX graph; % peak: best FP32 row at batch ≥ 8 against the "
        "GEMM peak at its thread count):",
        "",
    ]
    lines += _table(
        [
            "model",
            "input",
            "outputs",
            "GFLOP/image",
            "FP32 batch-1 ms",
            "INT8 batch-1 ms",
            "Keras batch-1 ms",
            "FP32 images/s (8 / 32)",
            "INT8 images/s (8 / 32)",
            "FP32 % GEMM peak",
        ],
        [
            [
                model["name"],
                "x".join(str(d) for d in model["image_size"]),
                ", ".join(model["outputs"]),
                f"{s['gflop_per_image']:.3f}",
                _number(s["fp32_batch1_ms"], ""),
                _number(s["int8_batch1_ms"], ""),
                _number(s["keras_batch1_ms"], ""),
                _pair(s["fp32_batch8_images_per_s"], s["fp32_batch32_images_per_s"]),
                _pair(s["int8_batch8_images_per_s"], s["int8_batch32_images_per_s"]),
                _percent(s["fp32_peak_fraction"]),
            ]
            for model in models
            for s in [model["summary"]]
        ],
    )
    if not any(model.get("end_to_end") for model in models):
        return lines
    lines += [
        "",
        "As a user runs it (`mammo-edge predict` at the CLI defaults on real 1024x1024 PGMs, "
        "a fresh process each, start-up included; marginal = steady state):",
        "",
    ]
    lines += _table(
        [
            "model",
            "FP32 images/s (marginal)",
            "INT8 images/s (marginal)",
            "cold start FP32 / INT8 s",
            "peak RSS FP32 / INT8 MB",
            "INT8 ΔAUC",
        ],
        [
            [
                model["name"],
                _with_marginal(s.get("fp32_e2e_images_per_s"), s.get("fp32_e2e_marginal")),
                _with_marginal(s.get("int8_e2e_images_per_s"), s.get("int8_e2e_marginal")),
                _pair(s.get("fp32_cold_start_s"), s.get("int8_cold_start_s"), digits=3),
                _pair(s.get("fp32_peak_rss_mb"), s.get("int8_peak_rss_mb")),
                "—" if s.get("int8_delta_auc") is None else f"{s['int8_delta_auc']:+.4f}",
            ]
            for model in models
            for s in [model["summary"]]
        ],
    )
    return lines


def _model_lines(model: dict, results: dict) -> list[str]:
    flops = model["flops"]
    lines = [
        f"- ONNX: `{model['fp32']}`" + (f", INT8 `{model['int8']}`" if model.get("int8") else ""),
        f"- Keras source: `{model['keras']}`"
        if model.get("keras")
        else f"- Keras: {model.get('keras_absent_reason')}",
        f"- Input {'x'.join(str(d) for d in model['image_size'])}, outputs "
        f"{', '.join(model['outputs'])} (timed as shipped: every output computed)",
    ]
    others = model.get("other_processes")
    if others:
        lines.append(
            f"- Other processes while this model was measured: {others['foreign_cpu_s']} CPU s "
            f"in {others['wall_s']} s ({_percent(others['foreign_share'])} of all cores' time)"
        )
    if model.get("random_weights"):
        lines.append("- **RANDOM weights**: speed only")
    flop_line = (
        "- Dense FLOPs per image (ONNX graph): "
        f"{flops['fp32_onnx_dense_flops_per_image'] / 1e9:.4f} GFLOP"
        f" in {flops.get('fp32_dense_nodes', '?')} Conv/MatMul/Gemm nodes"
    )
    if "keras_layer_flops_per_image" in flops:
        flop_line += f"; Keras layers: {flops['keras_layer_flops_per_image'] / 1e9:.4f} GFLOP"
    if "int8_onnx_dense_flops_per_image" in flops:
        flop_line += f"; INT8 graph: {flops['int8_onnx_dense_flops_per_image'] / 1e9:.4f} GFLOP"
    flop_line += (
        "; elementwise/pooling ops (not counted): "
        f"{flops['fp32_onnx_other_ops_per_image'] / 1e6:.2f} M."
    )
    lines.append(flop_line)
    if "keras_vs_fp32_max_abs_difference" in model:
        lines.append(
            "- Keras vs onnxruntime FP32, probability on 4 random inputs: max |Δ| "
            f"{model['keras_vs_fp32_max_abs_difference']:.2e}"
        )
    lines += [
        "",
        "GFLOP/s = dense FLOPs per image x images/s; % GEMM peak compares it with the numpy "
        "float32 GEMM peak at the same thread count (Keras: all cores). INT8 rows count the "
        "same FLOPs on int8 kernels, so their share may pass 100%.",
        "",
    ]
    lines += _table(
        [
            "engine",
            "provider",
            "threads",
            "batch",
            "median ms",
            "p95 ms",
            "p99 ms",
            "images/s",
            "GFLOP/s",
            "% GEMM peak",
            "runs",
        ],
        [_inference_cells(row) for row in model["inference"]],
    )
    choices = [(engine, c) for engine, c in model["choice"].items() if c]
    if choices:
        lines += ["", "Chosen thread count and batch size:", ""]
        lines += _table(
            [
                "engine",
                "fastest (threads, batch)",
                "images/s",
                "batch-1 fastest threads",
                "batch-1 ms",
            ],
            [
                [
                    engine,
                    f"{c['throughput_threads']}, {c['throughput_batch']}",
                    f"{c['images_per_s']:.1f}",
                    str(c["latency_threads"]),
                    _number(c["latency_ms"], ""),
                ]
                for engine, c in choices
            ],
        )
    lines += ["", "End to end (`mammo-edge predict`, 1024x1024 PGM):", ""]
    lines += _end_to_end_lines(model.get("end_to_end"), results.get("images_origin"))
    accuracy = model.get("int8_accuracy")
    if model.get("int8"):
        lines += [""]
        if accuracy:
            lines.append(
                f"INT8 against FP32, {accuracy['images']} MIAS images: AUC FP32 "
                f"{accuracy['auc_fp32']:.4f}, INT8 {accuracy['auc_int8']:.4f}, ΔAUC "
                f"{accuracy['delta_auc']:+.4f} (limit ±{accuracy['auc_tolerance']}), "
                f"max |Δp| {accuracy['max_abs_difference']:.4f}."
            )
        else:
            lines.append("INT8 against FP32: not measured (--quick, or no MIAS archive).")
    return lines


def _end_to_end_lines(e2e: dict | None, origin: str | None) -> list[str]:
    if not e2e:
        return ["Not run (--skip-e2e)."]
    lines = [f"Images: {origin}.", ""]
    lines += _table(
        [
            "run",
            "images",
            "wall s",
            "images/s (with start-up)",
            "images/s (marginal)",
            "peak RSS MB",
            "status",
        ],
        [
            [
                run["label"] + (f" `{' '.join(run['arguments'])}`" if run["arguments"] else ""),
                str(run["images"]),
                _number(run["wall_s"], ""),
                _number(run["images_per_s_with_startup"], ""),
                _number(run["images_per_s_marginal"], ""),
                _number(run["peak_rss_mb"], ""),
                run["status"],
            ]
            for run in e2e["cli"]
        ],
    )
    lines += [""]
    lines += _table(
        ["cold start (one image, fresh process)", "median s", "runs", "peak RSS MB", "status"],
        [
            [
                f"{precision}: `{' '.join(['mammo-edge predict', *cold['arguments'], 'one.pgm'])}`",
                _number(cold["predict_one_image_s"], ""),
                str(cold["runs"]),
                _number(cold["peak_rss_mb"], ""),
                cold["status"],
            ]
            for precision, cold in e2e["cold_start"].items()
        ],
    )
    split = e2e.get("stage_split") or {}
    if split:
        lines += [""]
        lines += _table(
            [
                "in-process stage, ms/image",
                "decode",
                "preprocess",
                "inference",
                "total",
                "implied images/s",
            ],
            [
                [
                    f"{name} (batch {s['batch']}, {s['threads']} threads, {s['images']} images)",
                    f"{s['decode_ms']:.2f}",
                    f"{s['resize_ms']:.2f}",
                    f"{s['inference_ms']:.2f}",
                    f"{s['total_ms']:.2f}",
                    f"{1000 / s['total_ms']:.0f}",
                ]
                for name, s in split.items()
            ],
        )
    return lines


def _inference_cells(row: dict) -> list[str]:
    threads = "default" if row["threads"] is None else str(row["threads"])
    if row["status"] != "ok":
        return [row["engine"], row["provider"], threads, str(row["batch"]), row["status"]] + [
            ""
        ] * 6
    fraction = row["peak_fraction"]
    return [
        row["engine"],
        row["provider"],
        threads,
        str(row["batch"]),
        f"{row['median_ms']:.2f}",
        f"{row['p95_ms']:.2f}",
        f"{row['p99_ms']:.2f}",
        f"{row['images_per_s']:.1f}",
        f"{row['gflops_per_s']:.1f}",
        _percent(fraction),
        str(row["runs"]),
    ]


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    def clean(cell: str) -> str:
        return str(cell).replace("|", "\\|").replace("\n", " ")

    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(clean(c) for c in row) + " |" for row in rows]
    return lines


def _number(value, unit: str) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    text = f"{value:.4g}" if abs(value) < 10 else f"{value:.1f}"
    return f"{text} {unit}".strip()


def _percent(fraction: float | None) -> str:
    return "—" if fraction is None else f"{fraction * 100:.0f}%"


def _pair(first: float | None, second: float | None, digits: int | None = None) -> str:
    def cell(value):
        if value is None:
            return "—"
        return f"{value:.{digits}f}" if digits is not None else _number(value, "")

    return f"{cell(first)} / {cell(second)}"


def _with_marginal(rate: float | None, marginal: float | None) -> str:
    if rate is None:
        return "—"
    return f"{rate:.1f}" + (f" ({marginal:.0f})" if marginal else "")


def write_plot(results: dict, path: Path) -> None:
    """Per model: images/s against batch size (log scale) for each engine at its best
    thread count, and achieved GFLOP/s against the GEMM peak."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, (left, right) = plt.subplots(1, 2, figsize=(13, 5))
    series: dict[str, dict[int, tuple[float, float]]] = {}
    for model in results["models"]:
        for row in model["inference"]:
            if row["status"] != "ok":
                continue
            engine = row["engine"].replace("onnxruntime ", "ORT ")
            label = f"{model['name']}: {engine}"
            if row["provider"].startswith("CUDA"):
                label += " (CUDA)"
            best = series.setdefault(label, {})
            previous = best.get(row["batch"])
            if previous is None or row["images_per_s"] > previous[0]:
                best[row["batch"]] = (row["images_per_s"], row["gflops_per_s"])
    for label, points in sorted(series.items()):
        batches = sorted(points)
        style = "--" if "keras" in label else "-"
        left.plot(batches, [points[b][0] for b in batches], style, marker="o", label=label)
        right.plot(batches, [points[b][1] for b in batches], style, marker="o", label=label)
    for peak in results["gemm_peak"]:
        right.axhline(peak["gflops_per_s"], linestyle=":", color="gray")
        right.annotate(
            f"numpy GEMM peak, {peak['threads']} thread(s)",
            (1, peak["gflops_per_s"]),
            fontsize=7,
            va="bottom",
        )
    for axis, title, unit in (
        (left, "Throughput (best thread count)", "images/s"),
        (right, "Achieved dense GFLOP/s", "GFLOP/s"),
    ):
        axis.set_xscale("log", base=2)
        axis.set_yscale("log")
        axis.set_xlabel("batch size")
        axis.set_ylabel(unit)
        axis.set_title(title)
        axis.grid(True, which="both", alpha=0.3)
    left.legend(fontsize=6, ncol=2)
    figure.suptitle(
        f"mammo-edge on {results['machine']['cpu']} ({results['mode']} run)", fontsize=10
    )
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
