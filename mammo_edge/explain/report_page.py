"""The facts of ``mammo-edge report``'s page, gathered from a run: a :class:`ReportPage`.

:func:`build_page` holds the run summary (model, threshold, counts) and says how the
heatmaps were made; with ``--labels``, :func:`evaluation_view` and :func:`mark_rows` show
the :class:`~mammo_edge.evaluation.results.Evaluation` (the same one ``evaluate`` writes).
:mod:`mammo_edge.explain.report_html` turns the page into HTML.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING

from mammo_edge.evaluation.plots import SVG_NAME
from mammo_edge.evaluation.results import METRICS_NAME, PREDICTIONS_NAME
from mammo_edge.evaluation.summary import metric_rows
from mammo_edge.explain.explainer import (
    explain_result,
    image_file_stem,
    render_overlay,
    thumbnail,
    write_png,
)
from mammo_edge.explain.report_html import EvaluationView, ReportPage, ReportRow

#: Where the page's pictures go, and the side of its thumbnails.
IMAGES_FOLDER = "images"
THUMBNAIL_SIDE = 240

if TYPE_CHECKING:
    from mammo_edge.evaluation.results import Evaluation
    from mammo_edge.records.record import PredictionResult


def build_page(
    title: str,
    explainer,
    predictions: list[PredictionResult],
    rows: list[ReportRow],
    evaluation: EvaluationView | None = None,
    stopped: str | None = None,
) -> ReportPage:
    """The page of a run of ``explainer`` (:class:`~mammo_edge.explain.explainer.Explainer`).

    Args:
        predictions: every record, in input order; ``rows`` their table rows.
        stopped: why the run stopped early ("interrupted after 3 of 9 input(s)"), if it did.
    """
    predictor = explainer.predictor
    negative, positive = predictor.metadata.class_names
    scored = [record for record in predictions if record.ok]
    verified = "verified against the manifest" if predictor.sha256_verified else "unverified"
    summary = [
        ("Model", f"{predictor.model_name} {predictor.model_version}"),
        ("SHA-256", f"{predictor.model_sha256} ({verified})"),
        ("Threshold", f"{predictor.threshold:g} ({positive} when probability >= threshold)"),
        ("Provider", predictor.provider),
        ("Inputs", str(len(predictions))),
        ("Scored", str(len(scored))),
        (f"Called {positive}", str(sum(record.label == positive for record in scored))),
        (f"Called {negative}", str(sum(record.label == negative for record in scored))),
        ("Errors", str(len(predictions) - len(scored))),
    ]
    if stopped is not None:
        summary.insert(0, ("Stopped", stopped))
    return ReportPage(
        title=title,
        generated=datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        summary=summary,
        errors_by_code=dict(Counter(record.error_code for record in predictions if not record.ok)),
        rows=rows,
        heatmap_note=heatmap_note(explainer),
        class_names=(negative, positive),
        evaluation=evaluation,
    )


def heatmap_note(explainer) -> str:
    """What the heatmaps show, for the method ``explainer`` used."""
    if explainer.method == "heatmap":
        return (
            "Heatmap: the model's own lesion map (each cell the probability of a lesion in a "
            f"{explainer.spec.window}-pixel window of the model input), shown on a fixed 0..1 "
            "scale, blue to red; the circle marks its maximum."
        )
    settings = explainer.occlusion
    return (
        "Heatmap: occlusion sensitivity (how much hiding each patch, 1/"
        f"{round(1 / settings.patch_fraction)} of the input's side, lowers the "
        "probability), shown from no drop (blue) to the image's largest drop (red); "
        "the circle marks the largest drop."
    )


def mark_rows(rows: list[ReportRow], evaluation: Evaluation) -> list[ReportRow]:
    """Each labelled row with its truth and, when scored, TP, FP, FN or TN at the threshold."""
    negative, positive = evaluation.model.class_names
    label_of = dict(evaluation.match.matched)
    marked = []
    for row in rows:
        record = label_of.get(row.path)
        if record is None:
            marked.append(row)
            continue
        outcome = None
        if row.status == "ok" and row.probability is not None:
            called = row.probability >= evaluation.threshold
            outcome = ("T" if called == bool(record.label) else "F") + ("P" if called else "N")
        truth = positive if record.label else negative
        marked.append(replace(row, truth=truth, outcome=outcome))
    return marked


def evaluation_view(evaluation: Evaluation, roc_image: str | None) -> EvaluationView:
    """The page's "Against the labels" section; ``roc_image`` the ROC's file, if written."""
    match = evaluation.match
    notes = []
    if match.inputs_without_label:
        notes.append(f"{len(match.inputs_without_label)} input(s) without a label (not evaluated).")
    if match.labels_without_input:
        notes.append(f"{len(match.labels_without_input)} label(s) without an input.")
    labels_file = str(evaluation.labels.source)
    if evaluation.n == 0:
        notes.append("No input is both labelled and scored: nothing to evaluate.")
        return EvaluationView(labels_file, [], (0, 0, 0, 0), None, notes)
    if evaluation.n_errors:
        notes.append(f"{evaluation.n_errors} input(s) failed to score (not evaluated).")
    if evaluation.patients_note:
        notes.append(evaluation.patients_note)
    notes.append(
        f"{METRICS_NAME}, {PREDICTIONS_NAME} and {SVG_NAME} beside this page hold the details."
    )
    counts = evaluation.counts
    confusion = (
        counts.true_negative,
        counts.false_positive,
        counts.false_negative,
        counts.true_positive,
    )
    return EvaluationView(labels_file, metric_rows(evaluation), confusion, roc_image, notes)


@dataclass(frozen=True)
class ReportPictures:
    """The PNGs written for one input, relative to the report folder."""

    index: int
    thumbnail: str | None
    overlay: str | None
    overlay_thumbnail: str | None


def draw_pictures(out: Path, explained, overlay_size: int):
    """Write one explained input's PNGs; return its ``explain`` record and its pictures."""
    record, pixels = explained.record, explained.item.pixels
    stem = f"{IMAGES_FOLDER}/{image_file_stem(explained.index, record.path)}"
    thumbnail_file = overlay = overlay_thumbnail = None
    if pixels is not None:
        thumbnail_file = f"{stem}.png"
        write_png(out / thumbnail_file, thumbnail(pixels, THUMBNAIL_SIDE))
    if explained.peak is not None and pixels is not None:
        image = render_overlay(
            pixels, explained.grid, explained.item.geometry, explained.peak, max_side=overlay_size
        )
        overlay, overlay_thumbnail = f"{stem}.heatmap.png", f"{stem}.heatmap.thumb.png"
        write_png(out / overlay, image)
        write_png(out / overlay_thumbnail, thumbnail(image, THUMBNAIL_SIDE))
    pictures = ReportPictures(explained.index, thumbnail_file, overlay, overlay_thumbnail)
    return explain_result(explained, overlay), pictures


def report_row(result, pictures: ReportPictures):
    """The report's table row of one input: its record (exam fields in) and pictures."""
    record = result.prediction
    return ReportRow(
        index=pictures.index,
        path=record.path,
        status=record.status,
        probability=record.probability,
        label=record.label,
        thumbnail=pictures.thumbnail if record.ok else None,
        overlay=pictures.overlay,
        overlay_thumbnail=pictures.overlay_thumbnail,
        peak_x=result.peak_x,
        peak_y=result.peak_y,
        error_code=record.error_code,
        error_message=record.error_message,
        warnings=tuple(record.warnings),
    )
