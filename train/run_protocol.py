"""Run one protocol of ``python -m train fit`` with the command's options.

Each protocol's settings are built here from the parsed arguments, one flag to one field,
so ``--folds``, ``--epochs``, ``--image-size``, ``--arch`` and ``--init`` mean the same under
every protocol that takes them.
"""

from __future__ import annotations


def run_protocol(protocol: str, dataset, args, log) -> None:
    """Run ``protocol`` on ``dataset`` with the command's options; after the patient and
    lesion protocols, fit the heads and points on the out-of-fold probabilities
    (``OUT/head.json``, :mod:`train.cv_heads`)."""
    if protocol == "lesion":
        from .lesion_protocol import run_lesion_protocol
        from .lesion_settings import LesionSettings

        if args.arch != "lite0":
            raise ValueError("the lesion protocol trains the lite0 architecture: --arch lite0")
        size = args.image_size
        if size is not None and (size < 256 or size % 64):
            raise ValueError(f"lesion: --image-size must be a multiple of 64 >= 256, got {size}")
        epochs = (
            {}
            if args.epochs is None
            else {"patch_epochs": args.epochs, "image_epochs": args.epochs}
        )
        settings = LesionSettings(
            folds=args.folds,
            seed=args.seed,
            pretrained=not args.no_pretrained,
            lesions=not args.no_lesions,
            breast_crop=not args.no_breast_crop,
            half_resolution=args.half_resolution,
            train_final_model=not args.no_final_model,
            image_size=size,
            init=None if args.init is None else str(args.init),
            patches_per_epoch=args.patches_per_epoch,
            **epochs,
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
            init=None if args.init is None else str(args.init),
        )
        run_patient_protocol(dataset, args.out, settings, log)
    if protocol != "seed":
        from .cv_heads import write_run_heads

        write_run_heads(dataset, args.out, log)
