"""Repeated cross-validation of the lite0 recipe and what each inference-time step buys.

``python -m train repeated --data MIAS --run runs/repeated/seed_0 --run ... --out DIR``

Input: three or more runs of ``python -m train --arch lite0 --seed S`` (each a
patient-grouped 5-fold split of its own, fold weights kept in ``folds/``). Nothing is
trained again: every candidate below is scored by the *same* fold models on the *same*
splits, so the differences between candidates are paired.

Candidates, in the order they are tried (fixed before any was scored); a step is kept
when its paired difference to the candidate before it, averaged over repeats, is above 0
with a 95% patient-bootstrap interval whose lower end is above -0.01 (the same rule that
decides whether a model may replace the default):

1. ``lite0``: the recipe as shipped.
2. ``+ breast windows``: windows mostly off the breast cannot hold the score or the peak
   (``lite0.Networks.image_model(breast_windows_only=True)``).
3. ``+ flip``: test-time augmentation, the top-bottom mirror averaged in.
4. ``+ calcifications``: a logistic head on (CNN logit, the three full-resolution
   cluster features of ``mammo_edge.calcifications``).
5. ``+ other breast``: the same head plus (own - other breast's) CNN logit and cluster
   feature, when the patient's other image is present.

Stacking heads and operating points are *cross-fitted*: for test fold k they are fitted on
the labels and out-of-fold scores of the other folds' images only, so no image's label
chooses the weights or the threshold it is judged at. (The CNNs that scored those other
images were trained with fold k among their data; a fully nested inner CV would cost four
times the training. We state it rather than hide it.)

Writes ``DIR/metrics.json`` (every candidate: mean AUC over repeats with CI, paired
differences, per class and tissue, operating points out of sample), ``DIR/table.md``,
``DIR/predictions.csv`` (every image, repeat and candidate), ``DIR/roc.png``,
``DIR/calcification_features.csv`` and ``DIR/head.json`` (the shipped head and thresholds,
fitted on all repeats' out-of-fold scores).
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from mammo_edge import metrics, repeated_metrics
from mammo_edge.stacking import PAIR_FEATURE

from .ablation import CLASSES, TISSUES, image_classes
from .heads import (
    cross_fitted_head,
    fit_head,
    head_feature_names,
    head_features,
    logit,
    partner_index,
)
from .mias import ImageRecord, open_mias
from .variants import VARIANTS, calcification_table, score_variants

#: Ship rule: paired difference above 0 and its 95% interval's lower end above this.
KEEP_LOWER_BOUND = -0.01
#: Patient-bootstrap replicates behind every interval (tests lower it).
REPLICATES = metrics.BOOTSTRAP_REPLICATES
OPERATING_POINTS = ("triage", "balanced")


# --- the analysis -------------------------------------------------------------------


@dataclass
class Repeat:
    """One patient split: folds and the fold models' scores of every variant."""

    name: str
    folds: np.ndarray
    variants: dict[str, np.ndarray]


def read_repeat(run: Path, records: list[ImageRecord]) -> Repeat:
    with (run / "variants.csv").open(newline="") as handle:
        rows = {row["image"]: row for row in csv.DictReader(handle)}
    missing = [r.reference for r in records if r.reference not in rows]
    if missing:
        raise ValueError(f"{run}: {len(missing)} images have no score, e.g. {missing[:3]}")
    return Repeat(
        run.name,
        np.array([int(rows[r.reference]["fold"]) for r in records]),
        {name: np.array([float(rows[r.reference][name]) for r in records]) for name in VARIANTS},
    )


@dataclass
class Candidate:
    name: str
    scores: np.ndarray  # (R, N)
    kept: bool = True
    against: str | None = None
    difference: dict = field(default_factory=dict)
    difference_to_lite0: dict = field(default_factory=dict)


