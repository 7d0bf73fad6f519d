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
import math
from collections import Counter
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Annotated

import typer

from .common import (
    EXIT_OK,
    EXIT_SOME_FAILED,
    EXIT_USAGE_OR_MODEL,
    Terminated,
    make_folder,
    progress_bar,
    sigterm_as_exception,
    stop_reason,
)
from .explain import (
    RECORDS_NAME,
    Method,
    MethodOption,
    PathsArgument,
    announce,
    open_explainer,
)
from .options import (
    BatchSizeOption,
    Device,
    DeviceOption,
    FromListOption,
    ModelOption,
    ThreadsOption,
    ThresholdOption,
    input_arguments,
)

IMAGES_FOLDER = "images"
THUMBNAIL_SIDE = 240
PAGE_NAME = "index.html"
#: Written beside the page with --labels, exactly as ``evaluate`` writes them.
EVALUATION_FILES = ("metrics.json", "predictions.csv", "roc.svg")


def report_command(
    paths: PathsArgument = None,
    out: Annotated[
        Path,
        typer.Option(
            "--out",
            "-o",
            help="Folder for index.html and its images (created if missing).",
            file_okay=False,
            show_default=False,
        ),
    ] = ...,  # type: ignore[assignment]
    labels: Annotated[
        Path | None,
        typer.Option(
            "--labels",
            "-l",
            help="Truth (as for evaluate): a CSV image,label[,patient,group,finding] or a "
            "MIAS Info.txt. Adds metrics, ROC, confusion matrix and TP/FP/FN/TN per row.",
            dir_okay=False,
        ),
    ] = None,
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
    quiet: Annotated[
        bool, typer.Option("--quiet", "-q", help="No header, progress bar or summary.")
    ] = False,
    from_list: FromListOption = None,
) -> int:
    """Write an HTML report (thumbnails, heatmaps, scores; metrics with --labels).

    Exit code 0 when every input was scored, 2 when some failed (they appear as error
    rows), 1 for usage, labels or model errors, 130 after Ctrl-C and 143 after SIGTERM
    (both write the page for the images scored so far and say where).
    """
    with sigterm_as_exception():
        return _report(
            input_arguments(paths, from_list),
            out=out,
            labels=labels,
            model=model,
            method=method,
            threshold=threshold,
            title=title,
            overlay_size=overlay_size,
            batch_size=batch_size,
            threads=threads,
            device=device,
            quiet=quiet,
        )


