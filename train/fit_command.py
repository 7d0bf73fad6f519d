"""``python -m train fit`` (the default command): train an architecture under a protocol,
on MIAS or on any dataset manifest (``docs/datasets.md``)."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from . import architectures

DESCRIPTION = """\
Train a model (--arch; the seed study's CNN by default) on the MIAS MiniMammographic
Database, or on your own labelled images described by a dataset manifest (a CSV: image,
label, patient, optional study, laterality, view, finding, group, split and lesion
geometry x, y, radius or mask; see docs/datasets.md). MIAS goes through the same
manifest reader (python -m train manifest --mias writes it out).

Protocols:
  patient (default, honest)  Stratified K-fold cross-validation grouped by patient: a
                             patient's left and right mammograms always share a fold.
                             Random rotation/flip augmentation only on training images,
                             early stopping on held-out training patients, class weights
                             instead of dropping normals. Every image gets one out-of-fold
                             probability. A final model is then trained on all images.
  seed (as published, leaky) One sample per Info.txt row, the first 84 NORM rows dropped,
                             every image rotated --rotations times (180 in the study), THEN a
                             random 80/20 split: rotated copies of one mammogram land in both
                             training and test. Reports the leak and the accuracy it inflates.
                             MIAS only.
  lesion (lite0's default)   The lite0 recipe: patches from the lesion geometry, then
                             whole-image tuning (image labels alone where there is none).

A manifest's split column fixes the folds (--folds is then ignored). A manifest needs at
least 10 patients with an abnormal image and 10 with a normal one.

Outputs in --out: metrics.json, predictions.csv (image,patient,fold,label,probability),
model.keras with model_contract.json beside it (architecture and preprocessing, which
`python -m export` requires), roc.png, training_curves.png, checkpoints/; patient and
lesion protocols: head.json (pair head where both breasts are present, single-view head,
triage/balanced points, cross-fitted figures) for `python -m export onnx --head`.

MIAS: research use only; cite J Suckling et al (1994), Excerpta Medica ICS 1069, pp 375-378.
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m train fit",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--data",
        required=True,
        type=Path,
        help="a dataset manifest (.csv, docs/datasets.md), or the MIAS folder or "
        "all-mias.tar.gz (e.g. ../shared/mias/all-mias.tar.gz)",
    )
    parser.add_argument(
        "--protocol",
        choices=["patient", "seed", "lesion"],
        default=None,
        help="evaluation protocol (default: the architecture's own: patient for seed, "
        "lesion for lite0)",
    )
    parser.add_argument("--out", required=True, type=Path, help="output folder")
    parser.add_argument(
        "--folds", type=int, default=5, help="patient and lesion protocols: CV folds (5)"
    )
    parser.add_argument(
        "--epochs",
        type=int,
        default=None,
        help="maximum epochs; early stopping usually ends sooner (patient: 40, seed: 50); "
        "lesion: the epochs of each stage (default 4 patch, 2 whole-image)",
    )
    parser.add_argument(
        "--rotations",
        type=int,
        default=180,
        help="seed protocol: evenly spaced rotation angles per image "
        "(180 = the study's scale: 44,280 samples on all 322 MIAS images, 32,580 on the "
        "258 here; hours on 2 cores)",
    )
    parser.add_argument(
        "--augment-copies",
        type=int,
        default=16,
        help="patient protocol: random views of each training image per epoch (16); "
        "with ~165 training images this gives ~21 gradient steps per epoch, so early "
        "stopping (patience 3) judges a model that has had a chance to learn",
    )
    parser.add_argument(
        "--arch",
        choices=architectures.names(),
        default=architectures.DEFAULT_ARCHITECTURE,
        help="model architecture (default: %(default)s)",
    )
    parser.add_argument(
        "--image-size",
        type=int,
        default=None,
        help="square model input side (default: the architecture's own; seed: 128); "
        "lesion: the input height, a multiple of 64 >= 256 (width half of it; default 512)",
    )
    parser.add_argument(
        "--init",
        type=Path,
        default=None,
        help="lesion and patient protocols: start from this trained model.keras (e.g. "
        "reports/lesion/model.keras) instead of ImageNet. The shipped models saw all of "
        "MIAS: fine-tune on your own images, and judge on MIAS nothing it gains",
    )
    parser.add_argument(
        "--patches-per-epoch",
        type=int,
        default=1600,
        help="lesion protocol: lesion/normal patches per patch epoch (1600)",
    )
    parser.add_argument("--seed", type=int, default=0, help="random seed (0)")
    parser.add_argument(
        "--no-final-model",
        action="store_true",
        help="patient and lesion protocols: skip training the final all-data model",
    )
    ablations = parser.add_argument_group(
        "lesion protocol ablations (each switches one ingredient off)"
    )
    ablations.add_argument("--no-pretrained", action="store_true", help="random initialisation")
    ablations.add_argument(
        "--no-lesions", action="store_true", help="no lesion patches: whole-image labels only"
    )
    ablations.add_argument(
        "--no-breast-crop",
        action="store_true",
        help="whole frame resized to 512x512: no segmentation, orientation or crop",
    )
    ablations.add_argument(
        "--half-resolution", action="store_true", help="input at half the side (256x128)"
    )
    return parser


def _problems(args) -> list[str]:
    problems = []
    if args.folds < 2:
        problems.append(f"--folds must be at least 2, got {args.folds}")
    if not 1 <= args.rotations <= 360:
        problems.append(f"--rotations must be between 1 and 360, got {args.rotations}")
    if args.image_size is not None and args.image_size < 16:
        problems.append(f"--image-size must be at least 16, got {args.image_size}")
    if args.epochs is not None and args.epochs < 1:
        problems.append(f"--epochs must be at least 1, got {args.epochs}")
    if args.augment_copies < 1:
        problems.append(f"--augment-copies must be at least 1, got {args.augment_copies}")
    if args.patches_per_epoch < 32:
        problems.append(f"--patches-per-epoch must be at least 32, got {args.patches_per_epoch}")
    return problems


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    problems = _problems(args)
    if problems:
        for problem in problems:
            print(f"error: {problem}", file=sys.stderr)
        return 2

    # Imported late: the data checks below answer fast without loading TensorFlow.
    from .dataset import DatasetError, mias_training_set, open_training_set
    from .mias import MiasError, open_mias

    def log(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    try:
        protocol = args.protocol or getattr(architectures.get(args.arch), "PROTOCOL", "patient")
        if args.data.suffix.lower() == ".csv":
            if protocol == "seed":
                raise ValueError("the seed protocol reproduces the study on MIAS only")
            dataset = open_training_set(args.data)
            _report_manifest(dataset, log)
        else:
            mias = open_mias(args.data)
            mias.verify_images()
            log(f"MIAS: {len(mias)} images, {len(mias.rows)} Info.txt rows from {args.data}")
            dataset = mias if protocol == "seed" else mias_training_set(mias)
        if protocol != "seed":
            dataset.check_enough()
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        from .run_protocol import run_protocol

        run_protocol(protocol, dataset, args, log)
    except (MiasError, DatasetError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    log(f"Wrote results to {args.out}")
    return 0


def _report_manifest(dataset, log) -> None:
    """Say what the manifest holds and list every row it could not use."""
    counts = dataset.dataset.counts()
    log(f"manifest {dataset.source}: {counts.describe()}")
    rejected = dataset.dataset.rejected
    if rejected:
        log(f"{len(rejected)} row(s) not used:\n{dataset.dataset.rejected_report()}")
    dataset.verify_images()