def build_candidates(repeats, records, calcifications) -> list[Candidate]:
    """The chain of candidates (module notes), each decided against the last kept one."""
    labels = np.array([record.label for record in records])
    patients = np.array([record.patient_id for record in records])
    partner = partner_index(records)

    def stack(cnn_by_repeat, pair):
        return np.array(
            [
                cross_fitted_head(
                    head_features(cnn, calcifications, partner if pair else None),
                    labels,
                    repeat.folds,
                )
                for cnn, repeat in zip(cnn_by_repeat, repeats, strict=True)
            ]
        )

    def variant(name):
        return np.array([repeat.variants[name] for repeat in repeats])

    chain = [Candidate("lite0", variant("plain"))]
    kept = chain[0]
    kept_windows = False
    kept_flip = False
    kept_cnn = variant("plain")

    def decide(candidate: Candidate) -> bool:
        nonlocal kept
        difference = repeated_metrics.repeated_paired_auc_difference(
            labels, candidate.scores, kept.scores, patients, replicates=REPLICATES
        )
        candidate.against = kept.name
        candidate.difference = _difference(difference)
        candidate.difference_to_lite0 = _difference(
            repeated_metrics.repeated_paired_auc_difference(
                labels, candidate.scores, chain[0].scores, patients, replicates=REPLICATES
            )
        )
        candidate.kept = difference.difference > 0 and difference.ci95[0] > KEEP_LOWER_BOUND
        chain.append(candidate)
        if candidate.kept:
            kept = candidate
        return candidate.kept

    if decide(Candidate("+ breast windows", variant("breast_windows"))):
        kept_windows = True
        kept_cnn = variant("breast_windows")
    flip_name = "breast_windows_flip" if kept_windows else "flip"
    if decide(Candidate("+ flip", variant(flip_name))):
        kept_flip = True
        kept_cnn = variant(flip_name)
    stacked_calc = stack(kept_cnn, pair=False)
    kept_calc = decide(Candidate("+ calcifications", stacked_calc))
    if kept_calc:
        pair_scores = stack(kept_cnn, pair=True)
    else:  # the pair head without the calcification columns
        pair_scores = np.array(
            [
                cross_fitted_head(_pair_only(cnn, partner), labels, repeat.folds)
                for cnn, repeat in zip(kept_cnn, repeats, strict=True)
            ]
        )
    decide(Candidate("+ other breast", pair_scores))
    for candidate in chain:
        candidate.recipe = {  # type: ignore[attr-defined]
            "breast_windows": kept_windows,
            "flip": kept_flip,
        }
    return chain


def _pair_only(cnn, partner):
    own = logit(cnn)
    other = np.where(partner >= 0, own[np.maximum(partner, 0)], own)
    return np.column_stack([own, own - other])


def _difference(estimate) -> dict:
    return {"difference": estimate.difference, "ci95": list(estimate.ci95)}


def operating_points(labels, scores_by_repeat, repeats) -> dict:
    """Each rule's thresholds cross-fitted per fold; counts pooled over repeats."""
    result = {}
    for rule in OPERATING_POINTS:
        counts = [
            repeated_metrics.confusion_at_thresholds(
                labels,
                scores,
                repeated_metrics.cross_fitted_thresholds(labels, scores, repeat.folds, rule),
            )
            for scores, repeat in zip(scores_by_repeat, repeats, strict=True)
        ]
        result[rule] = {
            "sensitivity": float(np.mean([c.sensitivity for c in counts])),
            "specificity": float(np.mean([c.specificity for c in counts])),
            "accuracy": float(np.mean([c.accuracy for c in counts])),
            "balanced_accuracy": float(np.mean([c.balanced_accuracy for c in counts])),
            "always_normal_accuracy": float((labels == 0).mean()),
            "confusion_matrix_summed": np.sum(
                [c.confusion_matrix for c in counts], axis=0
            ).tolist(),
            "per_repeat_balanced_accuracy": [c.balanced_accuracy for c in counts],
        }
    return result


