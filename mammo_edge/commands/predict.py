"""``mammo-edge predict``: score image files, folders, globs or path lists."""

from __future__ import annotations

import contextlib
import sys
from enum import Enum
from pathlib import Path
from typing import Annotated

import typer

from .common import (
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_PIPE_CLOSED,
    EXIT_SOME_FAILED,
    EXIT_TERMINATED,
    Terminated,
    discard_stdout,
    progress_bar,
    sigterm_as_exception,
    silence_opencv_warnings,
)
from .options import (
    BatchSizeOption,
    Device,
    DeviceOption,
    FromListOption,
    GroupBy,
    GroupByOption,
    ModelOption,
    OperatingPointOption,
    ThreadsOption,
    ThresholdOption,
    input_arguments,
)


class Engine(str, Enum):
    local = "local"
    ray = "ray"


class OutputFormat(str, Enum):
    table = "table"
    json = "json"
    jsonl = "jsonl"
    csv = "csv"


def predict_command(
    paths: Annotated[
        list[str] | None,
        typer.Argument(
            help="Image files, folders (searched recursively), glob patterns, or list files "
            "marked with @ (@paths.txt) holding one path per line.",
            show_default=False,
        ),
    ] = None,
    from_list: FromListOption = None,
    model: ModelOption = None,
    threshold: ThresholdOption = None,
    operating_point: OperatingPointOption = None,
    group_by: GroupByOption = GroupBy.auto,
    batch_size: BatchSizeOption = None,
    threads: ThreadsOption = None,
    workers: Annotated[
        int | None,
        typer.Option(min=1, help="Threads decoding images ahead of inference. Default: up to 4."),
    ] = None,
    device: DeviceOption = Device.auto,
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
    resume: Annotated[
        bool,
        typer.Option(
            "--resume",
            help="Continue an interrupted run: inputs already recorded in the --output file "
            "(jsonl or csv) are skipped and new records appended; a half-written last line "
            "is repaired.",
        ),
    ] = False,
    force: Annotated[
        bool,
        typer.Option(
            "--force",
            help="With --resume: accept a file whose records came from another model or threshold.",
        ),
    ] = False,
    engine: Annotated[
        Engine,
        typer.Option(
            help="local: this process. ray: Ray Data over a local Ray instance or a cluster "
            "(needs the ray extra).",
        ),
    ] = Engine.local,
    address: Annotated[
        str | None,
        typer.Option(
            help="With --engine ray: the Ray cluster to join (e.g. auto, ray://host:10001). "
            "Default: start a local Ray instance.",
        ),
    ] = None,
    num_cpus: Annotated[
        int | None,
        typer.Option(
            "--num-cpus",
            min=1,
            help="With --engine ray and no --address: CPUs of the local Ray instance. "
            "Default: all cores.",
        ),
    ] = None,
) -> int:
    """Score mammograms; one result per input, errors included.

    Exit code 0 when every input scored, 2 when some failed (the others are still
    scored and written), 1 for usage or model errors, 130 after Ctrl-C, 143 after
    SIGTERM (results so far kept, json closed), 141 when the output was closed (| head).
    """
    from ..outputs import exclusive_output

    locked = exclusive_output(output) if output is not None else contextlib.nullcontext()
    with sigterm_as_exception(), locked:
        try:
            return _predict(
                paths=input_arguments(paths, from_list),
                model=model,
                threshold=threshold,
                operating_point=operating_point,
                group_by=group_by.value,
                batch_size=batch_size,
                threads=threads,
                workers=workers,
                device=device.value,
                output_format=output_format.value,
                output=output,
                quiet=quiet,
                resume=resume,
                force=force,
                engine=engine.value,
                address=address,
                num_cpus=num_cpus,
            )
        except Terminated:
            typer.echo("mammo-edge: terminated (SIGTERM) before scoring began", err=True)
            raise typer.Exit(EXIT_TERMINATED) from None
        except BrokenPipeError:
            discard_stdout()
            raise typer.Exit(EXIT_PIPE_CLOSED) from None


