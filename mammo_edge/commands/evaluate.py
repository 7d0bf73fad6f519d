"""``mammo-edge evaluate``: measure a model on your own labelled images.

Scores the inputs with the same :class:`~mammo_edge.predictor.Predictor` as ``predict``
(or reads the records of an earlier ``predict --format jsonl|csv`` run), pairs them with a
labels file (:mod:`mammo_edge.labels`), and writes to ``--out``:

* ``metrics.json``: AUC with a 95% bootstrap CI over patients, the rates and confusion
  matrix at the threshold, the always-normal baseline, sensitivity at 90% specificity,
  per-group metrics, error counts and every unmatched input or label;
* ``predictions.csv``: one row per input and per label without an input, truth beside
  the model's call (UTF-8 with a byte-order mark, formula-like cells neutralised);
* ``roc.svg`` (always) and ``roc.png`` (when matplotlib is installed), the operating
  point marked.

Exit codes as ``predict``: 0 every input scored, 2 some inputs failed (the rest are
evaluated), 1 usage, labels or model errors (including nothing left to evaluate).
"""

from __future__ import annotations

import csv
import json
import math
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated
from xml.sax.saxutils import escape

import typer

from .options import (
    BatchSizeOption,
    Device,
    DeviceOption,
    ModelOption,
    OperatingPointOption,
    ThreadsOption,
    ThresholdOption,
)

if TYPE_CHECKING:
    from ..labels import LabelMatch, Labels
    from ..metrics import AucEstimate, ConfusionMetrics, GroupMetrics, OperatingPoint, RocCurve
    from ..records import PredictionResult

#: Specificity at which sensitivity is reported (a common screening operating point).
REFERENCE_SPECIFICITY = 0.9
#: Unmatched names shown on the terminal before "... and N more".
SHOWN_UNMATCHED = 10


def evaluate_command(
    paths: Annotated[
        list[str] | None,
        typer.Argument(
            help="Image files, folders, globs or list files to score (as for predict). "
            "Leave out when --predictions is given.",
            show_default=False,
        ),
    ] = None,
    labels: Annotated[
        Path,
        typer.Option(
            "--labels",
            "-l",
            help="Truth: a CSV with columns image,label (0/1 or normal/abnormal), optional "
            "patient,group; or a MIAS Info.txt.",
            dir_okay=False,
            show_default=False,
        ),
    ] = ...,  # type: ignore[assignment]
    model: ModelOption = None,
    threshold: ThresholdOption = None,
    operating_point: OperatingPointOption = None,
    out: Annotated[
        Path,
        typer.Option("--out", "-o", help="Folder for metrics.json, predictions.csv, roc.svg."),
    ] = Path("evaluation"),
    predictions: Annotated[
        Path | None,
        typer.Option(
            "--predictions",
            help="Evaluate the jsonl or csv written by 'mammo-edge predict' instead of "
            "scoring images again.",
            dir_okay=False,
        ),
    ] = None,
    device: DeviceOption = Device.auto,
    batch_size: BatchSizeOption = None,
    threads: ThreadsOption = None,
) -> int:
    """Measure a model on labelled images: AUC with CI, sensitivity, specificity, ROC.

    Exit code 0 when every input scored, 2 when some failed (the others are still
    evaluated), 1 for usage, labels or model errors.
    """
    from ..labels import LabelsError, match_labels, read_labels

    if predictions is not None and paths:
        raise typer.BadParameter(
            "give image PATHS to score, or --predictions to reuse a predict run, not both",
            param_hint="--predictions",
        )
    if predictions is None and not paths:
        raise typer.BadParameter(
            "give image PATHS to score, or --predictions FILE", param_hint="PATHS"
        )
    try:
        truth = read_labels(labels)
    except LabelsError as error:
        raise typer.BadParameter(str(error), param_hint="--labels") from None

    if predictions is not None:
        if model is not None:
            typer.echo(
                "mammo-edge: warning: --model is ignored with --predictions; the records "
                "name the model that scored them",
                err=True,
            )
        results = read_prediction_records(predictions)
        model_info = _model_of_records(results, predictions)
        threshold = _threshold_of_records(results, threshold, predictions)
    else:
        results, model_info = _score(
            paths or [], model, threshold, device.value, batch_size, threads, operating_point
        )
        threshold = model_info.pop("threshold")  # the Predictor's: --threshold or the model's

    try:
        match = match_labels([result.path for result in results], truth)
    except LabelsError as error:
        raise typer.BadParameter(str(error), param_hint="--labels") from None
    evaluation = evaluate_results(results, match, float(threshold))
    _report_unmatched(match)
    if evaluation.n == 0:
        typer.echo(
            "mammo-edge: error: no input is both labelled and scored, so there is nothing "
            "to evaluate (check that the labels' image column names these files)",
            err=True,
        )
        raise typer.Exit(1)

    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise typer.BadParameter(
            f"cannot create {out}: {error.strerror}", param_hint="--out"
        ) from None
    document = metrics_document(evaluation, match, truth, model_info, predictions)
    (out / "metrics.json").write_text(
        json.dumps(document, indent=2, ensure_ascii=False) + "\n", encoding="utf-8"
    )
    write_joined_predictions(out / "predictions.csv", results, match, evaluation.threshold)
    written = ["metrics.json", "predictions.csv"]
    for stale in ("roc.svg", "roc.png"):  # an earlier run's picture must not pass for this one
        (out / stale).unlink(missing_ok=True)
    if evaluation.roc is not None:
        write_roc_svg(out / "roc.svg", evaluation, model_info["name"])
        written.append("roc.svg")
        if write_roc_png(out / "roc.png", evaluation, model_info["name"]):
            written.append("roc.png")
    typer.echo(summary_text(evaluation, match, truth, model_info))
    typer.echo(f"wrote {', '.join(str(out / name) for name in written)}")
    raise typer.Exit(2 if evaluation.n_errors else 0)