def describe(candidate: Candidate, records, repeats) -> dict:
    labels = np.array([record.label for record in records])
    patients = np.array([record.patient_id for record in records])
    tissues = np.array([record.tissue for record in records])
    estimate = repeated_metrics.repeated_auc_with_ci(
        labels, candidate.scores, patients, replicates=REPLICATES
    )

    def subset(chosen):
        sub = repeated_metrics.repeated_auc_with_ci(
            labels[chosen], candidate.scores[:, chosen], patients[chosen], replicates=REPLICATES
        )
        return {"auc": sub.auc, "auc_ci95": list(sub.ci95), "n_abnormal": int(labels[chosen].sum())}

    normal = labels == 0
    per_class = {
        name: subset(normal | np.array([name in image_classes(r) for r in records]))
        for name in CLASSES
    }
    per_tissue = {code: subset(tissues == code) for code in TISSUES}
    specificity_at_90 = float(
        np.mean(
            [
                metrics.specificity_at_sensitivity(labels, s, 0.90).specificity
                for s in candidate.scores
            ]
        )
    )
    return {
        "name": candidate.name,
        "kept": candidate.kept,
        "decided_against": candidate.against,
        "auc": estimate.auc,
        "auc_ci95": list(estimate.ci95),
        "per_repeat_auc": [metrics.roc_auc(labels, s) for s in candidate.scores],
        "difference_to_previous_kept": candidate.difference or None,
        "difference_to_lite0": candidate.difference_to_lite0 or None,
        "specificity_at_90_sensitivity": specificity_at_90,
        "per_class_auc": per_class,
        "per_tissue_auc": per_tissue,
        "operating_points_out_of_sample": operating_points(labels, candidate.scores, repeats),
    }


def shipped_head(chain, described, repeats, records, calcifications) -> dict:
    """What the shipped model carries: its network variant, head and operating points.

    The head is refitted on every repeat's out-of-fold scores; each operating point's
    threshold is its rule applied to the final candidate's pooled out-of-fold scores, and
    the sensitivity/specificity printed beside it are the cross-fitted, out-of-sample
    ones of :func:`operating_points`. The default point is the one whose out-of-sample
    balanced accuracy is higher.
    """
    labels = np.array([record.label for record in records])
    recipe = chain[0].recipe  # type: ignore[attr-defined]
    cnn_name = {
        (False, False): "plain",
        (True, False): "breast_windows",
        (False, True): "flip",
        (True, True): "breast_windows_flip",
    }[(recipe["breast_windows"], recipe["flip"])]
    names = {candidate.name: candidate for candidate in chain}
    cnn = np.concatenate([repeat.variants[cnn_name] for repeat in repeats])
    all_labels = np.tile(labels, len(repeats))
    calc = np.tile(calcifications, (len(repeats), 1))
    heads = {}
    if names["+ calcifications"].kept:
        heads["single"] = fit_head(
            head_features(cnn, calc, None), all_labels, head_feature_names(False)
        ).as_dict()
    final_index = max(i for i, candidate in enumerate(chain) if candidate.kept)
    final = chain[final_index]
    if final.name == "+ other breast":
        partner = partner_index(records)
        pooled_partner = np.concatenate(
            [partner + (partner >= 0) * i * len(labels) for i in range(len(repeats))]
        )
        if names["+ calcifications"].kept:
            # The runtime's pair head reads the other breast's network logit only.
            raise NotImplementedError("a pair head with calcification features")
        heads = {
            "pair": fit_head(
                _pair_only(cnn, pooled_partner), all_labels, ["cnn_logit", PAIR_FEATURE]
            ).as_dict()
        }
    pooled = final.scores.reshape(-1)
    out_of_sample = described[final_index]["operating_points_out_of_sample"]
    rules = {
        "triage": "highest threshold with sensitivity >= 0.90",
        "balanced": "Youden's J (sensitivity + specificity - 1) at its maximum",
    }
    points = {}
    for rule in OPERATING_POINTS:
        measured = out_of_sample[rule]
        points[rule] = {
            "threshold": repeated_metrics.OPERATING_POINT_RULES[rule](all_labels, pooled).threshold,
            "rule": rules[rule],
            "sensitivity": measured["sensitivity"],
            "specificity": measured["specificity"],
            "balanced_accuracy": measured["balanced_accuracy"],
            "accuracy": measured["accuracy"],
            "always_normal_accuracy": measured["always_normal_accuracy"],
            "source": (
                f"threshold: the rule on the pooled out-of-fold scores of {len(repeats)} "
                f"repeats x {len(labels)} MIAS images; sensitivity/specificity: out of "
                "sample, each fold judged at the threshold the rule chose on the other "
                "folds, mean over repeats"
            ),
        }
    default = max(OPERATING_POINTS, key=lambda rule: points[rule]["balanced_accuracy"])
    return {
        "cnn_variant": cnn_name,
        "breast_windows_only": recipe["breast_windows"],
        "flip_average": recipe["flip"],
        "head": heads,
        "operating_points": {"default": default, "points": points},
        "final_candidate": final.name,
        "fitted_on": f"out-of-fold scores of {len(repeats)} repeats x {len(labels)} images",
    }