def _predict(
    *,
    paths: list[str],
    model: str | None,
    threshold: float | None,
    operating_point: str | None,
    group_by: str,
    batch_size: int | None,
    threads: int | None,
    workers: int | None,
    device: str,
    output_format: str,
    output: Path | None,
    quiet: bool,
    resume: bool,
    force: bool,
    engine: str,
    address: str | None,
    num_cpus: int | None,
) -> int:
    from ..inputs import expand_inputs
    from ..predictor import Predictor

    silence_opencv_warnings()
    if engine != Engine.ray.value and (address is not None or num_cpus is not None):
        raise typer.BadParameter(
            "--address and --num-cpus need --engine ray", param_hint="--engine"
        )
    if address is not None and num_cpus is not None:
        raise typer.BadParameter(
            "--num-cpus sizes a local Ray instance; a cluster (--address) has its own",
            param_hint="--num-cpus",
        )
    if resume and output is None:
        raise typer.BadParameter(
            "--resume needs --output FILE (jsonl or csv)", param_hint="--resume"
        )
    if force and not resume:
        raise typer.BadParameter("--force only applies with --resume", param_hint="--force")
    if resume and output_format not in ("jsonl", "csv"):
        raise typer.BadParameter(
            f"--resume works with --format jsonl or csv (one record per line); a "
            f"{output_format} file cannot be continued",
            param_hint="--format",
        )
    if engine == Engine.ray.value:
        from ..engines.ray_engine import require_ray

        try:
            require_ray()
        except ImportError as error:
            raise typer.BadParameter(str(error), param_hint="--engine") from None

    inputs = expand_inputs(paths)
    if not inputs:
        raise typer.BadParameter(f"no image files found in {', '.join(paths)}", param_hint="PATHS")
    if output is not None:
        from ..outputs import refuse_input_overlap

        refuse_input_overlap([output], inputs)  # before the output is opened or truncated
    predictor = Predictor(
        model,
        device=device,
        threads=threads,
        threshold=threshold,
        operating_point=operating_point,
        group_by=group_by,
        batch_size=batch_size,
        workers=workers,
    )
    total = len(inputs)
    already_failed = 0
    append = False
    if resume:
        assert output is not None
        state = _resume_state(output, output_format, predictor, force)
        append = not state.empty
        todo = [path for path in inputs if path not in state.done]
        already_failed = sum(path in state.failed for path in inputs)
        if not quiet:
            note = (
                f"; cut a half-written last record ({state.repaired_bytes} bytes)"
                if state.repaired_bytes
                else ""
            )
            typer.echo(
                f"resuming {output}: {total - len(todo)} of {total} input(s) already recorded"
                f"{note}",
                err=True,
            )
        inputs = todo
    if not quiet:
        typer.echo(
            f"model {predictor.model_name} {predictor.model_version} "
            f"(sha256 {predictor.model_sha256[:12]}, "
            f"{'verified' if predictor.sha256_verified else 'unverified'}) "
            f"on {predictor.provider}, threshold {predictor.threshold:g} "
            f"({predictor.operating_point}); "
            f"{len(inputs)} input(s){' on Ray' if engine == Engine.ray.value else ''}",
            err=True,
        )
    ray_engine = None
    if engine == Engine.ray.value and inputs:
        from ..engines.ray_engine import RayEngine

        ray_engine = RayEngine(predictor, address=address, num_cpus=num_cpus)
        ray_engine.start()  # an unreachable cluster fails here, before any output is written
    try:
        return _score_and_write(
            predictor,
            inputs,
            ray_engine=ray_engine,
            output=output,
            output_format=output_format,
            append=append,
            quiet=quiet,
            resume=resume,
            total=total,
            already_failed=already_failed,
        )
    finally:
        if ray_engine is not None:
            ray_engine.stop()


