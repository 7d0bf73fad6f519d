"""``mammo-edge evaluate``: measure a model on your own labelled images.

Scores the inputs as ``predict`` does (or reads the records of an earlier ``predict
--format jsonl|csv`` run), pairs them with a labels file and writes ``metrics.json``,
``predictions.csv`` and the ROC (:mod:`mammo_edge.evaluation.results` says what each holds).

Exit codes as ``predict``: 0 every input scored, 2 some inputs failed (the rest are
evaluated), 1 usage, labels or model errors (including nothing left to evaluate).
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
    create_engine,
    engine_class,
    expand_or_fail,
    make_folder,
    open_predictor,
    progress_bar,
)
from mammo_edge.commands.options import (
    AddressOption,
    BatchSizeOption,
    Device,
    DeviceOption,
    EngineOption,
    GroupBy,
    GroupByOption,
    LabelsOption,
    ModelOption,
    NumCpusOption,
    OperatingPointOption,
    QuietOption,
    ThreadsOption,
    ThresholdOption,
    WorkersOption,
    paths_argument,
)

PathsArgument = paths_argument(
    "Image files, folders, globs or list files to score (as for predict). "
    "Leave out when --predictions is given."
)
OutOption = Annotated[
    Path, typer.Option("--out", "-o", help="Folder for metrics.json, predictions.csv, roc.svg.")
]
PredictionsOption = Annotated[
    Path | None,
    typer.Option(
        "--predictions",
        help="Evaluate the jsonl or csv written by 'mammo-edge predict' instead of "
        "scoring images again.",
        dir_okay=False,
    ),
]


def _check_sources(paths: list[str] | None, predictions: Path | None) -> None:
    """Images to score or a predict run to reuse: exactly one of the two."""
    if predictions is not None and paths:
        raise typer.BadParameter(
            "give image PATHS to score, or --predictions to reuse a predict run, not both",
            param_hint="--predictions",
        )
    if predictions is None and not paths:
        raise typer.BadParameter(
            "give image PATHS to score, or --predictions FILE", param_hint="PATHS"
        )


def evaluate_command(
    paths: PathsArgument = None,
    labels: LabelsOption = ...,  # type: ignore[assignment]
    model: ModelOption = None,
    threshold: ThresholdOption = None,
    operating_point: OperatingPointOption = None,
    out: OutOption = Path("evaluation"),
    predictions: PredictionsOption = None,
    device: DeviceOption = Device.auto,
    batch_size: BatchSizeOption = None,
    threads: ThreadsOption = None,
    quiet: QuietOption = False,
    group_by: GroupByOption = GroupBy.auto,
    workers: WorkersOption = None,
    engine: EngineOption = "local",
    address: AddressOption = None,
    num_cpus: NumCpusOption = None,
) -> int:
    """Measure a model on labelled images: AUC with CI, sensitivity, specificity, ROC.

    Exits as predict does: 0 when every input scored, 2 when some failed (the others are
    still evaluated), and 1 for usage, labels or model errors.
    """
    from mammo_edge.evaluation.labels import LabelsError, match_labels, read_labels
    from mammo_edge.evaluation.results import ModelFacts, evaluate_results, write_evaluation
    from mammo_edge.evaluation.summary import summary_text, unmatched_warnings

    _check_sources(paths, predictions)
    try:
        truth = read_labels(labels)
    except LabelsError as error:
        raise typer.BadParameter(str(error), param_hint="--labels") from None
    if predictions is not None:
        results, facts, threshold = _read_predictions(predictions, model, threshold)
    else:
        engine_class(engine)  # a missing engine fails before the model loads
        predictor = open_predictor(
            model, device, threads, batch_size, threshold, operating_point, group_by, workers
        )
        scoring = create_engine(engine, predictor, address=address, num_cpus=num_cpus)
        results = _score(scoring, expand_or_fail(paths), quiet)
        facts, threshold = ModelFacts.of_predictor(predictor), predictor.threshold
    try:
        match = match_labels([result.path for result in results], truth)
    except LabelsError as error:
        raise typer.BadParameter(str(error), param_hint="--labels") from None
    evaluation = evaluate_results(
        results, match, float(threshold), model=facts, labels=truth, predictions_file=predictions
    )
    for warning in unmatched_warnings(match):
        typer.echo(f"mammo-edge: warning: {warning}", err=True)
    if evaluation.n == 0:
        typer.echo(
            "mammo-edge: error: no input is both labelled and scored, so there is nothing "
            "to evaluate (check that the labels' image column names these files)",
            err=True,
        )
        raise typer.Exit(EXIT_USAGE_OR_MODEL)
    make_folder(out)
    try:
        written = write_evaluation(out, results, evaluation)
    except OSError as error:
        typer.echo(f"mammo-edge: error: cannot write to {out}: {error}", err=True)
        raise typer.Exit(EXIT_USAGE_OR_MODEL) from None
    typer.echo(summary_text(evaluation))
    typer.echo(f"wrote {', '.join(str(out / name) for name in written)}")
    raise typer.Exit(EXIT_SOME_FAILED if evaluation.n_errors else EXIT_OK)


def _score(scoring, inputs: list[str], quiet: bool) -> list:
    """Score ``inputs`` with the engine ``scoring``, as ``predict`` does; the records."""
    announce(scoring.predictor, f"scoring {len(inputs)} input(s)", quiet=quiet)
    results = []
    with scoring, progress_bar(len(inputs), "scoring", quiet=quiet) as bar:
        for result in scoring.iter_score(inputs):
            results.append(result)
            if bar is not None:
                bar.update(1)
    return results


def _read_predictions(source: Path, model: str | None, threshold: float | None):
    """Records, model facts and threshold of ``evaluate --predictions`` (``source``)."""
    from mammo_edge.evaluation.results import EvaluationError, ModelFacts, threshold_of_records
    from mammo_edge.records.record import RecordsError, read_records

    if model is not None:
        typer.echo(
            "mammo-edge: warning: --model is ignored with --predictions; the records "
            "name the model that scored them",
            err=True,
        )
    try:
        results = read_records(source)
        facts = ModelFacts.of_records(results, source)
        if threshold is None:
            threshold = threshold_of_records(results, source)
    except (RecordsError, EvaluationError) as error:
        raise typer.BadParameter(str(error), param_hint="--predictions") from None
    return results, facts, threshold
