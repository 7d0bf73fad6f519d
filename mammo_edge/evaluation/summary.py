"""An :class:`~mammo_edge.evaluation.results.Evaluation` in words: the terminal summary and the
metric rows of the report page.

``evaluate`` prints :func:`summary_text` and :func:`unmatched_warnings`; ``report
--labels`` shows :func:`metric_rows` in its table. The numbers are the evaluation's; only
the wording lives here.
"""

from __future__ import annotations

import math
from collections import Counter
from typing import TYPE_CHECKING

from mammo_edge.evaluation.results import METRICS_NAME, PREDICTIONS_NAME, REFERENCE_SPECIFICITY

if TYPE_CHECKING:
    from mammo_edge.evaluation.labels import LabelMatch
    from mammo_edge.evaluation.results import Evaluation


def rate_text(value: float, numerator: int, denominator: int, undefined: str = "undefined") -> str:
    """A rate with the counts behind it, ``0.828 (77/93)``; ``undefined`` when 0/0."""
    if math.isnan(value):
        return undefined
    return f"{value:.3f} ({numerator}/{denominator})"


def unmatched_warnings(match: LabelMatch, shown: int = 10) -> list[str]:
    """What did not pair, one warning per kind, ``shown`` names each then "... and N more"."""
    warnings = []
    for title, names in (
        ("input(s) without a label", list(match.inputs_without_label)),
        (
            "label(s) without an input",
            [f"{record.image} (line {record.line})" for record in match.labels_without_input],
        ),
    ):
        if not names:
            continue
        listed = "\n  ".join(names[:shown])
        more = f"\n  ... and {len(names) - shown} more" if len(names) > shown else ""
        warnings.append(
            f"{len(names)} {title} (not evaluated; listed in {METRICS_NAME} and "
            f"{PREDICTIONS_NAME}):\n  {listed}{more}"
        )
    return warnings


def summary_text(evaluation: Evaluation) -> str:
    """The readable summary ``evaluate`` prints: counts, AUC, confusion matrix, rates."""
    model, counts, match = evaluation.model, evaluation.counts, evaluation.match
    negative, positive = model.class_names
    lines = [
        f"model {model.name} {model.version} (sha256 {model.sha256[:12]}); "
        f"labels {evaluation.labels.source} ({evaluation.labels.file_format})",
        f"evaluated {evaluation.n} image(s) of {evaluation.n_patients} patient(s): "
        f"{counts.n_abnormal} {positive}, {counts.n_normal} {negative} "
        f"(prevalence {counts.n_abnormal / counts.n:.1%})",
    ]
    skipped = []
    if evaluation.n_errors:
        codes = Counter(error["error_code"] for error in evaluation.errors)
        listed = ", ".join(f"{code} {count}" for code, count in sorted(codes.items()))
        skipped.append(f"{evaluation.n_errors} failed to score ({listed})")
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
        lines.append(evaluation.auc_undefined_reason + "; no ROC curve or CI")
    if evaluation.patients_note:
        lines.append(f"note: {evaluation.patients_note}")
    lines += _confusion_lines(evaluation)
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
        lines.append(f"  {group.group}: n {group.n}, {group.n_abnormal} {positive}, AUC {auc_text}")
    return "\n".join(lines)


def _confusion_lines(evaluation: Evaluation) -> list[str]:
    """The confusion matrix at the threshold and the rates read from it."""
    counts = evaluation.counts
    negative, positive = evaluation.model.class_names
    tn, fp = counts.true_negative, counts.false_positive
    fn, tp = counts.false_negative, counts.true_positive

    def rate(value: float, numerator: int, denominator: int) -> str:
        return rate_text(value, numerator, denominator, undefined="undefined (0 images)")

    return [
        f"at threshold {evaluation.threshold:g} ({positive} when probability >= threshold):",
        f"{'':>18}{f'called {negative}':>15}{f'called {positive}':>17}",
        f"{f'truth {negative}':>18}{tn:>15}{fp:>17}",
        f"{f'truth {positive}':>18}{fn:>15}{tp:>17}",
        f"  sensitivity {rate(counts.sensitivity, tp, tp + fn)}, "
        f"specificity {rate(counts.specificity, tn, tn + fp)}",
        f"  PPV {rate(counts.ppv, tp, tp + fp)}, NPV {rate(counts.npv, tn, tn + fn)}",
        f"  accuracy {counts.accuracy:.3f}, balanced accuracy {counts.balanced_accuracy:.3f}; "
        f"always-{negative} baseline accuracy {counts.always_normal_accuracy:.3f}",
    ]


def metric_rows(evaluation: Evaluation) -> list[tuple[str, str]]:
    """(name, value) rows of the report's metrics table."""
    counts = evaluation.counts
    negative, positive = evaluation.model.class_names
    tn, fp = counts.true_negative, counts.false_positive
    fn, tp = counts.false_negative, counts.true_positive
    rows = [
        (
            "Images evaluated",
            f"{evaluation.n} ({counts.n_abnormal} {positive}, {counts.n_normal} {negative})",
        ),
        ("Patients", str(evaluation.n_patients)),
    ]
    if evaluation.auc is not None:
        auc = evaluation.auc
        rows.append(
            ("AUC (95% CI)", f"{auc.auc:.3f} ({auc.ci95[0]:.3f}-{auc.ci95[1]:.3f}, {auc.method})")
        )
    else:
        rows.append(("AUC", evaluation.auc_undefined_reason))
    rows += [
        (f"Sensitivity at {evaluation.threshold:g}", rate_text(counts.sensitivity, tp, tp + fn)),
        (f"Specificity at {evaluation.threshold:g}", rate_text(counts.specificity, tn, tn + fp)),
        ("PPV", rate_text(counts.ppv, tp, tp + fp)),
        ("NPV", rate_text(counts.npv, tn, tn + fn)),
        ("Accuracy", f"{counts.accuracy:.3f}"),
        ("Balanced accuracy", f"{counts.balanced_accuracy:.3f}"),
        (f"Always-{negative} accuracy (baseline)", f"{counts.always_normal_accuracy:.3f}"),
    ]
    point = evaluation.at_reference_specificity
    if point is not None:
        rows.append(
            (
                f"Sensitivity at {REFERENCE_SPECIFICITY:.0%} specificity (chosen on these images)",
                f"{point.sensitivity:.3f}",
            )
        )
    return rows
