"""The ablation table: every candidate's out-of-fold predictions, measured the same way.

Each run (a ``predictions.csv`` with one out-of-fold probability per image, all under the
same patient-grouped folds) gets: AUC with a patient-bootstrap 95% CI, sensitivity at 90%
specificity, AUC per abnormality class and per tissue type against the normals, and the
paired patient-bootstrap difference of its AUC against a baseline (the seed CNN). The
left-right pair feature is added here as one more row per run (``+ pair``), stacked inside
the training folds (:func:`pair_scores`).

    python -m train ablation --data ../shared/mias/all-mias.tar.gz \\
        --run "full recipe=runs/lesion/full/predictions.csv" ... \\
        --baseline "seed CNN=reports/patient/predictions.csv" --out reports/lesion
"""

from __future__ import annotations

import argparse
import csv
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from mammo_edge.evaluation import metrics, repeated_metrics

from .mias import ImageRecord, open_mias

CLASSES = ("CALC", "CIRC", "SPIC", "MISC", "ARCH", "ASYM")
TISSUES = {"F": "fatty", "G": "fatty-glandular", "D": "dense-glandular"}


@dataclass
class RunSummary:
    """What the ablation table says of one candidate (one writer: :func:`summarise`)."""

    name: str
    n: int
    n_abnormal: int
    auc: float
    auc_ci95: tuple[float, float]
    sensitivity_at_90_specificity: float
    threshold_at_90_specificity: float
    per_class_auc: dict[str, dict] = field(default_factory=dict)
    per_tissue_auc: dict[str, dict] = field(default_factory=dict)
    auc_minus_baseline: float | None = None
    auc_minus_baseline_ci95: tuple[float, float] | None = None
    baseline: str | None = None


def read_predictions(path: Path) -> dict[str, tuple[float, int]]:
    """``image -> (probability, fold)`` from a run's ``predictions.csv``."""
    with Path(path).open(newline="") as handle:
        return {
            row["image"]: (float(row["probability"]), int(row["fold"]))
            for row in csv.DictReader(handle)
        }


def aligned(records: list[ImageRecord], predictions: dict) -> tuple[np.ndarray, np.ndarray]:
    """(probabilities, folds) in ``records`` order; every record must have a prediction."""
    missing = [record.reference for record in records if record.reference not in predictions]
    if missing:
        raise ValueError(f"{len(missing)} image(s) have no prediction, e.g. {missing[:3]}")
    probabilities = np.array([predictions[record.reference][0] for record in records])
    folds = np.array([predictions[record.reference][1] for record in records])
    return probabilities, folds


def image_classes(record: ImageRecord) -> set[str]:
    return {row.abnormality_class for row in record.rows if row.abnormality_class != "NORM"}


def summarise(
    name: str,
    records: list[ImageRecord],
    probabilities: np.ndarray,
    baseline: tuple[str, np.ndarray] | None = None,
) -> RunSummary:
    """Measure one candidate's out-of-fold probabilities (aligned with ``records``)."""
    labels = np.array([record.label for record in records])
    patients = np.array([record.patient_id for record in records])
    estimate = metrics.auc_with_ci(labels, probabilities, patients)
    at_90 = metrics.sensitivity_at_specificity(labels, probabilities, 0.9)
    normal = labels == 0
    per_class = {}
    for name_ in CLASSES:
        chosen = normal | np.array([name_ in image_classes(record) for record in records])
        per_class[name_] = _subset_auc(labels, probabilities, patients, chosen)
    per_tissue = {}
    tissues = np.array([record.tissue for record in records])
    for code in TISSUES:
        per_tissue[code] = _subset_auc(labels, probabilities, patients, tissues == code)
    summary = RunSummary(
        name=name,
        n=len(labels),
        n_abnormal=int(labels.sum()),
        auc=estimate.auc,
        auc_ci95=estimate.ci95,
        sensitivity_at_90_specificity=at_90.sensitivity,
        threshold_at_90_specificity=at_90.threshold,
        per_class_auc=per_class,
        per_tissue_auc=per_tissue,
    )
    if baseline is not None:
        difference = repeated_metrics.paired_auc_difference(
            labels, probabilities, baseline[1], patients
        )
        summary.baseline = baseline[0]
        summary.auc_minus_baseline = difference.difference
        summary.auc_minus_baseline_ci95 = difference.ci95
    return summary


def _subset_auc(labels, probabilities, patients, chosen) -> dict:
    estimate = metrics.auc_with_ci(labels[chosen], probabilities[chosen], patients[chosen])
    return {
        "auc": estimate.auc,
        "auc_ci95": list(estimate.ci95),
        "n_abnormal": int(labels[chosen].sum()),
        "n_normal": int((labels[chosen] == 0).sum()),
    }


def partner_index(records: list[ImageRecord]) -> np.ndarray:
    """Index of the other breast of the same patient (-1 when the patient has one image).

    The pairing comes from the MIAS patient numbering (Info.txt), never from file names.
    """
    by_patient: dict[int, list[int]] = {}
    for index, record in enumerate(records):
        by_patient.setdefault(record.patient_id, []).append(index)
    partner = np.full(len(records), -1)
    for members in by_patient.values():
        if len(members) == 2:
            partner[members[0]], partner[members[1]] = members[1], members[0]
    return partner


