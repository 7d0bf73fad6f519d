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
    lines = [
        f"# mammo-edge benchmark ({results['mode']})",
        "",
        f"- CPU: {machine['cpu']} ({machine['logical_cores']} logical cores; "
        f"{', '.join(machine['cpu_features']) or 'no SIMD flags read'})",
        f"- Command: `{results['command']}`; {results['created']}; "
        f"took {results.get('elapsed_s', '?')} s",
        f"- Versions: {', '.join(f'{k} {v}' for k, v in machine['versions'].items())}",
        f"- Models: {results['models']['origin']}",
    ]
    for note in results["models"].get("notes", []):
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
    lines += [
        "",
        "## Model inference (warm-up excluded)",
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
        [_inference_cells(row) for row in results["inference"]],
    )
    lines += ["", "## The machine's limit", ""]
    flops = results["flops"]
    lines.append(
        "Dense FLOPs per image (ONNX graph): "
        f"{flops['fp32_onnx_dense_flops_per_image'] / 1e9:.4f} GFLOP"
        + (
            f"; Keras layers: {flops['keras_layer_flops_per_image'] / 1e9:.4f} GFLOP"
            if "keras_layer_flops_per_image" in flops
            else ""
        )
        + (
            f"; INT8 graph: {flops['int8_onnx_dense_flops_per_image'] / 1e9:.4f} GFLOP"
            if "int8_onnx_dense_flops_per_image" in flops
            else ""
        )
        + "; elementwise/pooling ops (not counted): "
        f"{flops['fp32_onnx_other_ops_per_image'] / 1e6:.2f} M."
    )
    lines.append("")
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
    lines += ["", "## Chosen thread count and batch size", ""]
    lines += _table(
        ["engine", "fastest (threads, batch)", "images/s", "batch-1 fastest threads", "batch-1 ms"],
        [
            [
                engine,
                f"{c['throughput_threads']}, {c['throughput_batch']}",
                f"{c['images_per_s']:.1f}",
                str(c["latency_threads"]),
                _number(c["latency_ms"], ""),
            ]
            for engine, c in results["choice"].items()
            if c
        ],
    )
    lines += ["", "## End to end (`mammo-edge predict`, 1024x1024 PGM)", ""]
    lines += _end_to_end_lines(results.get("end_to_end"))
    accuracy = results.get("int8_accuracy")
    lines += ["", "## INT8 accuracy against FP32", ""]
    if accuracy:
        lines.append(
            f"{accuracy['images']} MIAS images: AUC FP32 {accuracy['auc_fp32']:.4f}, INT8 "
            f"{accuracy['auc_int8']:.4f}, ΔAUC {accuracy['delta_auc']:+.4f} (limit ±"
            f"{accuracy['auc_tolerance']}), max |Δp| {accuracy['max_abs_difference']:.4f}."
        )
    else:
        lines.append("Not measured (no INT8 model, or no MIAS archive).")
    return "\n".join(lines) + "\n"


def _end_to_end_lines(e2e: dict | None) -> list[str]:
    if not e2e:
        return ["Not run (--skip-e2e)."]
    lines = [f"Images: {e2e['images_origin']}.", ""]
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
    cold = e2e["cold_start"]
    lines += [""]
    lines += _table(
        ["cold start", "seconds"],
        [
            ["predict one image (fresh process)", _number(cold["predict_one_image_s"], "")],
            ["of which: python start-up", _number(cold["python_startup_s"], "")],
            ["import onnxruntime", _number(cold["import_onnxruntime_s"], "")],
            ["import mammo_edge", _number(cold["import_mammo_edge_s"], "")],
            ["import mammo_edge.cli", _number(cold["import_mammo_edge_cli_s"], "")],
            ["peak RSS of that process (MB)", _number(cold["peak_rss_mb"], "")],
        ],
    )
    split = e2e.get("stage_split") or {}
    if split:
        lines += [""]
        lines += _table(
            [
                "in-process stage, ms/image",
                "decode",
                "resize",
                "inference",
                "total",
                "implied images/s",
            ],
            [
                [
                    f"{name} (batch {s['batch']}, {s['threads']} threads)",
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
        return [
            row["engine"],
            row["provider"],
            threads,
            str(row["batch"]),
            row["status"],
            "",
            "",
            "",
            "",
            "",
            "",
        ]
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
        "" if fraction is None else f"{fraction * 100:.0f}%",
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


def write_plot(results: dict, path: Path) -> None:
    """Images/s against batch size per engine (log scale), and achieved GFLOP/s vs the peak."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, (left, right) = plt.subplots(1, 2, figsize=(12, 4.5))
    series: dict[str, list[tuple[int, float, float]]] = {}
    for row in results["inference"]:
        if row["status"] != "ok":
            continue
        threads = "default" if row["threads"] is None else f"{row['threads']}t"
        label = f"{row['engine']} ({row['provider'].replace('ExecutionProvider', '')}, {threads})"
        series.setdefault(label, []).append(
            (row["batch"], row["images_per_s"], row["gflops_per_s"])
        )
    for label, points in sorted(series.items()):
        points.sort()
        batches = [p[0] for p in points]
        left.plot(batches, [p[1] for p in points], marker="o", label=label)
        right.plot(batches, [p[2] for p in points], marker="o", label=label)
    for peak in results["gemm_peak"]:
        right.axhline(peak["gflops_per_s"], linestyle="--", color="gray")
        right.annotate(
            f"numpy GEMM peak, {peak['threads']} thread(s)",
            (1, peak["gflops_per_s"]),
            fontsize=7,
            va="bottom",
        )
    for axis, title, unit in (
        (left, "Throughput", "images/s"),
        (right, "Achieved dense GFLOP/s", "GFLOP/s"),
    ):
        axis.set_xscale("log", base=2)
        axis.set_yscale("log")
        axis.set_xlabel("batch size")
        axis.set_ylabel(unit)
        axis.set_title(title)
        axis.grid(True, which="both", alpha=0.3)
    left.legend(fontsize=7)
    figure.suptitle(
        f"mammo-edge on {results['machine']['cpu']} ({results['mode']} run)", fontsize=10
    )
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
