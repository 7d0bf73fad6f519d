"""``python -m train repeated-runs --data MIAS --out runs/repeated``: the runs behind
``python -m train repeated``.

One ``python -m train fit --arch lite0 --seed S --no-final-model`` run per seed (default 0,
1 and 2: three patient splits of the lite0 recipe), into ``OUT/seed_S``; the fold weights
stay in each run's ``folds/`` for the inference-time variants ``repeated`` scores. Each fit
run is resumable per fold, so running this again continues where it stopped. Options this
command does not know go to every ``fit`` run unchanged (``--epochs 1`` for a smoke run).
"""

from __future__ import annotations

import argparse
from pathlib import Path

#: The seeds of the shipped ``lite0-pair`` analysis (reports/repeated).
DEFAULT_SEEDS = (0, 1, 2)


def build_parser() -> argparse.ArgumentParser:
    """The options of ``python -m train repeated-runs``; the rest go to ``fit``."""
    parser = argparse.ArgumentParser(
        prog="python -m train repeated-runs",
        description=__doc__.split("\n\n")[1].replace("\n", " ").replace("``", "`"),
    )
    parser.add_argument("--data", required=True, help="MIAS folder, all-mias.tar.gz or manifest")
    parser.add_argument("--out", required=True, type=Path, help="one OUT/seed_S per seed")
    parser.add_argument(
        "--seeds",
        type=int,
        nargs="+",
        default=list(DEFAULT_SEEDS),
        help="patient-split seeds (default: %(default)s)",
    )
    parser.add_argument("--arch", default="lite0", help="fit's --arch (default: %(default)s)")
    return parser


def fit_arguments(args: argparse.Namespace, seed: int, extra: list[str]) -> list[str]:
    """The ``fit`` command line of one seed's run."""
    return [
        "--arch",
        args.arch,
        "--data",
        str(args.data),
        "--out",
        str(args.out / f"seed_{seed}"),
        "--seed",
        str(seed),
        "--no-final-model",
        *extra,
    ]


def main(argv: list[str] | None = None) -> int:
    """Run ``fit`` once per seed, in order; stop at the first that fails (its exit code)."""
    from .fit_command import main as fit

    args, extra = build_parser().parse_known_args(argv)
    for seed in args.seeds:
        code = fit(fit_arguments(args, seed, extra))
        if code:
            return code
    print(f"repeated runs done: {', '.join(f'seed_{seed}' for seed in args.seeds)} in {args.out}")
    return 0