def _score_and_write(
    predictor,
    inputs: list[str],
    *,
    ray_engine,
    output: Path | None,
    output_format: str,
    append: bool,
    quiet: bool,
    resume: bool,
    total: int,
    already_failed: int,
) -> int:
    """Score ``inputs`` with the local engine or ``ray_engine``; write and summarise."""
    from ..errors import ModelError
    from ..writers import open_writer

    failed = abnormal = 0
    with _open_output(output, output_format, append) as stream:
        writer = open_writer(
            output_format,
            stream,
            path_width=max((len(path) for path in inputs), default=4),
            append=append,
        )
        progress = progress_bar(len(inputs), "scoring", quiet=quiet, results=stream)
        written = 0
        stopped_with = None
        try:
            if ray_engine is not None:
                results = ray_engine.iter_predict(inputs)
            else:
                results = predictor.iter_predict(inputs)
            with progress as bar:
                for result in results:
                    writer.write(result)
                    written += 1
                    failed += not result.ok
                    abnormal += result.label == predictor.metadata.class_names[1]
                    if bar is not None:
                        bar.update(1)
        except (KeyboardInterrupt, Terminated) as stop:
            stopped_with = stop
        except ModelError:  # e.g. a Ray actor refused the model: keep the file well-formed
            writer.close()
            raise
        writer.close()  # inside the with: a whole-file output is renamed into place after it
    if stopped_with is not None:
        where = f" in {output}" if output else ""
        how = (
            "interrupted" if isinstance(stopped_with, KeyboardInterrupt) else "terminated (SIGTERM)"
        )
        typer.echo(
            f"mammo-edge: {how}; {written} of {len(inputs)} result(s) written{where}"
            + ("; continue with --resume" if output_format in ("jsonl", "csv") and output else ""),
            err=True,
        )
        code = EXIT_INTERRUPTED if isinstance(stopped_with, KeyboardInterrupt) else EXIT_TERMINATED
        raise typer.Exit(code)
    failed += already_failed
    if not quiet:
        scored = total - failed
        summary = f"scored {scored} of {total} input(s): {abnormal} abnormal"
        if resume:
            summary = (
                f"{written} new record(s) in {output}; scored {scored} of {total} input(s) "
                f"in all: {abnormal} abnormal among the new"
            )
        if failed:
            summary += f"; {failed} failed (see error_code and error_message)"
        if output is not None and not resume:
            summary += f"; results in {output}"
        typer.echo(summary, err=True)
    raise typer.Exit(EXIT_SOME_FAILED if failed else EXIT_OK)


def _resume_state(output: Path, output_format: str, predictor, force: bool):
    from ..resume import ResumeError, prepare_resume

    try:
        return prepare_resume(
            output,
            output_format,
            model_sha256=predictor.model_sha256,
            threshold=predictor.threshold,
            force=force,
        )
    except ResumeError as error:
        raise typer.BadParameter(str(error), param_hint="--resume") from None


#: Formats written to the ``--output`` file as they come (each line whole; ``--resume``
#: repairs a half-written last one). The others are whole files: written beside the target
#: and renamed over it at the end, so a crash never leaves a torn file.
STREAMED_FORMATS = ("jsonl",)


@contextlib.contextmanager
def _open_output(output: Path | None, output_format: str, append: bool = False):
    """Standard output, or the file named by ``--output`` (UTF-8, BOM for CSV).

    ``append`` continues the file (``--resume``); the CSV byte-order mark is written only
    at the start of a file, never in the middle. A new json, csv or table file goes to a
    temporary file renamed over ``output`` when the block ends
    (:func:`mammo_edge.outputs.atomic_file`).
    """
    from ..outputs import atomic_file

    if output is None:
        yield sys.stdout
        return
    encoding = "utf-8-sig" if output_format == "csv" else "utf-8"
    newline = "" if output_format == "csv" else None
    stack = contextlib.ExitStack()
    try:
        if append or output_format in STREAMED_FORMATS:
            handle = stack.enter_context(
                output.open("a" if append else "w", encoding=encoding, newline=newline)
            )
        else:
            handle = stack.enter_context(atomic_file(output, encoding=encoding, newline=newline))
    except OSError as error:
        raise typer.BadParameter(
            f"cannot write results to {output}: {error.strerror}", param_hint="--output"
        ) from error
    with stack:
        yield handle