# --- scoring or reading records -------------------------------------------------------


def _score(
    paths: list[str],
    model: str | None,
    threshold: float | None,
    device: str,
    batch_size: int | None,
    threads: int | None,
    operating_point: str | None = None,
) -> tuple[list, dict]:
    """Score ``paths`` with the Predictor ``predict`` uses; return records and model facts."""
    from ..inputs import expand_inputs
    from ..predictor import Predictor
    from .common import silence_opencv_warnings

    silence_opencv_warnings()
    inputs = expand_inputs(paths)
    if not inputs:
        raise typer.BadParameter(f"no image files found in {', '.join(paths)}", param_hint="PATHS")
    predictor = Predictor(
        model,
        device=device,
        threads=threads,
        threshold=threshold,
        batch_size=batch_size,
        operating_point=operating_point,
    )
    typer.echo(
        f"model {predictor.model_name} {predictor.model_version} "
        f"(sha256 {predictor.model_sha256[:12]}, "
        f"{'verified' if predictor.sha256_verified else 'unverified'}) on {predictor.provider}; "
        f"scoring {len(inputs)} input(s)",
        err=True,
    )
    show_progress = len(inputs) > 1 and sys.stderr.isatty()
    results = []
    if show_progress:
        with typer.progressbar(length=len(inputs), label="scoring", file=sys.stderr) as bar:
            for result in predictor.iter_predict(inputs):
                results.append(result)
                bar.update(1)
    else:
        results = list(predictor.iter_predict(inputs))
    model_info = {
        "name": predictor.model_name,
        "version": predictor.model_version,
        "sha256": predictor.model_sha256,
        "sha256_verified": predictor.sha256_verified,
        "threshold": predictor.threshold,
        "model_threshold": predictor.metadata.threshold,
    }
    return results, model_info


def read_prediction_records(path: Path) -> list[PredictionResult]:
    """The records of ``mammo-edge predict --format jsonl|json|csv`` (``--predictions``).

    Raises:
        typer.BadParameter: the file cannot be read as records
            (:func:`~mammo_edge.records.read_records` says why).
    """
    from ..records import RecordsError, read_records

    try:
        return read_records(path)
    except RecordsError as error:
        raise typer.BadParameter(str(error), param_hint="--predictions") from None


def _model_of_records(results: list, source: Path) -> dict:
    models = {(r.model_name, r.model_version, r.model_sha256) for r in results}
    if len(models) > 1:
        shown = ", ".join(f"{name} {sha[:12]}" for name, _, sha in sorted(models))
        raise typer.BadParameter(
            f"{source}: records from {len(models)} models ({shown}); evaluate one at a time",
            param_hint="--predictions",
        )
    name, version, sha256 = models.pop()
    return {"name": name, "version": version, "sha256": sha256, "sha256_verified": None}