def build_final_model(final_model: Path, shipped: dict, out: Path, log=print) -> Path:
    """``OUT/model.keras``: the all-data lite0 weights in the shipped variant's graph.

    Nothing is retrained: the variant (breast-only windows, flip average) changes how the
    trained network's windows are pooled, so the final model of the recipe
    (``python -m train --arch lite0``) gets it as the fold models did in the comparison.
    """
    import keras

    from .architectures import lite0
    from .contract import contract_path, read_contract, write_contract

    contract = read_contract(contract_path(final_model))
    trained = keras.models.load_model(final_model, compile=False)
    networks = lite0.Networks(pretrained=False)
    plain = networks.image_model(contract.preprocess)
    for name in ("lite0_backbone", "cell_logit", "image_offset"):
        plain.get_layer(name).set_weights(trained.get_layer(name).get_weights())
    sample = np.random.default_rng(0).uniform(-1, 1, (2, *plain.input_shape[1:]))
    difference = np.abs(np.asarray(plain(sample)[0]) - np.asarray(trained(sample)[0])).max()
    if difference > 1e-6:
        raise RuntimeError(f"weights did not transfer: max |Δp| {difference:.3g}")
    model = networks.image_model(
        contract.preprocess,
        breast_windows_only=shipped["breast_windows_only"],
        flip_average=shipped["flip_average"],
    )
    target = out / "model.keras"
    model.save(target)
    write_contract(target, contract)
    log(f"wrote {target} ({shipped['cnn_variant']} graph of {final_model})")
    return target


def ensemble_of_repeats(chain, final_name: str, records) -> dict:
    """The final recipe's three fold models of an image averaged: an honest ensemble.

    In every repeat the image was scored by a model that never saw its patient, so the
    mean over repeats is an out-of-sample score of an ensemble of three models trained on
    different 80% subsets. Compared, paired, with the single-model AUC (mean over repeats).
    """
    labels = np.array([record.label for record in records])
    patients = np.array([record.patient_id for record in records])
    scores = next(c for c in chain if c.name == final_name).scores
    mean = scores.mean(axis=0)
    estimate = repeated_metrics.repeated_auc_with_ci(
        labels, [mean], patients, replicates=REPLICATES
    )
    difference = repeated_metrics.repeated_paired_auc_difference(
        labels, np.repeat(mean[None], len(scores), axis=0), scores, patients, replicates=REPLICATES
    )
    return {
        "members": len(scores),
        "auc": estimate.auc,
        "auc_ci95": list(estimate.ci95),
        "difference_to_single_model": _difference(difference),
        "note": "not shipped: it costs one network run per member at inference",
    }


def model_metrics(final: dict, head: dict, repeats: int) -> dict:
    """The cross-validation figures the exported model carries (``mammo-edge info``)."""
    points = head["operating_points"]
    default = points["points"][points["default"]]
    return {
        "protocol": f"repeated patient-grouped 5-fold CV ({repeats} splits), out of fold",
        "auc": final["auc"],
        "auc_ci95": final["auc_ci95"],
        "specificity_at_90_sensitivity": final["specificity_at_90_sensitivity"],
        "threshold": default["threshold"],
        "threshold_method": f"operating point {points['default']!r}: {default['rule']}",
        "sensitivity": default["sensitivity"],
        "specificity": default["specificity"],
        "accuracy": default["accuracy"],
        "balanced_accuracy": default["balanced_accuracy"],
        "always_normal_accuracy": default["always_normal_accuracy"],
        "per_class_auc": {k: v["auc"] for k, v in final["per_class_auc"].items()},
        "per_tissue_auc": {k: v["auc"] for k, v in final["per_tissue_auc"].items()},
        "candidate": final["name"],
    }


