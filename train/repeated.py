"""Repeated cross-validation of the lite0 recipe and what each inference-time step buys.

``python -m train repeated --data MIAS --run runs/repeated/seed_0 --run ... --out DIR``

Input: three or more runs of ``python -m train --arch lite0 --seed S`` (each a
patient-grouped 5-fold split of its own, fold weights kept in ``folds/``; ``python -m train
repeated-runs`` makes them). Nothing is trained again: every candidate is scored by the
*same* fold models on the *same* splits, so the differences between candidates are paired.
The candidates and the rule that keeps a step: :mod:`train.repeated_candidates`; what
ships: :mod:`train.repeated_shipped`; the files: :mod:`train.repeated_report`.

Writes ``DIR/metrics.json`` (every candidate: mean AUC over repeats with CI, paired
differences, per class and tissue, operating points out of sample), ``DIR/table.md``,
``DIR/predictions.csv`` (every image, repeat and candidate), ``DIR/roc.png``,
``DIR/calcification_features.csv``, ``DIR/head.json`` (the shipped head and thresholds,
fitted on all repeats' out-of-fold scores) and ``DIR/model_metrics.json``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from .mias import open_mias
from .repeated_candidates import (
    KEEP_LOWER_BOUND,
    build_candidates,
    describe,
    ensemble_of_repeats,
    read_repeat,
)
from .repeated_report import markdown_table, plot_roc, write_predictions
from .repeated_shipped import build_final_model, model_metrics, shipped_head
from .variants import calcification_table, score_variants


def build_parser() -> argparse.ArgumentParser:
    """The options of ``python -m train repeated``."""
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
        "graph as OUT/model.keras, for `python -m export onnx --head OUT/head.json`",
    )
    return parser


def _log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
    """Score the runs' variants, decide the chain, write every file; returns 0."""
    args = build_parser().parse_args(argv)
    dataset = open_mias(args.data)
    records = dataset.records
    args.out.mkdir(parents=True, exist_ok=True)
    for run in args.run:
        score_variants(dataset, run, _log)
    calcifications = calcification_table(dataset, args.out, _log)
    repeats = [read_repeat(run, records) for run in args.run]
    chain = build_candidates(repeats, records, calcifications)
    described = [describe(candidate, records, repeats) for candidate in chain]
    head = shipped_head(chain, described, repeats, records, calcifications)
    labels = np.array([record.label for record in records])
    final = described[[c.name for c in chain].index(head["final_candidate"])]
    document = {
        "protocol": "repeated patient-grouped stratified 5-fold CV",
        "repeats": [run.name for run in args.run],
        "n": len(records),
        "n_abnormal": int(labels.sum()),
        "always_normal_accuracy": float((labels == 0).mean()),
        "keep_rule": f"paired Δ AUC > 0 and its 95% CI lower end > {KEEP_LOWER_BOUND}",
        "auc_ci_method": "patient bootstrap (2000) of the mean AUC over repeats",
        "candidates": described,
        "ensemble_of_repeats": ensemble_of_repeats(chain, head["final_candidate"], records),
        "shipped": head,
    }
    _write_json(args.out / "metrics.json", document)
    _write_json(args.out / "model_metrics.json", model_metrics(final, head, len(args.run)))
    _write_json(args.out / "head.json", head)
    (args.out / "table.md").write_text(markdown_table(described))
    write_predictions(args.out / "predictions.csv", repeats, records, chain)
    plot_roc(labels, chain, args.out / "roc.png")
    if args.final_model is not None:
        build_final_model(args.final_model, head, args.out, _log)
    print(markdown_table(described))
    return 0


def _write_json(path: Path, document: dict) -> None:
    path.write_text(json.dumps(document, indent=2) + "\n")
