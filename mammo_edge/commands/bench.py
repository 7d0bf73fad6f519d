"""``mammo-edge bench``: how fast this workstation scores, model alone and end to end.

A thin verb over :mod:`mammo_edge.bench`: choose the models and devices, run, print the
table (or ``--json``), write ``--csv``. What each figure means: docs/benchmarks.md.
"""

from __future__ import annotations

import contextlib
import json
import sys
from enum import Enum
from pathlib import Path
from typing import Annotated

import typer

from mammo_edge.commands.common import EXIT_OK, progress_bar


class BenchDevice(str, Enum):
    cpu = "cpu"
    cuda = "cuda"
    tensorrt = "tensorrt"


def bench_command(
    folder: Annotated[
        Path | None,
        typer.Argument(
            help="Your own images to time end to end (a folder, read as predict reads it). "
            "Default: a built-in set of synthetic 1024x1024 PGMs.",
            show_default=False,
        ),
    ] = None,
    model: Annotated[
        list[str] | None,
        typer.Option(
            "--model",
            "-m",
            help="Model to measure (installed name, folder or .onnx file); repeatable. "
            "Default: the default model and its INT8 twin.",
            show_default=False,
        ),
    ] = None,
    every_model: Annotated[
        bool, typer.Option("--all", help="Measure every shipped model.")
    ] = False,
    device: Annotated[
        list[BenchDevice] | None,
        typer.Option(
            help="Device to measure on; repeatable. Default: every device onnxruntime "
            "offers here (cpu; cuda and tensorrt where present).",
            show_default=False,
        ),
    ] = None,
    rounds: Annotated[
        int, typer.Option(min=1, help="Interleaved rounds; each figure is their median.")
    ] = 3,
    images: Annotated[
        int,
        typer.Option(min=1, help="Images in the built-in set, or at most this many of FOLDER."),
    ] = 48,
    as_json: Annotated[
        bool, typer.Option("--json", help='Print one JSON object {"machine": ..., "rows": ...}.')
    ] = False,
    csv_file: Annotated[
        Path | None,
        typer.Option("--csv", help="Also write the rows to this CSV file.", dir_okay=False),
    ] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress on stderr.")] = False,
) -> int:
    """Time the models: model alone and end to end, peak memory, cold start, studies/hour.

    Exit code 0 when measured, 1 when a model or device cannot be used.
    """
    from mammo_edge.bench import (
        BenchSettings,
        all_models,
        default_devices,
        default_models,
        run_bench,
    )
    from mammo_edge.bench.report import as_json as json_object
    from mammo_edge.bench.report import as_table, write_csv
    from mammo_edge.bench.run import check_devices

    if folder is not None and not folder.is_dir():
        raise typer.BadParameter(f"{folder} is not a folder", param_hint="FOLDER")
    if every_model and model:
        raise typer.BadParameter("give --model or --all, not both", param_hint="--all")
    devices = [choice.value for choice in device] if device else default_devices()
    check_devices(devices)  # before any model loads: a missing provider fails at once
    models = list(model) if model else all_models() if every_model else default_models()
    settings = BenchSettings(rounds=rounds, images=images, folder=folder)
    steps = len(models) * len(devices) * (rounds + 3)
    with _progress(steps, quiet) as say:
        report = run_bench(models, devices, settings, say)
    if csv_file is not None:
        write_csv(report, csv_file)
    if as_json:
        typer.echo(json.dumps(json_object(report), indent=2))
    else:
        typer.echo(as_table(report))
    return EXIT_OK


@contextlib.contextmanager
def _progress(steps: int, quiet: bool):
    """Yields ``say(step)``: a progress bar on a terminal's stderr, else one line per step
    on stderr (nothing with ``--quiet``)."""
    with progress_bar(steps, "bench", quiet=quiet) as bar:

        def say(step: str) -> None:
            if bar is not None:
                bar.label = step
                bar.update(1)
            elif not quiet:
                typer.echo(f"bench: {step}", err=True)
                sys.stderr.flush()

        yield say
