"""``python -m train fit`` (the default command): train an architecture on MIAS under a protocol."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from . import architectures

DESCRIPTION = """\
Train a model (--arch; the seed study's CNN by default) on the MIAS MiniMammographic
Database.

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

Outputs in --out: metrics.json, predictions.csv (image,patient,fold,label,probability),
model.keras with model_contract.json beside it (architecture and preprocessing, which
`python -m export` requires), roc.png, training_curves.png, checkpoints/.

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
        help="MIAS folder or all-mias.tar.gz (e.g. ../shared/mias/all-mias.tar.gz)",
    )
    parser.add_argument(
        "--protocol",
        choices=["patient", "seed", "lesion"],
        default=None,
        help="evaluation protocol (default: the architecture's own: patient for seed, "
        "lesion for lite0)",
    )
    parser.add_argument("--out", required=True, type=Path, help="output folder")
    parser.add_argument("--folds", type=int, default=5, help="patient protocol: CV folds (5)")
    parser.add_argument(
        "--epochs",
        type=int,
        default=None,
        help="maximum epochs; early stopping usually ends sooner (patient: 40, seed: 50)",
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
        help="square model input side (default: the architecture's own; seed: 128)",
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


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
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
    if problems:
        for problem in problems:
            print(f"error: {problem}", file=sys.stderr)
        return 2

    # Imported late: the MIAS checks above answer fast without loading TensorFlow.
    from .mias import MiasError, open_mias

    def log(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    try:
        dataset = open_mias(args.data)
        dataset.verify_images()
        log(f"MIAS: {len(dataset)} images, {len(dataset.rows)} Info.txt rows from {args.data}")
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        protocol = args.protocol or getattr(architectures.get(args.arch), "PROTOCOL", "patient")
        if protocol == "lesion":
            from .lesion_protocol import LesionSettings, run_lesion_protocol

            if args.arch != "lite0":
                raise ValueError("the lesion protocol trains the lite0 architecture: --arch lite0")
            settings = LesionSettings(
                folds=args.folds,
                seed=args.seed,
                pretrained=not args.no_pretrained,
                lesions=not args.no_lesions,
                breast_crop=not args.no_breast_crop,
                half_resolution=args.half_resolution,
                train_final_model=not args.no_final_model,
            )
            run_lesion_protocol(dataset, args.out, settings, log)
        elif protocol == "seed":
            from .seed_protocol import SeedSettings, run_seed_protocol

            settings = SeedSettings(
                rotations=args.rotations,
                epochs=args.epochs or 50,
                image_size=args.image_size,
                arch=args.arch,
                seed=args.seed,
            )
            run_seed_protocol(dataset, args.out, settings, log)
        else:
            from .patient_protocol import PatientSettings, run_patient_protocol

            settings = PatientSettings(
                folds=args.folds,
                epochs=args.epochs or 40,
                image_size=args.image_size,
                arch=args.arch,
                seed=args.seed,
                augment_copies=args.augment_copies,
                train_final_model=not args.no_final_model,
            )
            run_patient_protocol(dataset, args.out, settings, log)
    except MiasError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    log(f"Wrote results to {args.out}")
    return 0
