"""``mammo-edge report``: one HTML page of thumbnails, heatmaps and scores that opens offline.

Writes to ``--out``:

* ``index.html``: run summary (model, SHA-256, threshold, counts, errors by code), then
  one row per input: thumbnail, heatmap overlay, probability, call, peak, status (error
  rows carry their code and message). With ``--labels``, the ``evaluate`` metrics, ROC
  curve and confusion matrix, and each row marked TP/FP/FN/TN;
* ``images/``: ``NNNN_name.png`` (thumbnail), ``NNNN_name.heatmap.png`` (overlay) and
  ``NNNN_name.heatmap.thumb.png``;
* ``explain.jsonl``: the ``explain`` records; with ``--labels`` also ``metrics.json``,
  ``predictions.csv`` and ``roc.svg`` exactly as ``evaluate`` writes them.
"""

from __future__ import annotations

import json
from collections import deque
from pathlib import Path
from typing import Annotated

import typer

from mammo_edge.commands.common import (
    EXIT_OK,
    EXIT_SOME_FAILED,
    EXIT_USAGE_OR_MODEL,
    Terminated,
    make_folder,
    progress_bar,
    sigterm_as_exception,
    stop_reason,
)
from mammo_edge.commands.explain import (
    RECORDS_NAME,
    Method,
    MethodOption,
    PathsArgument,
    announce,
    open_explainer,
)
from mammo_edge.commands.options import (
    BatchSizeOption,
    Device,
    DeviceOption,
    FromListOption,
    GroupBy,
    GroupByOption,
    ModelOption,
    OperatingPointOption,
    QuietOption,
    ThreadsOption,
    ThresholdOption,
    folder_out_option,
    input_arguments,
)

PAGE_NAME = "index.html"


ReportOutOption = folder_out_option(
    "Folder for index.html and its images (created if missing).", show_default=False
)
ReportLabelsOption = Annotated[
    Path | None,
    typer.Option(
        "--labels",
        "-l",
        help="Truth (as for evaluate): a CSV image,label[,patient,group,finding] or a "
        "MIAS Info.txt. Adds metrics, ROC, confusion matrix and TP/FP/FN/TN per row.",
        dir_okay=False,
    ),
]


def report_command(
    paths: PathsArgument = None,
    out: ReportOutOption = ...,  # type: ignore[assignment]
    labels: ReportLabelsOption = None,
    model: ModelOption = None,
    method: MethodOption = Method.auto,
    threshold: ThresholdOption = None,
    title: Annotated[str, typer.Option(help="The page's title.")] = "mammo-edge report",
    overlay_size: Annotated[
        int,
        typer.Option(min=64, help="Longer side of the full-size heatmap PNGs at most (pixels)."),
    ] = 1024,
    batch_size: BatchSizeOption = None,
    threads: ThreadsOption = None,
    device: DeviceOption = Device.auto,
    quiet: QuietOption = False,
    from_list: FromListOption = None,
    operating_point: OperatingPointOption = None,
    group_by: GroupByOption = GroupBy.auto,
) -> int:
    """Write an HTML report (thumbnails, heatmaps, scores; metrics with --labels).

    Exit code 0 when every input was scored, 2 when some failed (they appear as error
    rows), 1 for usage, labels or model errors, 130 after Ctrl-C and 143 after SIGTERM
    (both write the page for the images scored so far and say where).
    """
    from mammo_edge.evaluation.labels import LabelsError, read_labels
    from mammo_edge.evaluation.plots import SVG_NAME
    from mammo_edge.evaluation.results import METRICS_NAME, PREDICTIONS_NAME
    from mammo_edge.records.outputs import exclusive_output

    with sigterm_as_exception():
        truth = None
        if labels is not None:
            try:
                truth = read_labels(labels)
            except LabelsError as error:
                raise typer.BadParameter(str(error), param_hint="--labels") from None
        written = (RECORDS_NAME, PAGE_NAME, METRICS_NAME, PREDICTIONS_NAME, SVG_NAME)
        explainer, inputs = open_explainer(
            input_arguments(paths, from_list),
            model,
            method.value,
            threshold,
            batch_size,
            threads,
            device,
            writes=[out / name for name in written],
            writes_into=[out / images_folder()],
            operating_point=operating_point,
            group_by=group_by,
        )
        make_folder(out)
        with exclusive_output(out / RECORDS_NAME):
            return _write_report(
                explainer,
                inputs,
                out=out,
                truth=truth,
                title=title,
                overlay_size=overlay_size,
                quiet=quiet,
            )


