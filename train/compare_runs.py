"""``python -m train compare-runs RUN``: one run's out-of-fold scores against another's,
image by image.

Made to show that MIAS through the dataset manifest (``python -m train --data
manifest.csv``) trains the same model as the archive path: the same images, folds, labels
and patients, the largest probability difference, and both runs' AUC (patient-bootstrap
CI) and cross-fitted operating points computed alike from the two prediction files
(``reports/manifest-mias/comparison.json``). The reference defaults to
``reports/repeated/predictions.csv``'s first split (``--repeat seed_0``, ``--column
lite0``); RUN's ``predictions.csv`` has ``image, patient, fold, label, probability``.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from pathlib import Path

import numpy as np

from mammo_edge.evaluation import metrics, repeated_metrics


def read_rows(path: Path, repeat: str | None = None) -> dict[str, dict[str, str]]:
    """``predictions.csv``'s rows by image (only ``repeat``'s when given)."""
    with path.open(newline="") as handle:
        return {
            row["image"]: row
            for row in csv.DictReader(handle)
            if repeat is None or row.get("repeat", repeat) == repeat
        }


def figures(labels, scores, patients, folds) -> dict:
    """AUC with its patient-bootstrap CI and the cross-fitted operating points."""
    auc = metrics.auc_with_ci(labels, scores, patients)
    points = {}
    for rule in repeated_metrics.OPERATING_POINT_RULES:
        thresholds = repeated_metrics.cross_fitted_thresholds(labels, scores, folds, rule)
        counts = repeated_metrics.confusion_at_thresholds(labels, scores, thresholds)
        points[rule] = {
            "sensitivity": counts.sensitivity,
            "specificity": counts.specificity,
            "balanced_accuracy": counts.balanced_accuracy,
        }
    return {"auc": auc.auc, "auc_ci95": list(auc.ci95), "cross_fitted": points}


def compare(reference: dict, run: dict, column: str) -> dict:
    """The comparison of two runs' rows (by image); both must hold the same images.

    Raises:
        ValueError: the two files hold different images.
    """
    if set(reference) != set(run):
        only = sorted(set(reference) ^ set(run))
        raise ValueError(f"different images ({len(only)} in one file only, e.g. {only[:3]})")
    images = sorted(reference)
    labels = np.array([int(reference[i]["label"]) for i in images])
    patients = np.array([reference[i]["patient"] for i in images])
    old = np.array([float(reference[i][column]) for i in images])
    new = np.array([float(run[i]["probability"]) for i in images])
    old_folds = np.array([int(reference[i]["fold"]) for i in images])
    new_folds = np.array([int(run[i]["fold"]) for i in images])
    return {
        "images": len(images),
        "same_fold_for_every_image": bool((old_folds == new_folds).all()),
        "same_label_and_patient": all(
            reference[i]["label"] == run[i]["label"]
            and reference[i]["patient"] == run[i]["patient"]
            for i in images
        ),
        "max_abs_probability_difference": float(np.abs(old - new).max()),
        "images_with_a_different_probability": int((old != new).sum()),
        "archive_path_seed_0": figures(labels, old, patients, old_folds),
        "manifest_path_seed_0": figures(labels, new, patients, new_folds),
    }


def main(argv: list[str] | None = None) -> int:
    """Print the comparison as JSON (and write it to ``--out``); 1 when it cannot run."""
    parser = argparse.ArgumentParser(
        prog="python -m train compare-runs",
        description="Compare a run's out-of-fold scores with a reference run's, image by image.",
    )
    parser.add_argument("run", type=Path, help="a finished run's folder (its predictions.csv)")
    parser.add_argument(
        "--reference",
        type=Path,
        default=Path("reports/repeated/predictions.csv"),
        help="the reference predictions.csv (default: %(default)s)",
    )
    parser.add_argument("--repeat", default="seed_0", help="the reference's repeat column value")
    parser.add_argument("--column", default="lite0", help="the reference's score column")
    parser.add_argument("--out", type=Path, help="also write the JSON here")
    args = parser.parse_args(argv)
    try:
        reference = read_rows(args.reference, args.repeat)
        result = compare(reference, read_rows(args.run / "predictions.csv"), args.column)
    except (OSError, KeyError, ValueError) as error:
        print(f"error: cannot compare: {error}", file=sys.stderr)
        return 1
    text = json.dumps(result, indent=2)
    if args.out is not None:
        args.out.write_text(text + "\n")
    print(text)
    return 0
