"""``mammo-edge predict``: score image files, folders, globs or path lists."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from pathlib import Path

import typer

from mammo_edge.commands.common import (
    EXIT_OK,
    EXIT_PIPE_CLOSED,
    EXIT_SOME_FAILED,
    EXIT_TERMINATED,
    Terminated,
    announce,
    create_engine,
    discard_stdout,
    engine_class,
    expand_or_fail,
    open_predictor,
    progress_bar,
    sigterm_as_exception,
    stop_reason,
)
from mammo_edge.commands.options import (
    AddressOption,
    BatchSizeOption,
    Device,
    DeviceOption,
    EngineOption,
    ForceOption,
    FromListOption,
    GroupBy,
    GroupByOption,
    ModelOption,
    NumCpusOption,
    OperatingPointOption,
    OutputFileOption,
    OutputFormat,
    OutputFormatOption,
    PathsArgument,
    QuietOption,
    ResumeOption,
    ThreadsOption,
    ThresholdOption,
    WorkersOption,
    check_predict_options,
    input_arguments,
)


def predict_command(
    paths: PathsArgument = None,
    from_list: FromListOption = None,
    model: ModelOption = None,
    threshold: ThresholdOption = None,
    operating_point: OperatingPointOption = None,
    group_by: GroupByOption = GroupBy.auto,
    batch_size: BatchSizeOption = None,
    threads: ThreadsOption = None,
    workers: WorkersOption = None,
    device: DeviceOption = Device.auto,
    output_format: OutputFormatOption = OutputFormat.table,
    output: OutputFileOption = None,
    quiet: QuietOption = False,
    resume: ResumeOption = False,
    force: ForceOption = False,
    engine: EngineOption = "local",
    address: AddressOption = None,
    num_cpus: NumCpusOption = None,
) -> int:
    """Score mammograms; one result per input, errors included.

    Exit code 0 when every input scored, 2 when some failed (the others are still
    scored and written), 1 for usage or model errors, 130 after Ctrl-C, 143 after
    SIGTERM (results so far kept, json closed), 141 when the output was closed (| head).
    """
    from mammo_edge.records.outputs import exclusive_output, refuse_input_overlap

    check_predict_options(output_format.value, output, resume, force, address, num_cpus)
    engine_found = engine_class(engine)
    locked = exclusive_output(output) if output is not None else contextlib.nullcontext()
    with sigterm_as_exception(), locked:
        try:
            inputs = expand_or_fail(input_arguments(paths, from_list))
            if output is not None:
                refuse_input_overlap([output], inputs)  # before the output is opened
            predictor = open_predictor(
                model, device, threads, batch_size, threshold, operating_point, group_by, workers
            )
            scoring = create_engine(engine, predictor, address=address, num_cpus=num_cpus)
            plan = _plan(inputs, output, output_format.value, predictor, resume, force, quiet)
            where = "" if engine_found.name == "local" else f" on {engine_found.name.title()}"
            announce(predictor, f"{len(plan.todo)} input(s){where}", quiet=quiet)
            return _score_and_write(scoring, plan, quiet=quiet)
        except Terminated:
            typer.echo("mammo-edge: terminated (SIGTERM) before scoring began", err=True)
            raise typer.Exit(EXIT_TERMINATED) from None
        except BrokenPipeError:
            discard_stdout()
            raise typer.Exit(EXIT_PIPE_CLOSED) from None


@dataclass
class _Plan:
    """What a run will do: which inputs to score, and how the output is written."""

    todo: list[str]
    total: int
    output: Path | None
    output_format: str
    append: bool = False
    resume: bool = False
    already_failed: int = 0
    path_width: int = 4
    positive: str = "abnormal"


def _plan(inputs, output, output_format, predictor, resume, force, quiet) -> _Plan:
    """The inputs left to score; with ``--resume``, those the output file lacks."""
    plan = _Plan(
        todo=inputs,
        total=len(inputs),
        output=output,
        output_format=output_format,
        resume=resume,
        path_width=max((len(path) for path in inputs), default=4),
        positive=predictor.metadata.class_names[1],
    )
    if not resume:
        return plan
    state = _resume_state(output, output_format, predictor, force)
    plan.append = not state.empty
    plan.todo = [path for path in inputs if path not in state.done]
    plan.already_failed = sum(path in state.failed for path in inputs)
    if not quiet:
        note = (
            f"; cut a half-written last record ({state.repaired_bytes} bytes)"
            if state.repaired_bytes
            else ""
        )
        typer.echo(
            f"resuming {output}: {plan.total - len(plan.todo)} of {plan.total} input(s) "
            f"already recorded{note}",
            err=True,
        )
    return plan


def _score_and_write(scoring, plan: _Plan, *, quiet: bool) -> int:
    """Score the plan's inputs with the engine ``scoring``; write and summarise."""
    from mammo_edge.errors import ModelError
    from mammo_edge.records.outputs import open_results
    from mammo_edge.records.writers import open_writer

    failed = abnormal = written = 0
    stopped_with = None
    started = scoring if plan.todo else contextlib.nullcontext()
    opened = open_results(plan.output, plan.output_format, plan.append)
    with started, opened as stream:
        writer = open_writer(plan.output_format, stream, plan.path_width, append=plan.append)
        try:
            with progress_bar(len(plan.todo), "scoring", quiet=quiet, results=stream) as bar:
                for result in scoring.iter_score(plan.todo) if plan.todo else ():
                    writer.write(result)
                    written += 1
                    failed += not result.ok
                    abnormal += result.label == plan.positive
                    if bar is not None:
                        bar.update(1)
        except (KeyboardInterrupt, Terminated) as stop:
            stopped_with = stop
        except ModelError:  # e.g. a Ray actor refused the model: keep the file well-formed
            writer.close()
            raise
        writer.close()  # inside the with: a whole-file output is renamed into place after it
    if stopped_with is not None:
        _report_stop(stopped_with, written, plan)
    failed += plan.already_failed
    if not quiet:
        typer.echo(_summary(plan, written, failed, abnormal), err=True)
    raise typer.Exit(EXIT_SOME_FAILED if failed else EXIT_OK)


def _report_stop(stop: BaseException, written: int, plan: _Plan) -> None:
    """Say what a stopped run kept, and exit 130 or 143."""
    how, code = stop_reason(stop)
    where = f" in {plan.output}" if plan.output else ""
    resumable = plan.output_format in ("jsonl", "csv") and plan.output
    typer.echo(
        f"mammo-edge: {how}; {written} of {len(plan.todo)} result(s) written{where}"
        + ("; continue with --resume" if resumable else ""),
        err=True,
    )
    raise typer.Exit(code)


def _summary(plan: _Plan, written: int, failed: int, abnormal: int) -> str:
    scored = plan.total - failed
    summary = f"scored {scored} of {plan.total} input(s): {abnormal} abnormal"
    if plan.resume:
        summary = (
            f"{written} new record(s) in {plan.output}; scored {scored} of {plan.total} "
            f"input(s) in all: {abnormal} abnormal among the new"
        )
    if failed:
        summary += f"; {failed} failed (see error_code and error_message)"
    if plan.output is not None and not plan.resume:
        summary += f"; results in {plan.output}"
    return summary


def _resume_state(output: Path, output_format: str, predictor, force: bool):
    from mammo_edge.records.resume import ResumeError, prepare_resume

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