def _write_report(explainer, inputs, *, out, truth, title, overlay_size, quiet):
    """Explain ``inputs`` into ``out`` and write the page (also after Ctrl-C or SIGTERM)."""
    from mammo_edge.explain.explainer import with_exam_fields
    from mammo_edge.explain.report_html import render_report
    from mammo_edge.explain.report_page import ReportPictures, build_page, draw_pictures, report_row
    from mammo_edge.records.outputs import atomic_file

    if not quiet:
        announce(explainer, len(inputs))
    predictions, rows = [], []
    stopped = None
    try:
        with (
            (out / RECORDS_NAME).open("w", encoding="utf-8") as records,
            progress_bar(len(inputs), "explaining", quiet=quiet) as bar,
        ):
            pictures: deque[ReportPictures] = deque()

            def drawn():  # pictures first: a record may wait for its exam, pixels must not
                for explained in explainer.iter_explain(inputs):
                    result, files = draw_pictures(out, explained, overlay_size)
                    pictures.append(files)
                    yield result

            for result in with_exam_fields(drawn(), explainer.predictor):
                records.write(json.dumps(result.as_dict(), ensure_ascii=False) + "\n")
                records.flush()  # a stopped run keeps every record finished
                predictions.append(result.prediction)
                rows.append(report_row(result, pictures.popleft()))
                if bar is not None:
                    bar.update(1)
    except (KeyboardInterrupt, Terminated) as stop:
        stopped = stop  # the page below shows what was scored; a second signal stops that
    except OSError as error:
        typer.echo(f"mammo-edge: error: cannot write to {out}: {error}", err=True)
        raise typer.Exit(EXIT_USAGE_OR_MODEL) from None

    evaluation_view = None
    if truth is not None and stopped is None:
        rows, evaluation_view = _evaluate(out, predictions, rows, truth, explainer.predictor)
    stopped_note = None
    if stopped is not None:
        how, code = stop_reason(stopped)
        stopped_note = f"{how} after {len(predictions)} of {len(inputs)} input(s)"
    page = build_page(title, explainer, predictions, rows, evaluation_view, stopped_note)
    with atomic_file(out / PAGE_NAME) as handle:
        handle.write(render_report(page))
    if stopped is not None:
        typer.echo(
            f"mammo-edge: {how}; report of the {len(predictions)} of {len(inputs)} input(s) "
            f"scored so far in {out / PAGE_NAME}",
            err=True,
        )
        raise typer.Exit(code)
    failed = sum(not record.ok for record in predictions)
    if not quiet:
        summary = f"report of {len(predictions)} input(s) in {out / PAGE_NAME}"
        if failed:
            summary += f"; {failed} failed (error rows in the report)"
        typer.echo(summary, err=True)
    raise typer.Exit(EXIT_SOME_FAILED if failed else EXIT_OK)


def _evaluate(out: Path, predictions, rows, truth, predictor):
    """The evaluation ``evaluate`` would write, written beside the page; rows marked."""
    from mammo_edge.evaluation.labels import LabelsError, match_labels
    from mammo_edge.evaluation.plots import SVG_NAME
    from mammo_edge.evaluation.results import ModelFacts, evaluate_results, write_evaluation
    from mammo_edge.explain.report_page import evaluation_view, mark_rows

    try:
        match = match_labels([record.path for record in predictions], truth)
    except LabelsError as error:
        raise typer.BadParameter(str(error), param_hint="--labels") from None
    evaluation = evaluate_results(
        predictions,
        match,
        predictor.threshold,
        model=ModelFacts.of_predictor(predictor),
        labels=truth,
    )
    roc_image = None
    if evaluation.n:
        written = write_evaluation(out, predictions, evaluation, png=False)
        roc_image = SVG_NAME if SVG_NAME in written else None
    return mark_rows(rows, evaluation), evaluation_view(evaluation, roc_image)


def images_folder() -> str:
    """The page's picture folder (read from :mod:`mammo_edge.explain.report_page` only when needed:
    it loads numpy and OpenCV, which ``mammo-edge --help`` must not wait for)."""
    from mammo_edge.explain.report_page import IMAGES_FOLDER

    return IMAGES_FOLDER
