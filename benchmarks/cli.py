"""``python -m benchmarks``: measure latency, throughput and footprint; write the reports."""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

from .errors import BenchmarkError
from .run import Progress, RunOptions, run_benchmarks
from .sources import DEFAULT_KERAS


def _int_list(text: str) -> tuple[int, ...]:
    try:
        values = tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated integers, got {text!r}"
        ) from None
    if not values or any(value < 1 for value in values):
        raise argparse.ArgumentTypeError(f"expected positive integers, got {text!r}")
    return values


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (its --help is the reference for the options)."""
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description="Latency, throughput and footprint of mammo-edge against its Keras source "
        "and this machine's GEMM peak. Writes results.json, results.md and results.png.",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="fewer repeats, batches 1 and 32, "
        "24/48 images end to end (under two minutes on 2 cores)",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=Path("benchmarks/results"),
        help="folder for the reports (default: benchmarks/results)",
    )
    parser.add_argument(
        "--keras",
        type=Path,
        default=DEFAULT_KERAS,
        help="Keras source of the shipped model (default: reports/patient/model.keras); "
        "Keras rows say 'absent' when it is missing",
    )
    parser.add_argument(
        "--model",
        type=Path,
        default=None,
        help="ONNX file or model folder with manifest.json (default: the shipped "
        "mammo_edge/models; exported here from --keras when none is shipped)",
    )
    parser.add_argument(
        "--seed-cnn",
        action="store_true",
        help="measure the seed CNN architecture with random weights (speed only)",
    )
    parser.add_argument(
        "--threads",
        type=_int_list,
        default=(1, 2),
        help="intra-op thread counts to sweep, comma-separated (default: 1,2)",
    )
    parser.add_argument(
        "--batches",
        type=_int_list,
        default=None,
        help="batch sizes (default: 1,8,32,128; --quick: 1,32)",
    )
    parser.add_argument(
        "--e2e-images",
        type=int,
        default=None,
        help="images N in the end-to-end runs of N and 2N (default 128; --quick 24)",
    )
    parser.add_argument("--skip-keras", action="store_true", help="leave out the Keras rows")
    parser.add_argument("--skip-e2e", action="store_true", help="leave out mammo-edge predict runs")
    parser.add_argument(
        "--ray",
        action="store_true",
        help="also the Ray engine at 1 and 2 CPUs against the local engine, into OUT/ray "
        "(needs the ray extra; about 2 minutes, 1 with --quick)",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; returns the exit code (0 done, 1 could not run)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    arguments = build_parser().parse_args(argv)
    options = RunOptions(
        quick=arguments.quick,
        out=arguments.out,
        keras=arguments.keras,
        model=arguments.model,
        seed_cnn=arguments.seed_cnn,
        threads=arguments.threads,
        batches=arguments.batches,
        e2e_images=arguments.e2e_images,
        skip_keras=arguments.skip_keras,
        skip_e2e=arguments.skip_e2e,
        command=shlex.join(["python", "-m", "benchmarks", *argv]),
    )
    try:
        results = run_benchmarks(options, Progress())
    except BenchmarkError as error:
        print(f"benchmarks: error: {error}", file=sys.stderr)
        return 1
    from .report import write_reports

    paths = write_reports(results, arguments.out)
    print(paths["markdown"].read_text())
    print("wrote " + ", ".join(str(path) for path in paths.values()))
    if arguments.ray:
        from .ray_engine import main as ray_main

        ray_arguments = ["--out", str(arguments.out / "ray")]
        if arguments.quick:
            ray_arguments += ["--images", "32", "--repeats", "1"]
        if arguments.model is not None:
            ray_arguments += ["--model", str(arguments.model)]
        return ray_main(ray_arguments)
    return 0
