"""``mammo-edge calibrate``: fit a model's operating points (and head) to a site's images.

Scores the labelled images once with the base model, refits what follows the network (the
stacking head, if the model has one, and the ``triage`` and ``balanced`` thresholds, paired
and single-view) and writes ``--out`` as a model folder that ``--model DIR`` loads in every
verb. The network's bytes stay the base model's; the figures before and after are printed and
written into the folder's card. The logic: :mod:`mammo_edge.calibration`.

Exit codes: 0 written; 2 written, but some inputs could not be scored; 1 usage, labels or
model errors, or too little data (then nothing is written).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from mammo_edge.commands.common import (
    EXIT_OK,
    EXIT_SOME_FAILED,
    EXIT_USAGE_OR_MODEL,
    announce,
    expand_or_fail,
    open_predictor,
    progress_bar,
)
from mammo_edge.commands.options import (
    BatchSizeOption,
    Device,
    DeviceOption,
    LabelsOption,
    ModelOption,
    QuietOption,
    ThreadsOption,
    WorkersOption,
    folder_out_option,
    paths_argument,
)

PathsArgument = paths_argument(
    "The site's labelled images: files, folders, globs or @list files (as for "
    "predict). Both breasts of an exam let the pair head be refitted.",
    required=True,
)
OutOption = folder_out_option(
    "New folder for the calibrated model (manifest.json, ONNX, MODEL_CARD.md); "
    "it must not exist or be empty. Then: --model OUT.",
    show_default=False,
)
NameOption = Annotated[
    str | None,
    typer.Option(
        "--name",
        help="Name of the calibrated model (default: the base model's name + '-calibrated').",
        show_default=False,
    ),
]


def calibrate_command(
    paths: PathsArgument,
    labels: LabelsOption = ...,  # type: ignore[assignment]
    out: OutOption = ...,  # type: ignore[assignment]
    model: ModelOption = None,
    name: NameOption = None,
    device: DeviceOption = Device.auto,
    batch_size: BatchSizeOption = None,
    threads: ThreadsOption = None,
    workers: WorkersOption = None,
    quiet: QuietOption = False,
) -> int:
    """Fit a model's operating points and head to your labelled images; write a model folder.

    Refuses (exit 1, nothing written) fewer than 10 abnormal images, 10 normal images or 10
    patients. Never changes the shipped models.
    """
    from mammo_edge.calibration.fitting import check_base_head
    from mammo_edge.calibration.folder import check_out_folder, write_model_folder
    from mammo_edge.calibration.run import calibrate
    from mammo_edge.calibration.site import CalibrationError, check_label_counts, read_site_labels
    from mammo_edge.evaluation.labels import LabelsError, match_labels

    try:
        truth = read_site_labels(labels)
    except LabelsError as error:
        raise typer.BadParameter(str(error), param_hint="--labels") from None
    predictor = open_predictor(model, device, threads, batch_size, workers=workers)
    try:
        check_out_folder(out, predictor.model_file.path)
        check_base_head(predictor.metadata.head)
        check_label_counts(truth.labels.records)
    except CalibrationError as error:
        _fail(str(error))
    inputs = expand_or_fail(paths)
    results = _score(predictor, inputs, quiet)
    try:
        match = match_labels([result.path for result in results], truth.labels)
    except LabelsError as error:
        raise typer.BadParameter(str(error), param_hint="--labels") from None
    failed = [result for result in results if not result.ok]
    _warn_unused(match, failed, truth.rejected)

    def log(message: str) -> None:
        if not quiet:
            typer.echo(f"mammo-edge: {message}", err=True)

    try:
        calibrated = calibrate(
            predictor.model,
            results,
            truth,
            match,
            name or f"{predictor.model_file.name}-calibrated",
            log=log,
        )
        written = write_model_folder(out, calibrated, predictor.model_file.model_card)
    except CalibrationError as error:
        _fail(str(error))
    except OSError as error:
        _fail(f"cannot write {out}: {error}")
    _print_figures(calibrated, written, out)
    raise typer.Exit(EXIT_SOME_FAILED if failed else EXIT_OK)


def _print_figures(calibrated, written: list[Path], out: Path) -> None:
    """The site's figures before and after, and what was written (standard output)."""
    from mammo_edge.calibration.record import figures_table, summary_line

    typer.echo(summary_line(calibrated.calibration))
    typer.echo("")
    typer.echo(figures_table(calibrated.calibration))
    typer.echo("")
    typer.echo(f"wrote {', '.join(str(path) for path in written)}")
    typer.echo(
        f"model {calibrated.name}, sha256 {calibrated.sha256} (base "
        f"{calibrated.calibration.base_sha256[:12]}...); use it with --model {out}"
    )


def _score(predictor, inputs: list[str], quiet: bool) -> list:
    """Every record of one run over ``inputs`` (grouped by exam, as predict does)."""
    announce(predictor, f"scoring {len(inputs)} input(s) to calibrate", quiet=quiet)
    results = []
    with progress_bar(len(inputs), "scoring", quiet=quiet) as bar:
        for result in predictor.iter_predict(inputs):
            results.append(result)
            if bar is not None:
                bar.update(1)
    return results


def _warn_unused(match, failed: list, rejected: tuple[str, ...]) -> None:
    """Say on standard error what calibration leaves out, never silently."""
    notes = [
        (len(rejected), "row(s) of the dataset manifest that cannot be used"),
        (len(match.inputs_without_label), "input(s) without a label"),
        (len(match.labels_without_input), "label(s) without an input"),
        (len(failed), "input(s) that could not be scored"),
    ]
    for count, what in notes:
        if count:
            typer.echo(f"mammo-edge: warning: {count} {what}: not used", err=True)
    for row in rejected[:10]:
        typer.echo(f"  {row}", err=True)
    for result in failed[:10]:
        typer.echo(f"  {result.path}: {result.error_code}: {result.error_message}", err=True)


def _fail(message: str):
    typer.echo(f"mammo-edge: error: {message}", err=True)
    raise typer.Exit(EXIT_USAGE_OR_MODEL)
