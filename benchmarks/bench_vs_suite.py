"""``mammo-edge bench`` against the development suite's figures, in the same rounds.

Each round runs, one after the other, ``mammo-edge bench --model M --rounds 1 --json`` and
``python -m benchmarks.overlap --model M --rounds 1 --images N -- --batch-size B`` (B: the
batch bench chose in the first round; N: ``--suite-images``, 128 as the suite's own
default, since its marginal rate is a difference of two wall times and needs long runs),
each as a fresh child, for every model. Compared:

- end to end: bench's in-process rate (files in, records out, steady state) against the
  suite's marginal rate of fresh ``mammo-edge predict`` processes ((2N - N) / (wall 2N -
  wall N): start-up cancelled out), at the same batch;
- the model alone: bench's at its batch against the suite's Predictor as the CLI builds
  it (``cli_settings``; its default batch, said when it differs from bench's);
- the share: bench's against the suite's marginal rate over its CLI-like model alone.

    python -m benchmarks.bench_vs_suite --rounds 3 --images 48 --suite-images 128 \
        --out reports/benchmarks/bench
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from .sources import REPOSITORY

DEFAULT_MODELS = ("lite0-pair", "lite0-pair-int8")


def bench_round(model: str, images: int) -> dict:
    """One ``mammo-edge bench`` child: its row for ``model``."""
    command = [sys.executable, "-m", "mammo_edge.cli", "bench", "--model", model]
    command += ["--rounds", "1", "--images", str(images), "--json", "--quiet"]
    done = subprocess.run(command, capture_output=True, text=True, check=False, cwd=REPOSITORY)
    if done.returncode != 0:
        raise SystemExit(f"bench failed for {model}: {done.stderr[-800:]}")
    return json.loads(done.stdout)["rows"][0]


def suite_round(model: str, images: int, batch: int, work: Path) -> dict:
    """One ``benchmarks.overlap`` child (one round) at ``--batch-size batch``: its figures."""
    out = work / "overlap"
    command = [sys.executable, "-m", "benchmarks.overlap", "--model", model, "--rounds", "1"]
    command += ["--images", str(images), "--out", str(out), "--", "--batch-size", str(batch)]
    done = subprocess.run(command, capture_output=True, text=True, check=False, cwd=REPOSITORY)
    if done.returncode != 0:
        raise SystemExit(f"benchmarks.overlap failed for {model}: {done.stderr[-800:]}")
    report = json.loads((out / "results.json").read_text())
    summary = report["summary"][str(REPOSITORY)]
    cli_like = report["settings"]["cli_settings"]
    marginal = summary["images_per_s_marginal"]
    return {
        "end_to_end_marginal_images_per_s": marginal,
        "end_to_end_with_startup_images_per_s": summary["images_per_s_with_startup"],
        "model_alone_images_per_s": cli_like["model_alone_images_per_s"],
        "model_alone_batch": cli_like["batch_size"],
        "share_marginal": marginal / cli_like["model_alone_images_per_s"],
    }


def compare(bench: list[dict], suite: list[dict]) -> dict:
    """Medians over the rounds and bench / suite for each figure."""
    pairs = {
        "end_to_end_images_per_s": ("end_to_end_images_per_s", "end_to_end_marginal_images_per_s"),
        "model_alone_images_per_s": ("model_alone_images_per_s", "model_alone_images_per_s"),
        "end_to_end_share": ("end_to_end_share", "share_marginal"),
    }
    result = {}
    for figure, (bench_key, suite_key) in pairs.items():
        ours = statistics.median(row[bench_key] for row in bench)
        theirs = statistics.median(row[suite_key] for row in suite)
        result[figure] = {"bench": ours, "suite": theirs, "bench_over_suite": ours / theirs}
    return result


def main(argv: list[str] | None = None) -> int:
    prog = "python -m benchmarks.bench_vs_suite"
    parser = argparse.ArgumentParser(prog=prog, description=__doc__)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--images", type=int, default=48, help="bench's images")
    parser.add_argument(
        "--suite-images", type=int, default=128, help="the suite's N (runs of N and 2N)"
    )
    parser.add_argument("--model", action="append", help=f"default: {', '.join(DEFAULT_MODELS)}")
    parser.add_argument("--out", type=Path, required=True)
    arguments = parser.parse_args(argv)
    models = arguments.model or list(DEFAULT_MODELS)
    rounds: dict[str, dict[str, list]] = {model: {"bench": [], "suite": []} for model in models}
    with tempfile.TemporaryDirectory() as work:
        for index in range(arguments.rounds):
            for model in models:
                row = bench_round(model, arguments.images)
                batch = (rounds[model]["bench"] or [row])[0]["batch"]
                rounds[model]["bench"].append(row)
                rounds[model]["suite"].append(
                    suite_round(model, arguments.suite_images, batch, Path(work))
                )
                print(f"round {index + 1}: {model} done", file=sys.stderr)
    report = {
        "command": "python -m benchmarks.bench_vs_suite " + " ".join(argv or sys.argv[1:]),
        "models": {
            model: {"comparison": compare(runs["bench"], runs["suite"]), **runs}
            for model, runs in rounds.items()
        },
    }
    arguments.out.mkdir(parents=True, exist_ok=True)
    (arguments.out / "bench_vs_suite.json").write_text(json.dumps(report, indent=2) + "\n")
    for model, entry in report["models"].items():
        for figure, values in entry["comparison"].items():
            print(
                f"{model} {figure}: bench {values['bench']:.3g}, suite {values['suite']:.3g}, "
                f"bench/suite {values['bench_over_suite']:.3f}"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