def markdown_table(described: list[dict]) -> str:
    lines = [
        "| candidate | kept | AUC, mean of repeats (95% CI) | Δ vs previous kept (95% CI) "
        "| Δ vs lite0 (95% CI) | spec. @ 90% sens. | CALC | dense | balanced acc. (triage / "
        "balanced point, out of sample) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for d in described:

        def fmt(entry):
            if not entry:
                return "—"
            low, high = entry["ci95"]
            return f"{entry['difference']:+.3f} ({low:+.3f} to {high:+.3f})"

        points = d["operating_points_out_of_sample"]
        low, high = d["auc_ci95"]
        triage, balanced = points["triage"], points["balanced"]
        lines.append(
            f"| {d['name']} | {'yes' if d['kept'] else 'no'} | {d['auc']:.3f} "
            f"({low:.3f}–{high:.3f}) | {fmt(d['difference_to_previous_kept'])} "
            f"| {fmt(d['difference_to_lite0'])} | {d['specificity_at_90_sensitivity']:.3f} "
            f"| {d['per_class_auc']['CALC']['auc']:.2f} | {d['per_tissue_auc']['D']['auc']:.2f} "
            f"| {triage['balanced_accuracy']:.3f} / {balanced['balanced_accuracy']:.3f} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m train repeated", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--data", required=True, type=Path)
    parser.add_argument("--run", action="append", required=True, type=Path)
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument(
        "--final-model",
        type=Path,
        default=None,
        help="the recipe's all-data model.keras: written again in the shipped variant's "
        "graph as OUT/model.keras, for `python -m export --head OUT/head.json`",
    )
    args = parser.parse_args(argv)

    def log(message):
        print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)

    dataset = open_mias(args.data)
    records = dataset.records
    args.out.mkdir(parents=True, exist_ok=True)
    for run in args.run:
        score_variants(dataset, run, log)
    calcifications = calcification_table(dataset, args.out, log)
    repeats = [read_repeat(run, records) for run in args.run]
    chain = build_candidates(repeats, records, calcifications)
    described = [describe(candidate, records, repeats) for candidate in chain]
    head = shipped_head(chain, described, repeats, records, calcifications)
    labels = np.array([record.label for record in records])
    final = described[[c.name for c in chain].index(head["final_candidate"])]
    ensemble = ensemble_of_repeats(chain, head["final_candidate"], records)
    document = {
        "protocol": "repeated patient-grouped stratified 5-fold CV",
        "repeats": [run.name for run in args.run],
        "n": len(records),
        "n_abnormal": int(labels.sum()),
        "always_normal_accuracy": float((labels == 0).mean()),
        "keep_rule": f"paired Δ AUC > 0 and its 95% CI lower end > {KEEP_LOWER_BOUND}",
        "auc_ci_method": "patient bootstrap (2000) of the mean AUC over repeats",
        "candidates": described,
        "ensemble_of_repeats": ensemble,
        "shipped": head,
    }
    (args.out / "metrics.json").write_text(json.dumps(document, indent=2) + "\n")
    (args.out / "model_metrics.json").write_text(
        json.dumps(model_metrics(final, head, len(args.run)), indent=2) + "\n"
    )
    (args.out / "head.json").write_text(json.dumps(head, indent=2) + "\n")
    (args.out / "table.md").write_text(markdown_table(described))
    with (args.out / "predictions.csv").open("w", newline="") as handle:
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
    _plot(labels, chain, args.out / "roc.png")
    if args.final_model is not None:
        build_final_model(args.final_model, head, args.out, log)
    print(markdown_table(described))
    return 0


def _plot(labels, chain, path: Path) -> None:
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


if __name__ == "__main__":
    from .cli import forward_deprecated

    raise SystemExit(forward_deprecated("train.repeated", "repeated"))
