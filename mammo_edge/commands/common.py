"""What every verb shares, declared once: exit codes, stops, progress, the model banner.

A verb parses its options (:mod:`.options`) and calls the core; how it ends (exit codes),
how it stops on Ctrl-C or SIGTERM, when it shows progress and how it names the model it
loaded are the same for all verbs and live here.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
from pathlib import Path
from typing import TextIO

import typer

#: Exit codes of every verb (docs/runtime.md, Exit codes): shells report 128 + signal number.
EXIT_OK = 0
EXIT_USAGE_OR_MODEL = 1
EXIT_SOME_FAILED = 2
EXIT_INTERRUPTED = 130
EXIT_PIPE_CLOSED = 141
EXIT_TERMINATED = 143


class Terminated(BaseException):
    """Raised in the main thread by SIGTERM, so a stop unwinds like Ctrl-C and loses nothing.

    A BaseException (as KeyboardInterrupt is), so that no ``except Exception`` guarding one
    bad file swallows it.
    """


@contextlib.contextmanager
def sigterm_as_exception():
    """Turn SIGTERM into :class:`Terminated` while the command runs (main thread only)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def raise_terminated(signum, frame):
        raise Terminated

    previous = signal.signal(signal.SIGTERM, raise_terminated)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def stop_reason(stop: BaseException) -> tuple[str, int]:
    """What to tell people, and the exit code, after Ctrl-C or SIGTERM."""
    if isinstance(stop, KeyboardInterrupt):
        return "interrupted", EXIT_INTERRUPTED
    return "terminated (SIGTERM)", EXIT_TERMINATED


def discard_stdout() -> None:
    """The reader of standard output is gone (``| head``): send what is left nowhere.

    Python flushes standard output at exit; with the pipe closed that flush would print
    "Exception ignored ... BrokenPipeError", so the descriptor is pointed at /dev/null.
    """
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError, AttributeError):
        pass


def silence_opencv_warnings() -> None:
    """OpenCV logs decoder warnings to stderr; the result records already say what failed."""
    import cv2

    logging_module = getattr(getattr(cv2, "utils", None), "logging", None)
    if logging_module is not None:
        logging_module.setLogLevel(logging_module.LOG_LEVEL_ERROR)


def expand_or_fail(paths: list[str]) -> list[str]:
    """The input files the verb's PATHS name (:func:`~mammo_edge.images.inputs.expand_inputs`).

    Raises:
        typer.BadParameter: no image file found (the CLI exits 1 with the message).
    """
    from mammo_edge.images.inputs import expand_inputs

    silence_opencv_warnings()
    inputs = expand_inputs(paths)
    if not inputs:
        raise typer.BadParameter(f"no image files found in {', '.join(paths)}", param_hint="PATHS")
    return inputs


def model_banner(predictor, detail: str) -> str:
    """The line every verb prints about the model it loaded, then ``detail``."""
    return (
        f"model {predictor.model_name} {predictor.model_version} "
        f"(sha256 {predictor.model_sha256[:12]}, "
        f"{'verified' if predictor.sha256_verified else 'unverified'}) "
        f"on {predictor.provider}, threshold {predictor.threshold:g} "
        f"({predictor.operating_point}); {detail}"
    )


def announce(predictor, detail: str, *, quiet: bool = False) -> None:
    """Print :func:`model_banner` on standard error (nothing with ``--quiet``)."""
    if not quiet:
        typer.echo(model_banner(predictor, detail), err=True)
        sys.stderr.flush()


def engine_class(name: str) -> type:
    """The engine named by ``--engine``, checked to be usable here (before a model loads).

    Raises:
        typer.BadParameter: no engine of that name, or it cannot run here (its package
            is missing); the message says which exist or how to install.
    """
    from mammo_edge.engines import engine_class as registered
    from mammo_edge.errors import ModelError

    try:
        found = registered(name)
    except ModelError as error:
        raise typer.BadParameter(str(error), param_hint="--engine") from None
    reason = found.unavailable()
    if reason is not None:
        raise typer.BadParameter(reason, param_hint="--engine")
    return found


def create_engine(name: str, predictor, **options):
    """The engine ``name`` over ``predictor``; an option it does not take is a usage error."""
    from mammo_edge.engines import create_engine as create
    from mammo_edge.errors import ModelError

    try:
        return create(name, predictor, **options)
    except ModelError as error:
        raise typer.BadParameter(str(error), param_hint="--engine") from None


def open_predictor(
    model: str | None,
    device,
    threads: int | None,
    batch_size: int | None,
    threshold: float | None = None,
    operating_point: str | None = None,
    group_by=None,
    workers: int | None = None,
    streams: int | None = None,
):
    """The :class:`~mammo_edge.predictor.Predictor` of a verb's shared run options.

    ``device`` and ``group_by`` are the verb's :class:`~.options.Device` and
    :class:`~.options.GroupBy` choices (``group_by=None``: ``auto``); the rest as the
    Predictor takes them (``None``: its default).

    Raises:
        ModelError: the model cannot be used (the CLI exits 1).
    """
    from mammo_edge.predictor import Predictor

    settings = {"threads": threads, "threshold": threshold, "batch_size": batch_size}
    settings.update(workers=workers, operating_point=operating_point, streams=streams)
    group = "auto" if group_by is None else group_by.value
    return Predictor(model, device=device.value, group_by=group, **settings)


def make_folder(out: Path) -> None:
    """Create the ``--out`` folder, or fail with a usage error saying why."""
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise typer.BadParameter(
            f"cannot create {out}: {error.strerror}", param_hint="--out"
        ) from None


def progress_bar(length: int, label: str, *, quiet: bool, results: TextIO | None = None):
    """A progress bar on standard error, or a context yielding ``None`` where none belongs.

    Shown when standard error is a terminal, there is more than one input, ``--quiet`` is
    not given and the results (``results``) are not themselves going to that terminal.
    Every long verb (predict, evaluate, explain, report) shows progress by this one rule.
    """
    show = (
        not quiet
        and length > 1
        and _is_terminal(sys.stderr)
        and (results is None or not _is_terminal(results))
    )
    if not show:
        return contextlib.nullcontext()
    return typer.progressbar(length=length, label=label, file=sys.stderr)


def _is_terminal(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False
