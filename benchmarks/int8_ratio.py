"""How much faster the default's INT8 twin scores: batch 1, 2 threads, one call at a time.

The two models score the same preprocessed MIAS images in interleaved rounds in one process,
so a busy machine slows both alike; the ratio per round is the figure. Each round is one
pass of ``mammo-edge bench``'s core (:func:`mammo_edge.bench.model_alone.pass_rate`).

    python -m benchmarks.int8_ratio --images 64 --rounds 5 --out reports/benchmarks/int8-lite0-pair
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from pathlib import Path

import numpy as np

from .endtoend import prepare_pgm_folder


def main(argv: list[str] | None = None) -> int:
    from mammo_edge import Predictor
    from mammo_edge.bench.model_alone import pass_rate
    from mammo_edge.images.decode import load_image
    from mammo_edge.images.preprocess import prepare

    parser = argparse.ArgumentParser(prog="python -m benchmarks.int8_ratio", description=__doc__)
    parser.add_argument("--images", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--fp32", default="lite0-pair")
    parser.add_argument("--int8", default="lite0-pair-int8")
    parser.add_argument("--out", type=Path, required=True)
    arguments = parser.parse_args(argv)
    names = (arguments.fp32, arguments.int8)
    models = {name: Predictor(name, threads=2, batch_size=1, streams=1) for name in names}
    config = models[arguments.fp32].metadata.preprocess
    with tempfile.TemporaryDirectory() as work:
        origin = prepare_pgm_folder(Path(work), arguments.images)
        inputs = [
            prepare(load_image(path).pixels, config).model_input[None]
            for path in sorted(Path(work).iterdir())
        ]
    rates: dict[str, list[float]] = {name: [] for name in names}
    model_input = np.concatenate(inputs)
    for predictor in models.values():
        pass_rate(predictor.score_batch, model_input[:4], batch=1, streams=1)  # warm-up
    for _ in range(arguments.rounds):
        for name, predictor in models.items():
            rates[name].append(pass_rate(predictor.score_batch, model_input, batch=1, streams=1))
    ratios = [
        fast / slow for fast, slow in zip(rates[arguments.int8], rates[arguments.fp32], strict=True)
    ]
    report = {
        "images": len(inputs),
        "origin": origin,
        "settings": {"batch_size": 1, "threads": 2, "calls_at_once": 1},
        "sha256": {name: predictor.model_sha256 for name, predictor in models.items()},
        "images_per_s": rates,
        "int8_over_fp32_per_round": ratios,
        "median_ratio": statistics.median(ratios),
    }
    arguments.out.mkdir(parents=True, exist_ok=True)
    (arguments.out / "results.json").write_text(json.dumps(report, indent=2) + "\n")
    medians = {name: round(statistics.median(values), 1) for name, values in rates.items()}
    print(f"images/s {medians}; INT8/FP32 median {report['median_ratio']:.2f}x", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