def _report(
    paths: list[str],
    *,
    out: Path,
    labels: Path | None,
    model: str | None,
    method: Method,
    threshold: float | None,
    title: str,
    overlay_size: int,
    batch_size: int | None,
    threads: int | None,
    device: Device,
    quiet: bool,
) -> int:
    """``report_command`` with its inputs gathered, inside the SIGTERM handler."""
    from ..labels import LabelsError, read_labels
    from ..outputs import exclusive_output

    truth = None
    if labels is not None:
        try:
            truth = read_labels(labels)
        except LabelsError as error:
            raise typer.BadParameter(str(error), param_hint="--labels") from None
    explainer, inputs = open_explainer(
        paths,
        model,
        method.value,
        threshold,
        batch_size,
        threads,
        device.value,
        writes=[out / name for name in (RECORDS_NAME, PAGE_NAME, *EVALUATION_FILES)],
        writes_into=[out / IMAGES_FOLDER],
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
    from ..explain import (
        explain_result,
        image_file_stem,
        render_overlay,
        thumbnail,
        write_png,
    )
    from ..outputs import atomic_file
    from ..report_html import ReportRow

    if not quiet:
        announce(explainer, len(inputs))
    predictions, rows = [], []
    stopped = None
    try:
        with (
            (out / RECORDS_NAME).open("w", encoding="utf-8") as records,
            progress_bar(len(inputs), "explaining", quiet=quiet) as bar,
        ):
            for explained in explainer.iter_explain(inputs):
                stem = f"{IMAGES_FOLDER}/{image_file_stem(explained.index, explained.record.path)}"
                files: dict[str, str | None] = {"thumbnail": None}
                pixels = explained.item.pixels
                if pixels is not None:
                    files["thumbnail"] = f"{stem}.png"
                    write_png(out / files["thumbnail"], thumbnail(pixels, THUMBNAIL_SIDE))
                overlay = overlay_thumbnail = None
                if explained.peak is not None and pixels is not None:
                    image = render_overlay(
                        pixels,
                        explained.grid,
                        explained.item.geometry,
                        explained.peak,
                        max_side=overlay_size,
                    )
                    overlay, overlay_thumbnail = f"{stem}.heatmap.png", f"{stem}.heatmap.thumb.png"
                    write_png(out / overlay, image)
                    write_png(out / overlay_thumbnail, thumbnail(image, THUMBNAIL_SIDE))
                result = explain_result(explained, overlay)
                records.write(json.dumps(result.as_dict(), ensure_ascii=False) + "\n")
                records.flush()  # a stopped run keeps every record finished
                record = explained.record
                predictions.append(record)
                rows.append(
                    ReportRow(
                        index=explained.index,
                        path=record.path,
                        status=record.status,
                        probability=record.probability,
                        label=record.label,
                        thumbnail=files["thumbnail"] if record.ok else None,
                        overlay=overlay,
                        overlay_thumbnail=overlay_thumbnail,
                        peak_x=result.peak_x,
                        peak_y=result.peak_y,
                        error_code=record.error_code,
                        error_message=record.error_message,
                        warnings=tuple(record.warnings),
                    )
                )
                if bar is not None:
                    bar.update(1)
    except (KeyboardInterrupt, Terminated) as stop:
        stopped = stop  # the page below shows what was scored; a second signal stops that
    except OSError as error:
        typer.echo(f"mammo-edge: error: cannot write to {out}: {error}", err=True)
        raise typer.Exit(EXIT_USAGE_OR_MODEL) from None

    predictor = explainer.predictor
    evaluation_view = None
    if truth is not None and stopped is None:
        rows, evaluation_view = _evaluate(out, predictions, rows, truth, predictor)
    page = _page(title, explainer, predictions, rows, evaluation_view)
    if stopped is not None:
        how, code = stop_reason(stopped)
        page = replace(
            page,
            summary=[
                ("Stopped", f"{how} after {len(predictions)} of {len(inputs)} input(s)"),
                *page.summary,
            ],
        )
    from ..report_html import render_report

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


def _page(title, explainer, predictions, rows, evaluation_view):
    from ..report_html import ReportPage

    predictor = explainer.predictor
    negative, positive = predictor.metadata.class_names
    scored = [record for record in predictions if record.ok]
    errors = Counter(record.error_code for record in predictions if not record.ok)
    summary = [
        ("Model", f"{predictor.model_name} {predictor.model_version}"),
        (
            "SHA-256",
            f"{predictor.model_sha256} "
            f"({'verified against the manifest' if predictor.sha256_verified else 'unverified'})",
        ),
        ("Threshold", f"{predictor.threshold:g} ({positive} when probability >= threshold)"),
        ("Provider", predictor.provider),
        ("Inputs", str(len(predictions))),
        ("Scored", str(len(scored))),
        (f"Called {positive}", str(sum(record.label == positive for record in scored))),
        (f"Called {negative}", str(sum(record.label == negative for record in scored))),
        ("Errors", str(len(predictions) - len(scored))),
    ]
    if explainer.method == "heatmap":
        note = (
            "Heatmap: the model's own lesion map (each cell the probability of a lesion in a "
            f"{explainer.spec.window}-pixel window of the model input), shown on a fixed 0..1 "
            "scale, blue to red; the circle marks its maximum."
        )
    else:
        settings = explainer.occlusion
        note = (
            "Heatmap: occlusion sensitivity (how much hiding each patch, 1/"
            f"{round(1 / settings.patch_fraction)} of the input's side, lowers the "
            "probability), shown from no drop (blue) to the image's largest drop (red); "
            "the circle marks the largest drop."
        )
    return ReportPage(
        title=title,
        generated=datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        summary=summary,
        errors_by_code=dict(errors),
        rows=rows,
        heatmap_note=note,
        class_names=(negative, positive),
        evaluation=evaluation_view,
    )


def _evaluate(out: Path, predictions, rows, truth, predictor):
    """Metrics as ``evaluate`` computes and writes them; rows marked TP/FP/FN/TN."""
    from dataclasses import replace

    from ..labels import LabelsError, match_labels
    from ..report_html import EvaluationView
    from .evaluate import (
        evaluate_results,
        metrics_document,
        write_joined_predictions,
        write_roc_svg,
    )

    try:
        match = match_labels([record.path for record in predictions], truth)
    except LabelsError as error:
        raise typer.BadParameter(str(error), param_hint="--labels") from None
    label_of = dict(match.matched)
    marked = []
    for row in rows:
        record = label_of.get(row.path)
        if record is None:
            marked.append(row)
            continue
        truth_name = "abnormal" if record.label else "normal"
        outcome = None
        if row.status == "ok" and row.probability is not None:
            called = row.probability >= predictor.threshold
            outcome = ("T" if called == bool(record.label) else "F") + ("P" if called else "N")
        marked.append(replace(row, truth=truth_name, outcome=outcome))
    evaluation = evaluate_results(predictions, match, predictor.threshold)
    notes = []
    if match.inputs_without_label:
        notes.append(f"{len(match.inputs_without_label)} input(s) without a label (not evaluated).")
    if match.labels_without_input:
        notes.append(f"{len(match.labels_without_input)} label(s) without an input.")
    if evaluation.n == 0:
        notes.append("No input is both labelled and scored: nothing to evaluate.")
        view = EvaluationView(str(truth.source), [], (0, 0, 0, 0), None, notes)
        return marked, view
    model_info = {
        "name": predictor.model_name,
        "version": predictor.model_version,
        "sha256": predictor.model_sha256,
        "sha256_verified": predictor.sha256_verified,
        "model_threshold": predictor.metadata.threshold,
    }
    document = metrics_document(evaluation, match, truth, model_info, None)
    (out / "metrics.json").write_text(
        json.dumps(document, indent=2, ensure_ascii=False) + "\n", encoding="utf-8"
    )
    write_joined_predictions(out / "predictions.csv", predictions, match, predictor.threshold)
    roc_image = None
    if evaluation.roc is not None:
        write_roc_svg(out / "roc.svg", evaluation, predictor.model_name)
        roc_image = "roc.svg"
    counts = evaluation.counts
    tn, fp = counts.true_negative, counts.false_positive
    fn, tp = counts.false_negative, counts.true_positive

    def rate(value: float, numerator: int, denominator: int) -> str:
        return "undefined" if math.isnan(value) else f"{value:.3f} ({numerator}/{denominator})"

    metrics = [
        (
            "Images evaluated",
            f"{evaluation.n} ({counts.n_abnormal} abnormal, {counts.n_normal} normal)",
        ),
        ("Patients", str(evaluation.n_patients)),
    ]
    if evaluation.auc is not None:
        auc = evaluation.auc
        metrics.append(
            ("AUC (95% CI)", f"{auc.auc:.3f} ({auc.ci95[0]:.3f}-{auc.ci95[1]:.3f}, {auc.method})")
        )
    else:
        metrics.append(("AUC", document["auc_note"]))
    metrics += [
        (f"Sensitivity at {evaluation.threshold:g}", rate(counts.sensitivity, tp, tp + fn)),
        (f"Specificity at {evaluation.threshold:g}", rate(counts.specificity, tn, tn + fp)),
        ("PPV", rate(counts.ppv, tp, tp + fp)),
        ("NPV", rate(counts.npv, tn, tn + fn)),
        ("Accuracy", f"{counts.accuracy:.3f}"),
        ("Balanced accuracy", f"{counts.balanced_accuracy:.3f}"),
        ("Always-normal accuracy (baseline)", f"{counts.always_normal_accuracy:.3f}"),
    ]
    if evaluation.at_reference_specificity is not None:
        point = evaluation.at_reference_specificity
        metrics.append(
            (
                "Sensitivity at 90% specificity (chosen on these images)",
                f"{point.sensitivity:.3f}",
            )
        )
    if evaluation.n_errors:
        notes.append(f"{evaluation.n_errors} input(s) failed to score (not evaluated).")
    if evaluation.patients_note:
        notes.append(evaluation.patients_note)
    notes.append("metrics.json, predictions.csv and roc.svg beside this page hold the details.")
    view = EvaluationView(str(truth.source), metrics, (tn, fp, fn, tp), roc_image, notes)
    return marked, view
