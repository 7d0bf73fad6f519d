"""Compare the manifest-path run with the archive path's seed-0 run, image by image.

Usage (from the repository root, after the run in README.md):
    .venv/bin/python reports/manifest-mias/compare.py runs/manifest-mias
"""

import csv
import json
import sys
from pathlib import Path

import numpy as np

from mammo_edge import metrics, repeated_metrics

run = Path(sys.argv[1])
archive = {
    row["image"]: row
    for row in csv.DictReader(open("reports/repeated/predictions.csv", newline=""))
    if row["repeat"] == "seed_0"
}
manifest = {row["image"]: row for row in csv.DictReader(open(run / "predictions.csv", newline=""))}
assert set(archive) == set(manifest), "different images"
images = sorted(archive)
labels = np.array([int(archive[i]["label"]) for i in images])
patients = np.array([archive[i]["patient"] for i in images])


def figures(scores, folds):
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


old = np.array([float(archive[i]["lite0"]) for i in images])
new = np.array([float(manifest[i]["probability"]) for i in images])
old_folds = np.array([int(archive[i]["fold"]) for i in images])
new_folds = np.array([int(manifest[i]["fold"]) for i in images])
result = {
    "images": len(images),
    "same_fold_for_every_image": bool((old_folds == new_folds).all()),
    "same_label_and_patient": all(
        archive[i]["label"] == manifest[i]["label"]
        and archive[i]["patient"] == manifest[i]["patient"]
        for i in images
    ),
    "max_abs_probability_difference": float(np.abs(old - new).max()),
    "images_with_a_different_probability": int((old != new).sum()),
    "archive_path_seed_0": figures(old, old_folds),
    "manifest_path_seed_0": figures(new, new_folds),
}
print(json.dumps(result, indent=2))
