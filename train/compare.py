"""``python -m train compare SEED_RUN PATIENT_RUN --out PNG``: the leak in one picture.

Draws, from two finished runs' ``predictions.csv`` and ``metrics.json``, the ROC of the
seed protocol's leaky test split beside the patient protocol's out-of-fold ROC, and the
specificity on the normal images the seed protocol discarded.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from pathlib import Path

import numpy as np

from .plots import plot_roc


def _read_predictions(run: Path, split: str | None = None) -> tuple[np.ndarray, np.ndarray]:
    labels, probabilities = [], []
    with (run / "predictions.csv").open(newline="") as handle:
        for row in csv.DictReader(handle):
            if split is None or row.get("split") == split:
                labels.append(int(row["label"]))
                probabilities.append(float(row["probability"]))
    return np.array(labels), np.array(probabilities)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m train compare", description=__doc__)
    parser.add_argument("seed_run", type=Path, help="output folder of --protocol seed")
    parser.add_argument("patient_run", type=Path, help="output folder of --protocol patient")
    parser.add_argument("--out", type=Path, required=True, help="PNG to write")
    args = parser.parse_args(argv)
    try:
        seed = json.loads((args.seed_run / "metrics.json").read_text())
        patient = json.loads((args.patient_run / "metrics.json").read_text())
        seed_labels, seed_probabilities = _read_predictions(args.seed_run, "test")
        patient_labels, patient_probabilities = _read_predictions(args.patient_run)
    except (OSError, KeyError, ValueError) as error:
        print(f"error: cannot read the runs: {error}", file=sys.stderr)
        return 1
    if seed.get("protocol") != "seed" or patient.get("protocol") != "patient":
        print("error: give the seed run first, then the patient run", file=sys.stderr)
        return 1
    rotations = seed["scale"]["rotations"]
    dropped = seed["dropped_normals_unrotated"]
    plot_roc(
        [
            {
                "name": f"seed split, {rotations} rotations (leaky)",
                "labels": seed_labels,
                "probabilities": seed_probabilities,
                "auc": seed["test"]["auc"],
                "ci": seed["test"]["auc_ci95"],
            },
            {
                "name": "patient-level CV (honest)",
                "labels": patient_labels,
                "probabilities": patient_probabilities,
                "auc": patient["auc"],
                "ci": patient["auc_ci95"],
            },
        ],
        args.out,
        f"Leaky vs honest evaluation of the seed CNN\n(leaky model's specificity on "
        f"{dropped['n']} normals it never saw: {dropped['specificity']:.0%})",
    )
    print(f"wrote {args.out}", file=sys.stderr)
    return 0