def _threshold_of_records(results: list, threshold: float | None, source: Path) -> float:
    if threshold is not None:
        return threshold
    found = {r.threshold for r in results if r.threshold is not None}
    if len(found) != 1:
        raise typer.BadParameter(
            f"{source}: records carry {len(found)} different thresholds; pass --threshold",
            param_hint="--predictions",
        )
    return found.pop()


# --- the evaluation -------------------------------------------------------------------


@dataclass(frozen=True)
class Evaluation:
    """Everything measured on the labelled, scored inputs (see :mod:`mammo_edge.metrics`).

    ``auc``, ``roc``, ``youden`` and ``at_reference_specificity`` are ``None`` when the
    labelled images hold one class only (AUC undefined).
    """

    threshold: float
    n: int
    n_patients: int
    auc: AucEstimate | None
    roc: RocCurve | None
    counts: ConfusionMetrics
    youden: OperatingPoint | None
    at_reference_specificity: OperatingPoint | None
    groups: list[GroupMetrics]
    n_errors: int
    errors: list[dict]
    patients_note: str | None


def evaluate_results(
    results: list[PredictionResult], match: LabelMatch, threshold: float
) -> Evaluation:
    """Metrics on every input that is labelled and scored; failed inputs are counted."""
    import numpy as np

    from .. import metrics

    by_path = {result.path: result for result in results}
    labels, scores, patients, groups = [], [], [], []
    missing_patient = 0
    for path, record in match.matched:
        result = by_path[path]
        if not result.ok:
            continue
        labels.append(record.label)
        scores.append(result.probability)
        if record.patient is None:
            missing_patient += 1
        patients.append(record.patient if record.patient is not None else f"image:{path}")
        groups.append(record.group)
    errors = [
        {"path": r.path, "error_code": r.error_code, "error_message": r.error_message}
        for r in results
        if not r.ok
    ]
    labels_array = np.asarray(labels, dtype=np.int64)
    scores_array = np.asarray(scores, dtype=np.float64)
    both = metrics.has_both_classes(labels_array)
    any_patient = missing_patient < len(labels)
    note = None
    if any_patient and missing_patient:
        note = f"{missing_patient} image(s) without a patient count as their own patient"
    auc = (
        metrics.auc_with_ci(labels_array, scores_array, patients if any_patient else None)
        if both
        else None
    )
    return Evaluation(
        threshold=threshold,
        n=len(labels),
        n_patients=len(set(patients)),
        auc=auc,
        roc=metrics.roc_curve(labels_array, scores_array) if both else None,
        counts=metrics.confusion_at(labels_array, scores_array, threshold),
        youden=metrics.youden_threshold(labels_array, scores_array) if both else None,
        at_reference_specificity=(
            metrics.sensitivity_at_specificity(labels_array, scores_array, REFERENCE_SPECIFICITY)
            if both
            else None
        ),
        groups=(
            metrics.per_group(labels_array, scores_array, groups, threshold)
            if any(group is not None for group in groups)
            else []
        ),
        n_errors=len(errors),
        errors=errors,
        patients_note=note,
    )


def _number(value: float | None) -> float | None:
    """JSON has no NaN or infinity: an undefined metric (or a cut above every score) is null."""
    if value is None or not math.isfinite(value):
        return None
    return float(value)


def _auc_undefined_reason(evaluation: Evaluation) -> str:
    which = "abnormal" if evaluation.counts.n_abnormal else "normal"
    return f"AUC is undefined: all {evaluation.n} labelled, scored images are {which}"


