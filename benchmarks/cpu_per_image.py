"""CPU time per image of the model alone, of loading alone and of end to end, one process.

Where the end-to-end share of ``mammo-edge bench`` goes on a CPU: if end to end costs the
CPU what the model and loading cost apart, nothing is lost to waiting, and on a machine
with every core busy the share cannot pass ``model / (model + load)``. Process CPU time
(``time.process_time``: every thread of this process) is far less moved by other jobs on
the machine than wall time, so this holds on a shared machine where images/s do not.
Passes are bench's core (:mod:`mammo_edge.bench`), at the Predictor's default settings.

    python -m benchmarks.cpu_per_image --model lite0-pair-int8 --images 48 --rounds 3
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path


def cpu_ms_per_image(work: Callable[[], object], images: int) -> float:
    """Milliseconds of this process's CPU time per image that ``work`` takes."""
    started = time.process_time()
    work()
    return (time.process_time() - started) * 1e3 / images


def main(argv: list[str] | None = None) -> int:
    from mammo_edge import Predictor
    from mammo_edge.bench.end_to_end import end_to_end_rate, screen_inputs
    from mammo_edge.bench.images import write_synthetic_set
    from mammo_edge.bench.model_alone import timed_pass, warm_up

    parser = argparse.ArgumentParser(prog="python -m benchmarks.cpu_per_image", description=__doc__)
    parser.add_argument("--model", default=None, help="default: the default model")
    parser.add_argument("--images", type=int, default=48)
    parser.add_argument("--rounds", type=int, default=3)
    arguments = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as work:
        paths = [str(path) for path in write_synthetic_set(Path(work), arguments.images)]
        predictor = Predictor(arguments.model)
        inputs = screen_inputs(predictor, paths).model_input
        batch, streams = predictor.batch_size, predictor.streams
        warm_up(predictor.score_batch, inputs, batch, streams)
        end_to_end_rate(predictor, paths[:8])
        count = len(paths)
        parts: dict[str, list[float]] = {"model_alone": [], "load": [], "end_to_end": []}
        for _ in range(arguments.rounds):
            images = max(count, 2 * batch * streams)
            parts["model_alone"].append(
                cpu_ms_per_image(
                    lambda: timed_pass(predictor.score_batch, inputs, batch, streams), images
                )
            )
            parts["load"].append(
                cpu_ms_per_image(lambda: [predictor.load(p, p) for p in paths], count)
            )
            parts["end_to_end"].append(
                cpu_ms_per_image(lambda: end_to_end_rate(predictor, paths), count)
            )
    medians = {name: statistics.median(values) for name, values in parts.items()}
    report = {
        "model": predictor.model_file.name,
        "sha256": predictor.model_sha256,
        "settings": {"batch": batch, "streams": streams, "threads": predictor.threads},
        "cpu_ms_per_image": medians,
        "end_to_end_minus_parts_ms": medians["end_to_end"]
        - medians["model_alone"]
        - medians["load"],
        "share_ceiling_model_over_end_to_end": medians["model_alone"] / medians["end_to_end"],
        "rounds": parts,
    }
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
