"""The evaluation of a model on labelled images: one record, and everything that renders it.

``evaluate`` and ``report --labels`` pair prediction records
(:mod:`mammo_edge.records.record`) with a labels file (:mod:`mammo_edge.evaluation.labels`), then:

* :func:`evaluate_results` measures them into an :class:`Evaluation` (the metrics are
  :mod:`mammo_edge.evaluation.metrics`'s);
* :func:`metrics_document` is the content of ``metrics.json`` (its one writer);
* :func:`write_joined_predictions` writes ``predictions.csv``, truth beside each call;
* :func:`write_evaluation` writes both and the ROC pictures (:mod:`mammo_edge.evaluation.plots`);
* :func:`summary_text` is the readable summary ``evaluate`` prints.

Which model the scores came from travels as :class:`ModelFacts`: the loaded model's (when
the images were scored here) or the records' (``evaluate --predictions``).
"""

from __future__ import annotations

import csv
import json
import math
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from mammo_edge.errors import MammoEdgeError
from mammo_edge.evaluation import metrics

if TYPE_CHECKING:
    from mammo_edge.evaluation.labels import LabelMatch, Labels
    from mammo_edge.evaluation.metrics import (
        AucEstimate,
        ConfusionMetrics,
        GroupMetrics,
        OperatingPoint,
        RocCurve,
    )
    from mammo_edge.records.record import PredictionResult

#: Specificity at which sensitivity is reported (a common screening operating point).
REFERENCE_SPECIFICITY = 0.9
#: Class names when no model is loaded (``evaluate --predictions``): negative, positive.
DEFAULT_CLASS_NAMES = ("normal", "abnormal")
METRICS_NAME = "metrics.json"
PREDICTIONS_NAME = "predictions.csv"


class EvaluationError(MammoEdgeError):
    """The records cannot be evaluated as one run (several models, several thresholds)."""


@dataclass(frozen=True)
class ModelFacts:
    """Which model scored the evaluated images (``metrics.json``'s ``model``).

    Attributes:
        sha256_verified: whether the file matched its manifest; ``None`` when the model
            was not loaded here (records read back).
        model_threshold: the model's own threshold; ``None`` when the model was not loaded.
        class_names: (negative, positive), as the model's metadata names them.
    """

    name: str
    version: str
    sha256: str
    sha256_verified: bool | None = None
    model_threshold: float | None = None
    class_names: tuple[str, str] = DEFAULT_CLASS_NAMES

    @classmethod
    def of_predictor(cls, predictor) -> ModelFacts:
        """The facts of a loaded :class:`~mammo_edge.predictor.Predictor`."""
        negative, positive = predictor.metadata.class_names
        return cls(
            name=predictor.model_name,
            version=predictor.model_version,
            sha256=predictor.model_sha256,
            sha256_verified=predictor.sha256_verified,
            model_threshold=predictor.metadata.threshold,
            class_names=(negative, positive),
        )

    @classmethod
    def of_records(cls, results: list[PredictionResult], source: Path) -> ModelFacts:
        """The one model that wrote ``results`` (read from ``source``).

        Raises:
            EvaluationError: the records name more than one model.
        """
        models = {(r.model_name, r.model_version, r.model_sha256) for r in results}
        if len(models) > 1:
            shown = ", ".join(f"{name} {sha[:12]}" for name, _, sha in sorted(models))
            raise EvaluationError(
                f"{source}: records from {len(models)} models ({shown}); evaluate one at a time"
            )
        name, version, sha256 = models.pop()
        return cls(name=name, version=version, sha256=sha256)

    def as_dict(self) -> dict:
        """``metrics.json``'s ``model``: the threshold only when the model was loaded."""
        facts = {
            "name": self.name,
            "version": self.version,
            "sha256": self.sha256,
            "sha256_verified": self.sha256_verified,
        }
        if self.model_threshold is not None:
            facts["model_threshold"] = self.model_threshold
        return facts


def threshold_of_records(results: list[PredictionResult], source: Path) -> float:
    """The one threshold ``results`` were called at.

    Raises:
        EvaluationError: the records carry several thresholds (or none).
    """
    found = {r.threshold for r in results if r.threshold is not None}
    if len(found) != 1:
        raise EvaluationError(
            f"{source}: records carry {len(found)} different thresholds; pass --threshold"
        )
    return found.pop()


@dataclass(frozen=True)
class Evaluation:
    """Everything measured on the labelled, scored inputs, and what it was measured on.

    ``auc``, ``roc``, ``youden`` and ``at_reference_specificity`` are ``None`` when the
    labelled images hold one class only (AUC undefined).
    """

    model: ModelFacts
    labels: Labels
    match: LabelMatch
    predictions_file: Path | None
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

    @property
    def auc_undefined_reason(self) -> str:
        negative, positive = self.model.class_names
        which = positive if self.counts.n_abnormal else negative
        return f"AUC is undefined: all {self.n} labelled, scored images are {which}"