def metrics_document(
    evaluation: Evaluation,
    match: LabelMatch,
    truth: Labels,
    model_info: dict,
    predictions: Path | None,
) -> dict:
    """The content of metrics.json (NaN written as null)."""
    counts = evaluation.counts
    auc = evaluation.auc
    document = {
        "model": {key: value for key, value in model_info.items() if key != "threshold"},
        "labels_file": str(truth.source),
        "labels_format": truth.file_format,
        "predictions_file": str(predictions) if predictions is not None else None,
        "n_inputs": len(match.matched) + len(match.inputs_without_label),
        "n": evaluation.n,
        "n_abnormal": counts.n_abnormal,
        "n_normal": counts.n_normal,
        "n_patients": evaluation.n_patients,
        "prevalence": _number(counts.n_abnormal / counts.n if counts.n else float("nan")),
        "auc": _number(auc.auc) if auc else None,
        "auc_ci95": [_number(auc.ci95[0]), _number(auc.ci95[1])] if auc else None,
        "auc_ci_method": auc.method if auc else None,
        "auc_note": None if auc else _auc_undefined_reason(evaluation),
        "patients_note": evaluation.patients_note,
        "threshold": evaluation.threshold,
        "sensitivity": _number(counts.sensitivity),
        "specificity": _number(counts.specificity),
        "ppv": _number(counts.ppv),
        "npv": _number(counts.npv),
        "accuracy": _number(counts.accuracy),
        "balanced_accuracy": _number(counts.balanced_accuracy),
        "always_normal_accuracy": _number(counts.always_normal_accuracy),
        "confusion_matrix": counts.confusion_matrix,
        "confusion_matrix_layout": "[[TN, FP], [FN, TP]]: rows truth, columns call",
        "sensitivity_at_90_specificity": (
            _number(evaluation.at_reference_specificity.sensitivity)
            if evaluation.at_reference_specificity
            else None
        ),
        "operating_point_at_90_specificity": _point(evaluation.at_reference_specificity),
        "youden": _point(evaluation.youden),
        "youden_note": "threshold tuned on these same images: optimistic",
        "per_group": {
            group.group: {
                "n": group.n,
                "n_abnormal": group.n_abnormal,
                "auc": _number(group.auc),
                "sensitivity": _number(group.sensitivity),
                "specificity": _number(group.specificity),
            }
            for group in evaluation.groups
        },
        "n_errors": evaluation.n_errors,
        "errors_by_code": dict(sorted(Counter(e["error_code"] for e in evaluation.errors).items())),
        "errors": evaluation.errors,
        "inputs_without_label": list(match.inputs_without_label),
        "labels_without_input": [
            {"image": record.image, "line": record.line} for record in match.labels_without_input
        ],
    }
    return document


def _point(point: OperatingPoint | None) -> dict | None:
    if point is None:
        return None
    return {
        "threshold": _number(point.threshold),
        "sensitivity": _number(point.sensitivity),
        "specificity": _number(point.specificity),
    }


# --- outputs --------------------------------------------------------------------------

JOINED_COLUMNS = (
    "path",
    "status",
    "probability",
    "predicted",
    "truth",
    "correct",
    "patient",
    "group",
    "finding",
    "labels_image",
    "labels_line",
    "error_code",
    "error_message",
)


