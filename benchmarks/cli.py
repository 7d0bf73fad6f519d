"""``python -m benchmarks``: measure latency, throughput and footprint; write the reports."""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

from .errors import BenchmarkError
from .run import Progress, RunOptions, run_benchmarks


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


def _name_list(text: str) -> tuple[str, ...]:
    values = tuple(part.strip() for part in text.split(",") if part.strip())
    if not values:
        raise argparse.ArgumentTypeError(f"expected comma-separated model names, got {text!r}")
    return values


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (its --help is the reference for the options)."""
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description="Latency, throughput and footprint of every shipped mammo-edge model "
        "against its Keras source and this machine's GEMM peak. Writes results.json, "
        "results.md and results.png.",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="the default model and the seed CNN only, fewer repeats, batches 1 and 8, "
        "24/48 images end to end, no INT8 accuracy (under two minutes on 2 cores)",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=Path("benchmarks/results"),
        help="folder for the reports (default: benchmarks/results)",
    )
    parser.add_argument(
        "--keras",
        action="append",
        default=[],
        metavar="[NAME=]PATH",
        help="Keras source of model NAME (a bare PATH: the default model's); repeatable. "
        "Default: the files each shipped model was exported from (benchmarks/sources.py); "
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
        "--models",
        type=_name_list,
        default=None,
        metavar="NAME,...",
        help="only these model families (a model and its NAME-int8 twin); default: every "
        "shipped model (--quick: the default model and seed)",
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
        help="batch sizes (default: 1,8,32; --quick: 1,8)",
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
        "--skip-accuracy",
        action="store_true",
        default=None,
        help="leave out INT8 against FP32 on the MIAS images (always left out with --quick)",
    )
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
        keras=tuple(arguments.keras),
        model=arguments.model,
        models=arguments.models,
        seed_cnn=arguments.seed_cnn,
        threads=arguments.threads,
        batches=arguments.batches,
        e2e_images=arguments.e2e_images,
        skip_keras=arguments.skip_keras,
        skip_e2e=arguments.skip_e2e,
        skip_accuracy=arguments.skip_accuracy,
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
