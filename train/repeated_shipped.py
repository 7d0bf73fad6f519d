"""What the repeated cross-validation ships: the head, the operating points, the final model.

:func:`shipped_head` fits the head the runtime applies (``head.json``, read by ``python -m
export onnx --head``) on every repeat's out-of-fold scores; :func:`build_final_model` puts
the recipe's all-data weights into the chosen variant's graph; :func:`model_metrics` is the
cross-validation block the exported model carries (``mammo-edge info``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from mammo_edge.evaluation import repeated_metrics
from mammo_edge.model.heads import PAIR_FEATURE

from .heads import fit_head, head_feature_names, head_features, partner_index
from .repeated_candidates import OPERATING_POINTS, Candidate, Repeat, pair_only

#: The network variant of each (breast windows kept, flip kept) verdict.
CNN_VARIANTS = {
    (False, False): "plain",
    (True, False): "breast_windows",
    (False, True): "flip",
    (True, True): "breast_windows_flip",
}
RULES = {
    "triage": "highest threshold with sensitivity >= 0.90",
    "balanced": "Youden's J (sensitivity + specificity - 1) at its maximum",
}


def shipped_head(chain, described, repeats, records, calcifications) -> dict:
    """What the shipped model carries: its network variant, head and operating points.

    The head is refitted on every repeat's out-of-fold scores; each operating point's
    threshold is its rule applied to the final candidate's pooled out-of-fold scores, and
    the sensitivity/specificity printed beside it are the cross-fitted, out-of-sample
    ones of :func:`train.repeated_candidates.operating_points`. The default point is the
    one whose out-of-sample balanced accuracy is higher.

    Raises:
        NotImplementedError: the chain kept both the calcification and the pair step (the
            runtime's pair head reads the other breast's network logit only).
    """
    labels = np.array([record.label for record in records])
    recipe = chain[0].recipe
    cnn_name = CNN_VARIANTS[(recipe["breast_windows"], recipe["flip"])]
    cnn = np.concatenate([repeat.variants[cnn_name] for repeat in repeats])
    final_index = max(i for i, candidate in enumerate(chain) if candidate.kept)
    final = chain[final_index]
    heads = _heads(chain, final, cnn, repeats, records, calcifications)
    points = _points(
        np.tile(labels, len(repeats)),
        final.scores.reshape(-1),
        described[final_index]["operating_points_out_of_sample"],
        f"{len(repeats)} repeats x {len(labels)} MIAS images",
    )
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


def _heads(
    chain: list[Candidate],
    final: Candidate,
    cnn: np.ndarray,
    repeats: list[Repeat],
    records,
    calcifications: np.ndarray,
) -> dict:
    """The ``single`` or ``pair`` head, fitted on the pooled out-of-fold CNN scores."""
    labels = np.array([record.label for record in records])
    all_labels = np.tile(labels, len(repeats))
    calcifications_kept = {c.name: c for c in chain}["+ calcifications"].kept
    heads = {}
    if calcifications_kept:
        calc = np.tile(calcifications, (len(repeats), 1))
        heads["single"] = fit_head(
            head_features(cnn, calc, None), all_labels, head_feature_names(False)
        ).as_dict()
    if final.name == "+ other breast":
        if calcifications_kept:
            raise NotImplementedError("a pair head with calcification features")
        partner = partner_index(records)
        pooled_partner = np.concatenate(
            [partner + (partner >= 0) * i * len(labels) for i in range(len(repeats))]
        )
        heads = {
            "pair": fit_head(
                pair_only(cnn, pooled_partner), all_labels, ["cnn_logit", PAIR_FEATURE]
            ).as_dict()
        }
    return heads


def _points(labels: np.ndarray, pooled: np.ndarray, out_of_sample: dict, pooled_of: str) -> dict:
    """Each rule's threshold on the pooled scores, with its out-of-sample figures beside it."""
    points = {}
    for rule in OPERATING_POINTS:
        measured = out_of_sample[rule]
        points[rule] = {
            "threshold": repeated_metrics.OPERATING_POINT_RULES[rule](labels, pooled).threshold,
            "rule": RULES[rule],
            "sensitivity": measured["sensitivity"],
            "specificity": measured["specificity"],
            "balanced_accuracy": measured["balanced_accuracy"],
            "accuracy": measured["accuracy"],
            "always_normal_accuracy": measured["always_normal_accuracy"],
            "source": (
                f"threshold: the rule on the pooled out-of-fold scores of {pooled_of}; "
                "sensitivity/specificity: out of sample, each fold judged at the threshold "
                "the rule chose on the other folds, mean over repeats"
            ),
        }
    return points


def build_final_model(final_model: Path, shipped: dict, out: Path, log=print) -> Path:
    """``OUT/model.keras``: the all-data lite0 weights in the shipped variant's graph.

    Nothing is retrained: the variant (breast-only windows, flip average) changes how the
    trained network's windows are pooled, so the final model of the recipe
    (``python -m train --arch lite0``) gets it as the fold models did in the comparison.

    Raises:
        RuntimeError: the weights did not transfer (the plain graph scores differently).
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
