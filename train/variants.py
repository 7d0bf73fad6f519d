"""Inference-time variants of a lite0 run's fold models, and the calcification features.

Nothing is trained here: each image of a finished ``python -m train --arch lite0`` run is
scored again by the fold model that never saw it, in every variant (breast-only windows,
top-bottom flip averaged in, both), and the full-resolution calcification cluster
features of :mod:`mammo_edge.images.calcifications` are computed once per image. Both are
cached beside the run, so :mod:`train.repeated` can be rerun cheaply.
"""

from __future__ import annotations

import csv
import json
import time
from pathlib import Path

import numpy as np

from mammo_edge.images.calcifications import FEATURE_NAMES, calcification_features

from .mias import MiasDataset

#: The variants every fold model is scored in, as columns of ``RUN/variants.csv``.
VARIANTS = ("plain", "breast_windows", "flip", "breast_windows_flip")


def score_variants(dataset: MiasDataset, run: Path, log=print) -> Path:
    """``RUN/variants.csv``: each image scored by its fold model in every variant.

    Resumable: an existing file is kept.
    """
    target = run / "variants.csv"
    if target.is_file():
        log(f"{run}: variants scored earlier, kept")
        return target
    import keras

    from .architectures import lite0
    from .lesion_data import prepare_dataset
    from .lesion_settings import LesionSettings
    from .lesion_stages import score

    settings = LesionSettings(**json.loads((run / "settings.json").read_text()))
    config = settings.preprocess()
    data = prepare_dataset(dataset, config)
    folds = fold_of(run)
    rows = []
    for fold in sorted(set(folds.values())):
        started = time.time()
        networks = lite0.Networks(pretrained=False)
        base = networks.image_model(config)
        base.load_weights(run / "folds" / f"fold_{fold}.weights.h5")
        models = {
            "plain": base,
            "breast_windows": networks.image_model(config, breast_windows_only=True),
            "flip": networks.image_model(config, flip_average=True),
            "breast_windows_flip": networks.image_model(
                config, breast_windows_only=True, flip_average=True
            ),
        }
        test = [
            index
            for index, record in enumerate(dataset.records)
            if folds.get(record.reference) == fold
        ]
        scores = {name: score(model, data.inputs[test])[0] for name, model in models.items()}
        for slot, index in enumerate(test):
            record = dataset.records[index]
            rows.append(
                {
                    "image": record.reference,
                    "fold": fold,
                    "label": record.label,
                    **{name: f"{scores[name][slot]:.6f}" for name in VARIANTS},
                }
            )
        log(f"{run}: fold {fold} scored in {time.time() - started:.0f} s")
        keras.backend.clear_session()
    partial = target.with_name(target.name + ".partial")
    with partial.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=["image", "fold", "label", *VARIANTS])
        writer.writeheader()
        writer.writerows(rows)
    partial.replace(target)
    return target


def fold_of(run: Path) -> dict[str, int]:
    """Image reference -> the fold that tested it, from ``RUN/folds/fold_K.csv``."""
    folds = {}
    for path in sorted((run / "folds").glob("fold_*.csv")):
        with path.open(newline="") as handle:
            for row in csv.DictReader(handle):
                folds[row["image"]] = int(row["fold"])
    return folds


def calcification_table(dataset: MiasDataset, out: Path, log=print) -> np.ndarray:
    """``(N, 3)`` cluster features in record order, cached in ``OUT/calcification_features.csv``."""
    path = out / "calcification_features.csv"
    if path.is_file():
        with path.open(newline="") as handle:
            rows = {row["image"]: row for row in csv.DictReader(handle)}
        return np.array(
            [[float(rows[r.reference][name]) for name in FEATURE_NAMES] for r in dataset.records]
        )
    started = time.time()
    values = np.array(
        [
            calcification_features(dataset.read_image(r.reference)).as_array()
            for r in dataset.records
        ]
    )
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["image", *FEATURE_NAMES])
        for record, row in zip(dataset.records, values, strict=True):
            writer.writerow([record.reference, *(f"{value:.6f}" for value in row)])
    log(f"calcification features of {len(values)} images in {time.time() - started:.0f} s")
    return values
