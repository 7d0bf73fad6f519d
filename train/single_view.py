"""Single-view scoring of a pair-head model: its head and operating points, out of sample.

``lite0-pair``'s head and thresholds were fitted on images weighed against the other
breast. An image that arrives alone (one DICOM, an HTTP upload, ``--group-by none``) needs
its own: this command fits them on the *same* out-of-fold network scores the pair head
was fitted on (``python -m train repeated``'s ``predictions.csv``: every MIAS image scored
by fold models that never saw its patient, in three patient splits), exactly as the pair's
were:

- the single-view head is a logistic head on the network logit alone
  (:func:`train.heads.fit_head`), cross-fitted per fold for the figures and refitted on
  every repeat's out-of-fold scores for the shipped head;
- its ``triage`` and ``balanced`` thresholds are the rules on the pooled cross-fitted
  scores; the sensitivity and specificity printed beside them are out of sample (each
  fold judged at the threshold chosen on the other folds).

It also answers what the pair head does to patients with findings in *both* breasts (a
breast that scores like its twin is read as normal): their out-of-fold recall with the pair
head and with single views, at each model's own balanced and triage points.

Outputs: ``OUT/single_view.json`` (head, points, figures) and ``OUT/single_view.md``.
"""

from __future__ import annotations

import argparse
import csv
import json
from pathlib import Path

import numpy as np

from mammo_edge.evaluation import metrics, repeated_metrics

from .heads import fit_head, logit

#: The network-only column of ``predictions.csv`` (breast windows + flip average) and the
#: pair head's column: the shipped lite0-pair network and head.
NETWORK_COLUMN = "+ flip"
PAIR_COLUMN = "+ other breast"
OPERATING_POINTS = ("triage", "balanced")
RULES = {
    "triage": "highest threshold with sensitivity >= 0.90",
    "balanced": "Youden's J (sensitivity + specificity - 1) at its maximum",
}


def read_predictions(path: Path) -> dict:
    """``predictions.csv`` as arrays: ``labels``/``patients``/``images`` (N,), and per
    repeat ``folds``, ``network`` and ``pair`` scores, each (R, N), images in one order."""
    by_repeat: dict[str, dict[str, dict]] = {}
    with path.open(newline="") as handle:
        for row in csv.DictReader(handle):
            by_repeat.setdefault(row["repeat"], {})[row["image"]] = row
    names = sorted(by_repeat)
    images = sorted(by_repeat[names[0]])
    first = by_repeat[names[0]]

    def column(key, cast=float):
        return np.array([[cast(by_repeat[r][i][key]) for i in images] for r in names])

    return {
        "repeats": names,
        "images": images,
        "labels": np.array([int(first[i]["label"]) for i in images]),
        "patients": np.array([int(first[i]["patient"]) for i in images]),
        "folds": column("fold", int),
        "network": column(NETWORK_COLUMN),
        "pair": column(PAIR_COLUMN),
    }


def pair_features(network: np.ndarray, patients: np.ndarray) -> np.ndarray:
    """(own logit, own - other breast's logit) per image; 0 difference without a partner."""
    own = logit(network)
    partner = np.array(
        [
            next((j for j in np.flatnonzero(patients == p) if j != i), i)
            for i, p in enumerate(patients)
        ]
    )
    return np.column_stack([own, own - own[partner]])


def nested_calls(features: np.ndarray, labels, folds, rule: str) -> np.ndarray:
    """Each fold's calls with the head *and* its threshold fitted on the other folds only.

    The head of fold ``k`` is fitted on the other folds' features; the rule then picks its
    threshold on the other folds' probabilities under that same head, and fold ``k`` is
    judged by both. No label of fold ``k`` chose anything it is judged by.
    """
    calls = np.zeros(len(labels), dtype=bool)
    names = [f"f{i}" for i in range(features.shape[1])]
    choose = repeated_metrics.OPERATING_POINT_RULES[rule]
    for fold in np.unique(folds):
        test = folds == fold
        head = fit_head(features[~test], labels[~test], names)
        train_scores = head_probabilities(head, features[~test])
        threshold = choose(labels[~test], train_scores).threshold
        calls[test] = head_probabilities(head, features[test]) >= threshold
    return calls


def head_probabilities(head, features: np.ndarray) -> np.ndarray:
    return np.array(
        [head.probability(dict(zip(head.features, row, strict=True))) for row in features]
    )


def out_of_sample_points(labels, features_by_repeat, folds_by_repeat) -> dict:
    """Each rule's nested calls (:func:`nested_calls`) per repeat; figures averaged over
    repeats, and the per-image calls (R, N) for subgroup recall."""
    truth = labels == 1
    result = {}
    for rule in OPERATING_POINTS:
        calls = np.array(
            [
                nested_calls(features, labels, folds, rule)
                for features, folds in zip(features_by_repeat, folds_by_repeat, strict=True)
            ]
        )
        sensitivity = (calls & truth).sum(axis=1) / truth.sum()
        specificity = (~calls & ~truth).sum(axis=1) / (~truth).sum()
        accuracy = (calls == truth).mean(axis=1)
        result[rule] = {
            "sensitivity": float(sensitivity.mean()),
            "specificity": float(specificity.mean()),
            "balanced_accuracy": float(((sensitivity + specificity) / 2).mean()),
            "accuracy": float(accuracy.mean()),
            "always_normal_accuracy": float((~truth).mean()),
            "per_repeat_sensitivity": sensitivity.tolist(),
            "calls": calls,
        }
    return result