def evaluate_results(
    results: list[PredictionResult],
    match: LabelMatch,
    threshold: float,
    *,
    model: ModelFacts,
    labels: Labels,
    predictions_file: Path | None = None,
) -> Evaluation:
    """Metrics on every input that is labelled and scored; failed inputs are counted.

    An image without a patient is its own patient; when no image has one, the AUC's
    bootstrap resamples images.
    """
    import numpy as np

    by_path = {result.path: result for result in results}
    truth, scores, patients, groups = [], [], [], []
    missing_patient = 0
    for path, record in match.matched:
        result = by_path[path]
        if not result.ok:
            continue
        truth.append(record.label)
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
    truth_array = np.asarray(truth, dtype=np.int64)
    scores_array = np.asarray(scores, dtype=np.float64)
    both = metrics.has_both_classes(truth_array)
    any_patient = missing_patient < len(truth)
    note = None
    if any_patient and missing_patient:
        note = f"{missing_patient} image(s) without a patient count as their own patient"
    patients_or_none = patients if any_patient else None
    return Evaluation(
        model=model,
        labels=labels,
        match=match,
        predictions_file=predictions_file,
        threshold=threshold,
        n=len(truth),
        n_patients=len(set(patients)),
        auc=metrics.auc_with_ci(truth_array, scores_array, patients_or_none) if both else None,
        roc=metrics.roc_curve(truth_array, scores_array) if both else None,
        counts=metrics.confusion_at(truth_array, scores_array, threshold),
        youden=metrics.youden_threshold(truth_array, scores_array) if both else None,
        at_reference_specificity=(
            metrics.sensitivity_at_specificity(truth_array, scores_array, REFERENCE_SPECIFICITY)
            if both
            else None
        ),
        groups=(
            metrics.per_group(truth_array, scores_array, groups, threshold)
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


def _point(point: OperatingPoint | None) -> dict | None:
    if point is None:
        return None
    return {
        "threshold": _number(point.threshold),
        "sensitivity": _number(point.sensitivity),
        "specificity": _number(point.specificity),
    }


def metrics_document(evaluation: Evaluation) -> dict:
    """The content of ``metrics.json`` (NaN written as null). Keys are the file's schema."""
    counts, auc, match = evaluation.counts, evaluation.auc, evaluation.match
    at_reference = evaluation.at_reference_specificity
    predictions_file = evaluation.predictions_file
    return {
        "model": evaluation.model.as_dict(),
        "labels_file": str(evaluation.labels.source),
        "labels_format": evaluation.labels.file_format,
        "predictions_file": str(predictions_file) if predictions_file is not None else None,
        "n_inputs": len(match.matched) + len(match.inputs_without_label),
        "n": evaluation.n,
        "n_abnormal": counts.n_abnormal,
        "n_normal": counts.n_normal,
        "n_patients": evaluation.n_patients,
        "prevalence": _number(counts.n_abnormal / counts.n if counts.n else float("nan")),
        "auc": _number(auc.auc) if auc else None,
        "auc_ci95": [_number(auc.ci95[0]), _number(auc.ci95[1])] if auc else None,
        "auc_ci_method": auc.method if auc else None,
        "auc_note": None if auc else evaluation.auc_undefined_reason,
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
        "sensitivity_at_90_specificity": _number(at_reference.sensitivity)
        if at_reference
        else None,
        "operating_point_at_90_specificity": _point(at_reference),
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
    path: Path, results: list[PredictionResult], evaluation: Evaluation
) -> None:
    """predictions.csv: every input (labelled or not), then every label without an input.

    ``predicted`` is the call at the evaluation's threshold (which may differ from the one
    a ``--predictions`` file was written with). UTF-8 with a byte-order mark, so that a
    spreadsheet keeps accents; formula-like cells are neutralised.
    """
    from mammo_edge.records.record import csv_cell

    negative, positive = evaluation.model.class_names
    label_of = dict(evaluation.match.matched)
    with path.open("w", encoding="utf-8-sig", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(JOINED_COLUMNS)
        for result in results:
            record = label_of.get(result.path)
            truth = None if record is None else (positive if record.label else negative)
            predicted = correct = None
            if result.ok:
                called_positive = result.probability >= evaluation.threshold
                predicted = positive if called_positive else negative
                if record is not None:
                    correct = "yes" if called_positive == bool(record.label) else "no"
            row = [result.path, result.status, result.probability, predicted]
            row += [truth if truth else "(no label)", correct]
            row += _label_cells(record) + [result.error_code, result.error_message]
            writer.writerow([csv_cell(value) for value in row])
        for record in evaluation.match.labels_without_input:
            row = [None, "no input", None, None, positive if record.label else negative, None]
            row += _label_cells(record) + [None, None]
            writer.writerow([csv_cell(value) for value in row])


def _label_cells(record) -> list:
    """The labels row's columns of predictions.csv (``None`` without a label)."""
    if record is None:
        return [None] * 5
    return [record.patient, record.group, record.finding, record.image, record.line]


def write_evaluation(
    out: Path, results: list[PredictionResult], evaluation: Evaluation, *, png: bool = True
) -> list[str]:
    """Write metrics.json, predictions.csv and the ROC pictures into ``out``.

    ``roc.svg`` (and ``roc.png`` with ``png`` and matplotlib installed) when the ROC is
    defined; an earlier run's picture is removed, so it cannot pass for this one.

    Returns:
        The names of the files written, in that order.

    Raises:
        OSError: a file cannot be written.
    """
    from mammo_edge.evaluation.plots import PNG_NAME, SVG_NAME, write_roc_png, write_roc_svg

    document = metrics_document(evaluation)
    (out / METRICS_NAME).write_text(
        json.dumps(document, indent=2, ensure_ascii=False) + "\n", encoding="utf-8"
    )
    write_joined_predictions(out / PREDICTIONS_NAME, results, evaluation)
    written = [METRICS_NAME, PREDICTIONS_NAME]
    for stale in (SVG_NAME, PNG_NAME) if png else (SVG_NAME,):
        (out / stale).unlink(missing_ok=True)
    if evaluation.roc is not None:
        write_roc_svg(out / SVG_NAME, evaluation)
        written.append(SVG_NAME)
        if png and write_roc_png(out / PNG_NAME, evaluation):
            written.append(PNG_NAME)
    return written