def pair_scores(
    records: list[ImageRecord], probabilities: np.ndarray, folds: np.ndarray
) -> np.ndarray:
    """Left-against-right: logistic regression on (own logit, own - other breast's logit).

    For each test fold the two coefficients are fitted on the other folds' images only
    (their out-of-fold scores), then applied to the test fold: stacking inside the
    training folds. A patient's two images share a fold, so the partner is always there.
    """
    from sklearn.linear_model import LogisticRegression

    labels = np.array([record.label for record in records])
    partner = partner_index(records)
    logits = np.log(np.clip(probabilities, 1e-6, 1 - 1e-6) / np.clip(1 - probabilities, 1e-6, 1))
    other = np.where(partner >= 0, logits[np.maximum(partner, 0)], logits)
    features = np.stack([logits, logits - other], axis=1)
    stacked = np.empty(len(records))
    for fold in np.unique(folds):
        test = folds == fold
        model = LogisticRegression(C=1.0).fit(features[~test], labels[~test])
        stacked[test] = model.predict_proba(features[test])[:, 1]
    return stacked


def markdown_table(summaries: list[RunSummary]) -> str:
    """The ablation table of docs/results.md."""
    header = (
        "| candidate | AUC (95% CI) | Δ AUC vs seed CNN (95% CI) | sens. @ 90% spec. | "
        + " | ".join(CLASSES)
        + " | F | G | D |\n|"
        + "---|" * (4 + len(CLASSES) + 3)
        + "\n"
    )
    lines = []
    for summary in summaries:
        low, high = summary.auc_ci95
        if summary.auc_minus_baseline is None:
            delta = "—"
        else:
            d_low, d_high = summary.auc_minus_baseline_ci95
            delta = f"{summary.auc_minus_baseline:+.3f} ({d_low:+.3f} to {d_high:+.3f})"
        cells = [
            summary.name,
            f"{summary.auc:.3f} ({low:.3f}–{high:.3f})",
            delta,
            f"{summary.sensitivity_at_90_specificity:.3f}",
        ]
        cells += [_short(summary.per_class_auc[name]) for name in CLASSES]
        cells += [_short(summary.per_tissue_auc[code]) for code in TISSUES]
        lines.append("| " + " | ".join(cells) + " |")
    return header + "\n".join(lines) + "\n"


def _short(entry: dict) -> str:
    auc = entry["auc"]
    return "—" if auc != auc else f"{auc:.2f} (n={entry['n_abnormal']})"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m train ablation", description=__doc__)
    parser.add_argument("--data", required=True, help="MIAS folder or all-mias.tar.gz")
    parser.add_argument("--run", action="append", default=[], help="NAME=predictions.csv")
    parser.add_argument("--baseline", required=True, help="NAME=predictions.csv (seed CNN)")
    parser.add_argument("--pair", action="append", default=[], help="run NAMEs to add '+ pair'")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    records = open_mias(args.data).records
    baseline_name, baseline_path = args.baseline.split("=", 1)
    baseline_scores, baseline_folds = aligned(records, read_predictions(Path(baseline_path)))
    summaries = [summarise(baseline_name, records, baseline_scores)]
    curves = {baseline_name: baseline_scores}
    for run in args.run:
        name, path = run.split("=", 1)
        scores, folds = aligned(records, read_predictions(Path(path)))
        if not np.array_equal(folds, baseline_folds):
            raise SystemExit(f"{name}: its folds differ from the baseline's; not comparable")
        summaries.append(summarise(name, records, scores, (baseline_name, baseline_scores)))
        curves[name] = scores
        if name in args.pair:
            paired = pair_scores(records, scores, folds)
            summaries.append(
                summarise(f"{name} + pair", records, paired, (baseline_name, baseline_scores))
            )
            curves[f"{name} + pair"] = paired
    args.out.mkdir(parents=True, exist_ok=True)
    table = markdown_table(summaries)
    (args.out / "ablation.md").write_text(table)
    (args.out / "ablation.json").write_text(
        json.dumps([asdict(summary) for summary in summaries], indent=2) + "\n"
    )
    _plot(records, curves, args.out / "ablation_roc.png")
    print(table)
    return 0


def _plot(records, curves: dict[str, np.ndarray], path: Path) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return
    labels = np.array([record.label for record in records])
    figure, axes = plt.subplots(figsize=(5.5, 5))
    for name, scores in curves.items():
        curve = metrics.roc_curve(labels, scores)
        axes.plot(
            curve.false_positive_rate,
            curve.true_positive_rate,
            label=f"{name} (AUC {metrics.roc_auc(labels, scores):.3f})",
        )
    axes.plot([0, 1], [0, 1], color="gray", linestyle=":", linewidth=1)
    axes.set_xlabel("1 - specificity")
    axes.set_ylabel("sensitivity")
    axes.set_title(
        "Out-of-fold ROC, 258 mini-MIAS images,\npatient-grouped 5-fold CV (same folds)",
        fontsize=10,
    )
    axes.legend(fontsize=7, loc="lower right")
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)
