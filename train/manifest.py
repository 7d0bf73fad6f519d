"""``python -m train manifest``: write a dataset manifest (``docs/datasets.md``) for MIAS or
CBIS-DDSM, so that one reader serves every dataset.

* ``--mias all-mias.tar.gz --out DIR``: :mod:`train.mias_manifest`;
* ``--cbis-ddsm CSV... --images ROOT --out DIR``: :mod:`train.cbis_ddsm`.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .mias import MiasError, open_mias
from .mias_manifest import write_mias_manifest


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m train manifest",
        description="Write a dataset manifest (DIR/manifest.csv) from MIAS or CBIS-DDSM.",
    )
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--mias", type=Path, help="MIAS folder or all-mias.tar.gz")
    source.add_argument(
        "--cbis-ddsm",
        type=Path,
        nargs="+",
        metavar="CSV",
        help="CBIS-DDSM description CSVs (mass_case_description_*.csv, calc_case_...)",
    )
    parser.add_argument("--images", type=Path, help="CBIS-DDSM: the downloaded image folder")
    parser.add_argument("--out", type=Path, required=True, help="output folder")
    parser.add_argument(
        "--label",
        choices=["abnormal", "malignant"],
        default="abnormal",
        help="CBIS-DDSM: 1 for every image with a finding (abnormal, the default; "
        "CBIS-DDSM has no normal images) or 1 for malignant, 0 for benign",
    )
    parser.add_argument(
        "--official-split",
        action="store_true",
        help="CBIS-DDSM: fill the split column with the CSVs' train/test sets",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)

    def log(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    try:
        if args.mias is not None:
            mias = open_mias(args.mias)
            mias.verify_images()
            write_mias_manifest(mias, args.out, log)
        else:
            from .cbis_ddsm import CbisError, write_cbis_manifest

            if args.images is None:
                print("error: --cbis-ddsm needs --images ROOT", file=sys.stderr)
                return 2
            try:
                write_cbis_manifest(
                    args.cbis_ddsm, args.images, args.out, args.label, args.official_split, log
                )
            except CbisError as error:
                print(f"error: {error}", file=sys.stderr)
                return 1
    except MiasError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0
