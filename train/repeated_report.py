"""The repeated cross-validation's files: the table, the per-image scores, the ROC figure.

Written by ``python -m train repeated`` into its ``--out`` folder beside ``metrics.json``:
``table.md`` (:func:`markdown_table`), ``predictions.csv`` (:func:`write_predictions`) and
``roc.png`` (:func:`plot_roc`).
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from mammo_edge.evaluation import metrics

from .repeated_candidates import Candidate, Repeat


def _difference_cell(entry: dict | None) -> str:
    if not entry:
        return "—"
    low, high = entry["ci95"]
    return f"{entry['difference']:+.3f} ({low:+.3f} to {high:+.3f})"


def markdown_table(described: list[dict]) -> str:
    """One row per candidate of :func:`train.repeated_candidates.describe`'s figures."""
    lines = [
        "| candidate | kept | AUC, mean of repeats (95% CI) | Δ vs previous kept (95% CI) "
        "| Δ vs lite0 (95% CI) | spec. @ 90% sens. | CALC | dense | balanced acc. (triage / "
        "balanced point, out of sample) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for d in described:
        points = d["operating_points_out_of_sample"]
        low, high = d["auc_ci95"]
        triage, balanced = points["triage"], points["balanced"]
        lines.append(
            f"| {d['name']} | {'yes' if d['kept'] else 'no'} | {d['auc']:.3f} "
            f"({low:.3f}–{high:.3f}) | {_difference_cell(d['difference_to_previous_kept'])} "
            f"| {_difference_cell(d['difference_to_lite0'])} "
            f"| {d['specificity_at_90_sensitivity']:.3f} "
            f"| {d['per_class_auc']['CALC']['auc']:.2f} | {d['per_tissue_auc']['D']['auc']:.2f} "
            f"| {triage['balanced_accuracy']:.3f} / {balanced['balanced_accuracy']:.3f} |"
        )
    return "\n".join(lines) + "\n"


def write_predictions(path: Path, repeats: list[Repeat], records, chain: list[Candidate]) -> None:
    """Every (repeat, image): patient, fold, label and each candidate's score (6 decimals)."""
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["repeat", "image", "patient", "fold", "label", *[c.name for c in chain]])
        for r, repeat in enumerate(repeats):
            for i, record in enumerate(records):
                writer.writerow(
                    [
                        repeat.name,
                        record.reference,
                        record.patient_id,
                        int(repeat.folds[i]),
                        record.label,
                        *(f"{c.scores[r, i]:.6f}" for c in chain),
                    ]
                )


def plot_roc(labels: np.ndarray, chain: list[Candidate], path: Path) -> None:
    """Each candidate's ROC curve, all repeats' out-of-fold scores pooled, as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(5.5, 5.5))
    for candidate in chain:
        curve = metrics.roc_curve(
            np.tile(labels, len(candidate.scores)), candidate.scores.reshape(-1)
        )
        axis.plot(curve.false_positive_rate, curve.true_positive_rate, label=candidate.name)
    axis.plot([0, 1], [0, 1], color="gray", linestyle=":")
    axis.set_xlabel("1 - specificity")
    axis.set_ylabel("sensitivity")
    axis.set_title("Out of fold, all repeats pooled")
    axis.legend(loc="lower right", fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)
