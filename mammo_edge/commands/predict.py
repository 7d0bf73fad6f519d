"""``mammo-edge predict``: score image files, folders, globs or path lists."""

from __future__ import annotations

import contextlib
import sys
from enum import Enum
from pathlib import Path
from typing import Annotated, TextIO

import typer


class Device(str, Enum):
    auto = "auto"
    cpu = "cpu"
    cuda = "cuda"


class OutputFormat(str, Enum):
    table = "table"
    json = "json"
    jsonl = "jsonl"
    csv = "csv"


def predict_command(
    paths: Annotated[
        list[str],
        typer.Argument(
            help="Image files, folders (searched recursively), glob patterns, or list files "
            "(@paths.txt, or any .txt/.lst file) with one path per line.",
            show_default=False,
        ),
    ],
    model: Annotated[
        str | None,
        typer.Option(
            "--model",
            "-m",
            help="Installed model name (fp32, int8), model folder, or .onnx file. "
            "Default: $MAMMO_EDGE_MODEL, else the shipped model.",
        ),
    ] = None,
    threshold: Annotated[
        float | None,
        typer.Option(
            min=0.0,
            max=1.0,
            help="Decision threshold for 'abnormal' (probability >= threshold). "
            "Default: the model's own threshold.",
        ),
    ] = None,
    batch_size: Annotated[int, typer.Option(min=1, help="Images per inference call.")] = 16,
    threads: Annotated[
        int | None,
        typer.Option(min=1, help="onnxruntime intra-op threads. Default: one per core."),
    ] = None,
    workers: Annotated[
        int | None,
        typer.Option(min=1, help="Threads decoding images ahead of inference. Default: up to 4."),
    ] = None,
    device: Annotated[
        Device, typer.Option(help="auto takes CUDA when onnxruntime offers it.")
    ] = Device.auto,
    output_format: Annotated[
        OutputFormat,
        typer.Option(
            "--format",
            "-f",
            help="table for people; jsonl or csv stream one record per line.",
        ),
    ] = OutputFormat.table,
    output: Annotated[
        Path | None,
        typer.Option(
            "--output",
            "-o",
            help="Write results to this file instead of standard output (csv is written "
            "with a UTF-8 byte-order mark so spreadsheets read it correctly).",
            dir_okay=False,
        ),
    ] = None,
    quiet: Annotated[
        bool, typer.Option("--quiet", "-q", help="No progress bar, header or summary.")
    ] = False,
) -> int:
    """Score mammograms; one result per input, errors included.

    Exit code 0 when every input scored, 2 when some failed (the others are still
    scored and written), 1 for usage or model errors.
    """
    from ..inputs import expand_inputs
    from ..predictor import Predictor
    from ..writers import open_writer

    _silence_opencv_warnings()

    inputs = expand_inputs(paths)
    if not inputs:
        raise typer.BadParameter(f"no image files found in {', '.join(paths)}", param_hint="PATHS")
    predictor = Predictor(
        model,
        device=device.value,
        threads=threads,
        threshold=threshold,
        batch_size=batch_size,
        workers=workers,
    )
    if not quiet:
        typer.echo(
            f"model {predictor.model_name} {predictor.model_version} "
            f"(sha256 {predictor.model_sha256[:12]}, "
            f"{'verified' if predictor.sha256_verified else 'unverified'}) "
            f"on {predictor.provider}, threshold {predictor.threshold:g}; "
            f"{len(inputs)} input(s)",
            err=True,
        )
    failed = abnormal = 0
    with _open_output(output, output_format.value) as stream:
        writer = open_writer(
            output_format.value, stream, path_width=max(len(path) for path in inputs)
        )
        show_progress = (
            not quiet and len(inputs) > 1 and sys.stderr.isatty() and not _is_terminal(stream)
        )
        progress = (
            typer.progressbar(length=len(inputs), label="scoring", file=sys.stderr)
            if show_progress
            else contextlib.nullcontext()
        )
        written = 0
        try:
            with progress as bar:
                for result in predictor.iter_predict(inputs):
                    writer.write(result)
                    written += 1
                    failed += not result.ok
                    abnormal += result.label == predictor.metadata.class_names[1]
                    if bar is not None:
                        bar.update(1)
        except KeyboardInterrupt:
            writer.close()
            where = f" in {output}" if output else ""
            typer.echo(
                f"mammo-edge: interrupted; {written} of {len(inputs)} result(s) written{where}",
                err=True,
            )
            raise typer.Exit(130) from None
        writer.close()
    if not quiet:
        scored = len(inputs) - failed
        summary = f"scored {scored} of {len(inputs)} input(s): {abnormal} abnormal"
        if failed:
            summary += f"; {failed} failed (see error_code and error_message)"
        typer.echo(summary, err=True)
    raise typer.Exit(2 if failed else 0)


def _silence_opencv_warnings() -> None:
    """OpenCV logs decoder warnings to stderr; the result records already say what failed."""
    import cv2

    logging_module = getattr(getattr(cv2, "utils", None), "logging", None)
    if logging_module is not None:
        logging_module.setLogLevel(logging_module.LOG_LEVEL_ERROR)


def _is_terminal(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


@contextlib.contextmanager
def _open_output(output: Path | None, output_format: str):
    """Standard output, or the file named by ``--output`` (UTF-8, BOM for CSV)."""
    if output is None:
        yield sys.stdout
        return
    encoding = "utf-8-sig" if output_format == "csv" else "utf-8"
    try:
        handle = output.open("w", encoding=encoding, newline="" if output_format == "csv" else None)
    except OSError as error:
        raise typer.BadParameter(
            f"cannot write results to {output}: {error.strerror}", param_hint="--output"
        ) from error
    with handle:
        yield handle