def shipped_points(head, network, labels, measured: dict) -> dict:
    """The thresholds a model ships: each rule on the shipped head's probabilities of the
    pooled out-of-fold scores, with the out-of-sample figures of :func:`out_of_sample_points`
    (head and threshold fitted inside the training folds) beside them."""
    repeats = len(network)
    pooled_labels = np.tile(labels, repeats)
    pooled = head_probabilities(head, logit(network.reshape(-1))[:, None])
    points = {}
    for rule in OPERATING_POINTS:
        chosen = repeated_metrics.OPERATING_POINT_RULES[rule](pooled_labels, pooled)
        figures = measured[rule]
        points[rule] = {
            "threshold": float(chosen.threshold),
            "rule": RULES[rule],
            **{key: figures[key] for key in FIGURES},
            "source": (
                "threshold: the rule on the single-view head's probabilities of the pooled "
                f"out-of-fold scores of {repeats} repeats x {len(labels)} MIAS images, each "
                "scored alone; sensitivity/specificity: out of sample, each fold judged by a "
                "head and threshold fitted on the other folds, mean over repeats"
            ),
        }
    default = max(OPERATING_POINTS, key=lambda rule: points[rule]["balanced_accuracy"])
    return {"default": default, "points": points}


FIGURES = ("sensitivity", "specificity", "balanced_accuracy", "accuracy", "always_normal_accuracy")


def both_breasts_abnormal(data: dict, single: dict, pair: dict) -> dict:
    """Recall of the images of patients with findings in both breasts, out of fold."""
    labels, patients = data["labels"], data["patients"]
    abnormal_patients = [p for p in np.unique(patients) if labels[patients == p].sum() == 2]
    chosen = np.isin(patients, abnormal_patients)
    others = (labels == 1) & ~chosen

    def recall(calls, subset):
        return float(calls[:, subset].mean()) if subset.any() else float("nan")

    return {
        "patients": len(abnormal_patients),
        "images": int(chosen.sum()),
        "patient_ids": [int(p) for p in abnormal_patients],
        "recall": {
            f"{name} {rule}": {
                "both_breasts_abnormal": recall(points[rule]["calls"], chosen),
                "other_abnormal_images": recall(points[rule]["calls"], others),
            }
            for name, points in (("paired", pair), ("single-view", single))
            for rule in OPERATING_POINTS
        },
    }


def analyse(data: dict, replicates: int = repeated_metrics.BOOTSTRAP_REPLICATES) -> dict:
    """Everything :func:`main` writes, from :func:`read_predictions`'s arrays."""
    labels, patients, folds, network = (
        data["labels"],
        data["patients"],
        data["folds"],
        data["network"],
    )
    single = out_of_sample_points(labels, [logit(n)[:, None] for n in network], folds)
    pair = out_of_sample_points(labels, [pair_features(n, patients) for n in network], folds)
    pooled_labels = np.tile(labels, len(network))
    head = fit_head(logit(network.reshape(-1))[:, None], pooled_labels, ["cnn_logit"])

    def auc(scores):
        estimate = repeated_metrics.repeated_auc_with_ci(
            labels, scores, patients, replicates=replicates
        )
        return {
            "auc": estimate.auc,
            "auc_ci95": list(estimate.ci95),
            "per_repeat_auc": [metrics.roc_auc(labels, s) for s in scores],
        }

    def figures(points):
        return {
            rule: {k: v for k, v in values.items() if k != "calls"}
            for rule, values in points.items()
        }

    return {
        "source": (
            "out-of-fold network scores of the lite0 recipe (breast windows + flip average), "
            f"{len(network)} patient-grouped 5-fold splits"
        ),
        "n": len(labels),
        "n_abnormal": int(labels.sum()),
        "single_view": {
            # A one-feature logistic head is monotone: it ranks as the network does.
            **auc(network),
            "operating_points_out_of_sample": figures(single),
        },
        "paired": {**auc(data["pair"]), "operating_points_out_of_sample": figures(pair)},
        "head": {"single": head.as_dict()},
        "operating_points": {"single_view": shipped_points(head, network, labels, single)},
        "both_breasts_abnormal": both_breasts_abnormal(data, single, pair),
    }


def markdown(result: dict) -> str:
    """The figures as a Markdown table (``OUT/single_view.md``)."""
    lines = [
        "| scored as | AUC (95% CI) | point | sensitivity | specificity | balanced acc. |",
        "|---|---|---|---|---|---|",
    ]
    for name, key in (("paired (other breast)", "paired"), ("single view", "single_view")):
        block = result[key]
        low, high = block["auc_ci95"]
        for rule in OPERATING_POINTS:
            values = block["operating_points_out_of_sample"][rule]
            lines.append(
                f"| {name} | {block['auc']:.3f} ({low:.3f}–{high:.3f}) | `{rule}` "
                f"| {values['sensitivity']:.3f} | {values['specificity']:.3f} "
                f"| {values['balanced_accuracy']:.3f} |"
            )
    both = result["both_breasts_abnormal"]
    lines += [
        "",
        f"Patients with findings in both breasts: {both['patients']} ({both['images']} images).",
        "",
        "| model, point | recall, both breasts abnormal | recall, other abnormal images |",
        "|---|---|---|",
    ]
    for name, values in both["recall"].items():
        lines.append(
            f"| {name} | {values['both_breasts_abnormal']:.3f} "
            f"| {values['other_abnormal_images']:.3f} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m train single-view", description=__doc__.split("\n")[0]
    )
    parser.add_argument(
        "--predictions",
        type=Path,
        default=Path("reports/repeated/predictions.csv"),
        help="`python -m train repeated`'s per-image out-of-fold scores",
    )
    parser.add_argument("--out", type=Path, default=Path("reports/single-view"))
    args = parser.parse_args(argv)
    result = analyse(read_predictions(args.predictions))
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "single_view.json").write_text(json.dumps(result, indent=2) + "\n")
    table = markdown(result)
    (args.out / "single_view.md").write_text(table)
    print(table)
    return 0