def write_joined_predictions(
    path: Path, results: list[PredictionResult], match: LabelMatch, threshold: float
) -> None:
    """predictions.csv: every input (labelled or not), then every label without an input.

    ``predicted`` is the call at ``threshold`` (the evaluation's, which may differ from the
    one a ``--predictions`` file was written with).
    """
    from ..records import csv_cell

    label_of = dict(match.matched)
    with path.open("w", encoding="utf-8-sig", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(JOINED_COLUMNS)
        for result in results:
            record = label_of.get(result.path)
            truth = None if record is None else ("abnormal" if record.label else "normal")
            predicted = correct = None
            if result.ok:
                called_abnormal = result.probability >= threshold
                predicted = "abnormal" if called_abnormal else "normal"
                if record is not None:
                    correct = "yes" if called_abnormal == bool(record.label) else "no"
            row = [
                result.path,
                result.status,
                result.probability,
                predicted,
                truth if truth else "(no label)",
                correct,
                record.patient if record else None,
                record.group if record else None,
                record.finding if record else None,
                record.image if record else None,
                record.line if record else None,
                result.error_code,
                result.error_message,
            ]
            writer.writerow([csv_cell(value) for value in row])
        for record in match.labels_without_input:
            row = [None, "no input", None, None, "abnormal" if record.label else "normal", None]
            row += [record.patient, record.group, record.finding, record.image, record.line]
            row += [None, None]
            writer.writerow([csv_cell(value) for value in row])


def write_roc_svg(path: Path, evaluation: Evaluation, model_name: str) -> None:
    """A small hand-written SVG of the ROC curve; the operating point is a red dot."""
    size, margin = 420, 60
    plot = size - 2 * margin

    def xy(false_positive_rate: float, true_positive_rate: float) -> str:
        x = margin + false_positive_rate * plot
        y = margin + (1 - true_positive_rate) * plot
        return f"{x:.1f},{y:.1f}"

    roc = evaluation.roc
    points = " ".join(
        xy(fpr, tpr)
        for fpr, tpr in zip(roc.false_positive_rate, roc.true_positive_rate, strict=True)
    )
    counts, auc = evaluation.counts, evaluation.auc
    operating_x, operating_y = xy(1 - counts.specificity, counts.sensitivity).split(",")
    ticks = []
    for step in range(6):
        value = step / 5
        x, y = margin + value * plot, margin + (1 - value) * plot
        ticks.append(
            f'<line x1="{x:.1f}" y1="{margin + plot}" x2="{x:.1f}" y2="{margin + plot + 5}" '
            f'stroke="black"/><text x="{x:.1f}" y="{margin + plot + 18}" '
            f'text-anchor="middle">{value:.1f}</text>'
            f'<line x1="{margin - 5}" y1="{y:.1f}" x2="{margin}" y2="{y:.1f}" stroke="black"/>'
            f'<text x="{margin - 8}" y="{y + 4:.1f}" text-anchor="end">{value:.1f}</text>'
        )
    title = (
        f"{model_name}: AUC {auc.auc:.3f} (95% CI {auc.ci95[0]:.3f}-{auc.ci95[1]:.3f}), "
        f"n = {evaluation.n}"
    )
    legend = (
        f"threshold {evaluation.threshold:g}: sensitivity {counts.sensitivity:.2f}, "
        f"specificity {counts.specificity:.2f}"
    )
    svg = f"""<svg xmlns="http://www.w3.org/2000/svg" width="{size}" height="{size + 20}" \
font-family="sans-serif" font-size="11">
<rect width="100%" height="100%" fill="white"/>
<text x="{size / 2}" y="24" text-anchor="middle" font-size="12">{escape(title)}</text>
<rect x="{margin}" y="{margin}" width="{plot}" height="{plot}" fill="none" stroke="black"/>
{"".join(ticks)}
<line x1="{margin}" y1="{margin + plot}" x2="{margin + plot}" y2="{margin}" \
stroke="grey" stroke-dasharray="4 4"/>
<polyline points="{points}" fill="none" stroke="#1f77b4" stroke-width="2"/>
<circle cx="{operating_x}" cy="{operating_y}" r="5" fill="#d62728"/>
<text x="{size / 2}" y="{margin + plot + 36}" text-anchor="middle">1 - specificity</text>
<text x="16" y="{margin + plot / 2}" text-anchor="middle" \
transform="rotate(-90 16 {margin + plot / 2})">sensitivity</text>
<text x="{size / 2}" y="{size + 12}" text-anchor="middle" fill="#d62728">{escape(legend)}</text>
</svg>
"""
    path.write_text(svg, encoding="utf-8")


def write_roc_png(path: Path, evaluation: Evaluation, model_name: str) -> bool:
    """The ROC as a PNG through matplotlib (the ``plot`` extra); False when not installed."""
    try:
        from matplotlib.figure import Figure
    except ImportError:
        return False
    roc, counts, auc = evaluation.roc, evaluation.counts, evaluation.auc
    figure = Figure(figsize=(5, 5))
    axes = figure.add_subplot()
    axes.plot(
        roc.false_positive_rate,
        roc.true_positive_rate,
        label=f"AUC {auc.auc:.3f} (95% CI {auc.ci95[0]:.3f}-{auc.ci95[1]:.3f})",
    )
    axes.plot([0, 1], [0, 1], color="grey", linestyle=":", label="chance")
    axes.plot(
        [1 - counts.specificity],
        [counts.sensitivity],
        "o",
        color="C3",
        label=f"threshold {evaluation.threshold:g}",
    )
    axes.set_xlabel("1 - specificity")
    axes.set_ylabel("sensitivity")
    axes.set_xlim(0, 1)
    axes.set_ylim(0, 1.02)
    axes.set_title(f"{model_name}, n = {evaluation.n}", fontsize=10)
    axes.legend(loc="lower right", fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    return True


# --- the terminal ---------------------------------------------------------------------


def _report_unmatched(match: LabelMatch) -> None:
    """List what did not pair on stderr: nothing is dropped without saying so."""
    for title, names in (
        ("input(s) without a label", list(match.inputs_without_label)),
        (
            "label(s) without an input",
            [f"{record.image} (line {record.line})" for record in match.labels_without_input],
        ),
    ):
        if not names:
            continue
        shown = "\n  ".join(names[:SHOWN_UNMATCHED])
        more = (
            f"\n  ... and {len(names) - SHOWN_UNMATCHED} more"
            if len(names) > SHOWN_UNMATCHED
            else ""
        )
        typer.echo(
            f"mammo-edge: warning: {len(names)} {title} (not evaluated; listed in "
            f"metrics.json and predictions.csv):\n  {shown}{more}",
            err=True,
        )


def _rate(value: float, numerator: int, denominator: int) -> str:
    if math.isnan(value):
        return "undefined (0 images)"
    return f"{value:.3f} ({numerator}/{denominator})"


def summary_text(evaluation: Evaluation, match: LabelMatch, truth: Labels, model_info: dict) -> str:
    """The readable summary printed after an evaluation."""
    counts = evaluation.counts
    lines = [
        f"model {model_info['name']} {model_info['version']} "
        f"(sha256 {model_info['sha256'][:12]}); labels {truth.source} ({truth.file_format})",
        f"evaluated {evaluation.n} image(s) of {evaluation.n_patients} patient(s): "
        f"{counts.n_abnormal} abnormal, {counts.n_normal} normal "
        f"(prevalence {counts.n_abnormal / counts.n:.1%})",
    ]
    skipped = []
    if evaluation.n_errors:
        codes = Counter(error["error_code"] for error in evaluation.errors)
        skipped.append(
            f"{evaluation.n_errors} failed to score ("
            + ", ".join(f"{code} {count}" for code, count in sorted(codes.items()))
            + ")"
        )
    if match.inputs_without_label:
        skipped.append(f"{len(match.inputs_without_label)} input(s) without a label")
    if match.labels_without_input:
        skipped.append(f"{len(match.labels_without_input)} label(s) without an input")
    if skipped:
        lines.append("not evaluated: " + "; ".join(skipped))
    if evaluation.auc is not None:
        auc = evaluation.auc
        lines.append(
            f"AUC {auc.auc:.3f} (95% CI {auc.ci95[0]:.3f}-{auc.ci95[1]:.3f}, {auc.method})"
        )
    else:
        lines.append(_auc_undefined_reason(evaluation) + "; no ROC curve or CI")
    if evaluation.patients_note:
        lines.append(f"note: {evaluation.patients_note}")
    tn, fp = counts.true_negative, counts.false_positive
    fn, tp = counts.false_negative, counts.true_positive
    lines += [
        f"at threshold {evaluation.threshold:g} (abnormal when probability >= threshold):",
        f"{'':>18}{'called normal':>15}{'called abnormal':>17}",
        f"{'truth normal':>18}{tn:>15}{fp:>17}",
        f"{'truth abnormal':>18}{fn:>15}{tp:>17}",
        f"  sensitivity {_rate(counts.sensitivity, tp, tp + fn)}, "
        f"specificity {_rate(counts.specificity, tn, tn + fp)}",
        f"  PPV {_rate(counts.ppv, tp, tp + fp)}, NPV {_rate(counts.npv, tn, tn + fn)}",
        f"  accuracy {counts.accuracy:.3f}, balanced accuracy {counts.balanced_accuracy:.3f}; "
        f"always-normal baseline accuracy {counts.always_normal_accuracy:.3f}",
    ]
    point = evaluation.at_reference_specificity
    if point is not None:
        cut = (
            f"threshold {point.threshold:.4g}"
            if math.isfinite(point.threshold)
            else "threshold above every score"
        )
        lines.append(
            f"sensitivity at {REFERENCE_SPECIFICITY:.0%} specificity: {point.sensitivity:.3f} "
            f"({cut}, specificity {point.specificity:.3f}; chosen on these images)"
        )
    if evaluation.groups:
        lines.append("per group (metrics within each group):")
    for group in evaluation.groups:
        auc_text = "undefined" if math.isnan(group.auc) else f"{group.auc:.3f}"
        lines.append(f"  {group.group}: n {group.n}, {group.n_abnormal} abnormal, AUC {auc_text}")
    return "\n".join(lines)
