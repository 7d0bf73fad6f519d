"""How much of the model's own speed ``mammo-edge predict`` keeps end to end, same run.

*Model alone*: a :class:`mammo_edge.Predictor` of the same model, scoring images already
decoded and preprocessed, in this process, one call at a time on every core
(``streams=1``: the ratio's reference); also reported (``cli_settings``): the model alone as
the CLI builds it, which on a multi-core CPU keeps two calls of one thread each in flight.
*End to end*: ``python -m mammo_edge.cli predict FOLDER`` as a fresh child over real
1024x1024 MIAS PGMs, N and 2N images. The two are interleaved round by round, so a busy
machine slows both alike; the ratio (end to end / model alone) is the figure, not the
absolute rates.

- ``with start-up``: 2N / wall of the 2N run (what a user waits for);
- ``marginal``: N / (wall 2N - wall N), start-up cancelled out;
- peak RSS of each child from ``/proc`` (VmHWM), as in :mod:`benchmarks.endtoend`;
- *load alone*: median ms per image of :func:`mammo_edge.images.pipeline.load_input` (read,
  decode, guard, preprocess) over the 2N images, one thread, in a child of each checkout
  run beside its CLI runs: the CPU each image costs besides the model.

    python -m benchmarks.overlap --images 128 --rounds 3 --out reports/benchmarks/overlap
    python -m benchmarks.overlap ... --model lite0-int8 --compare /tmp/old-checkout
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from mammo_edge.bench.process import cli_command, run_process

from .endtoend import add_compare_option, prepare_pgm_folder
from .sources import REPOSITORY


def model_alone(model: str | None, folder: Path, extra: dict) -> tuple[float, dict]:
    """Images/s of the CLI's Predictor scoring preprocessed images, timed by ``mammo-edge
    bench``'s core (:mod:`mammo_edge.bench.model_alone`: a warm-up call per stream, then
    one pass)."""
    from mammo_edge import Predictor
    from mammo_edge.bench.end_to_end import screen_inputs
    from mammo_edge.bench.model_alone import pass_rate, warm_up

    # The reference: one call at a time on every core (the CLI itself keeps two calls of
    # one thread each in flight on a multi-core CPU, reported beside it).
    predictor = Predictor(model, **{"streams": 1, **extra})
    inputs = screen_inputs(predictor, sorted(folder.iterdir())).model_input
    batch = predictor.batch_size
    warm_up(predictor.score_batch, inputs, batch, streams=1)
    rate = pass_rate(predictor.score_batch, inputs, batch, streams=1)
    settings = {"batch_size": batch, "threads": predictor.threads, "workers": predictor.workers}
    cli_like = Predictor(model, **extra)  # as the CLI builds it: its threads, batch, calls
    batch, streams = cli_like.batch_size, cli_like.streams
    warm_up(cli_like.score_batch, inputs, batch, streams)
    settings["cli_settings"] = {
        "batch_size": batch,
        "threads": cli_like.threads,
        "streams": streams,
        "model_alone_images_per_s": pass_rate(cli_like.score_batch, inputs, batch, streams),
    }
    return rate, settings


#: Run by ``python -c`` in a checkout: median ms of its ``load_input`` over a folder.
_LOAD_ALONE = """
import statistics, sys, time
from pathlib import Path
from mammo_edge import Predictor
from mammo_edge.images.pipeline import load_input
config = Predictor(sys.argv[2] or None).metadata.preprocess
paths = sorted(Path(sys.argv[1]).iterdir())
for path in paths[:4]:
    load_input(path, config)
times = []
for path in paths:
    started = time.perf_counter()
    load_input(path, config)
    times.append(time.perf_counter() - started)
print(1000 * statistics.median(times))
"""


def load_alone(model: str | None, folder: Path, repository: Path) -> float:
    """Median ms per image of a checkout's ``load_input`` (read, decode, guard,
    preprocess), one thread, in a child started in ``repository``."""
    command = [sys.executable, "-c", _LOAD_ALONE, str(folder), model or ""]
    run = subprocess.run(command, cwd=repository, capture_output=True, text=True, check=False)
    if run.returncode != 0:
        raise SystemExit(f"load_input timing failed in {repository}: {run.stderr[-800:]}")
    return float(run.stdout.split()[-1])


def cli_run(folder: Path, flags: list[str], repository: Path, work: Path) -> dict:
    """One ``predict`` child over ``folder``: wall, peak RSS, records scored."""
    output = work / "out.jsonl"
    arguments = ["predict", str(folder), "--format", "jsonl", "--output", str(output), "--quiet"]
    run = run_process(cli_command([*arguments, *flags]), work / "stdout.txt", cwd=repository)
    if run.exit_code != 0:
        raise SystemExit(f"predict failed ({run.exit_code}) in {repository}: {run.stderr_tail}")
    records = [json.loads(line) for line in output.read_text().splitlines()]
    return {
        "wall_s": run.wall_s,
        "peak_rss_mb": run.peak_rss_mb,
        "scored": sum(record["status"] == "ok" for record in records),
        "probabilities": {
            record["path"].rsplit("/", 1)[-1]: record["probability"] for record in records
        },
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.overlap", description=__doc__)
    parser.add_argument("--images", type=int, default=128, help="N: runs of N and 2N images")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--model", help="installed model name or path (default: the default)")
    parser.add_argument("--out", type=Path, required=True)
    add_compare_option(parser)
    parser.add_argument("flags", nargs="*", help="extra predict flags, after --")
    arguments = parser.parse_args(argv)
    arguments.out.mkdir(parents=True, exist_ok=True)
    flags = list(arguments.flags) + (["--model", arguments.model] if arguments.model else [])
    repositories = [REPOSITORY, *arguments.compare]
    with tempfile.TemporaryDirectory() as work_name:
        work = Path(work_name)
        small, large = work / "n", work / "2n"
        origin = prepare_pgm_folder(large, 2 * arguments.images)
        small.mkdir()
        for path in sorted(large.iterdir())[: arguments.images]:
            (small / path.name).symlink_to(path)
        rounds = []
        for index in range(arguments.rounds):
            alone, settings = model_alone(arguments.model, large, {})
            row = {"model_alone_images_per_s": alone, "settings": settings, "cli": {}}
            for repository in repositories:
                n_run = cli_run(small, flags, repository, work)
                two_n_run = cli_run(large, flags, repository, work)
                load_ms = load_alone(arguments.model, large, repository)
                row["cli"][str(repository)] = {"n": n_run, "2n": two_n_run, "load_ms": load_ms}
            rounds.append(row)
            print(f"round {index + 1}: model alone {alone:.1f} images/s", file=sys.stderr)
    summary = {}
    for repository in map(str, repositories):
        with_startup, marginal, peaks, shares, marginal_shares = [], [], [], [], []
        for row in rounds:
            runs = row["cli"][repository]
            rate = 2 * arguments.images / runs["2n"]["wall_s"]
            extra = runs["2n"]["wall_s"] - runs["n"]["wall_s"]
            steady = arguments.images / extra if extra > 0 else float("nan")
            with_startup.append(rate)
            marginal.append(steady)
            shares.append(rate / row["model_alone_images_per_s"])
            marginal_shares.append(steady / row["model_alone_images_per_s"])
            peaks.append(max(runs["n"]["peak_rss_mb"], runs["2n"]["peak_rss_mb"]))
        summary[repository] = {
            "images_per_s_with_startup": statistics.median(with_startup),
            "images_per_s_marginal": statistics.median(marginal),
            "share_of_model_alone_with_startup": statistics.median(shares),
            "share_of_model_alone_marginal": statistics.median(marginal_shares),
            "peak_rss_mb": max(peaks),
            "scored": min(row["cli"][repository]["2n"]["scored"] for row in rounds),
            "load_alone_ms_per_image": statistics.median(
                row["cli"][repository]["load_ms"] for row in rounds
            ),
        }
    first = rounds[0]["cli"]
    reference = first[str(REPOSITORY)]["2n"]["probabilities"]
    for repository in map(str, arguments.compare):
        other = first[repository]["2n"]["probabilities"]
        summary[repository]["max_abs_probability_difference_vs_this_checkout"] = max(
            abs(reference[name] - other[name]) for name in reference
        )
    for row in rounds:
        for runs in row["cli"].values():
            for size in ("n", "2n"):
                runs[size].pop("probabilities")
    report = {
        "images": [arguments.images, 2 * arguments.images],
        "origin": origin,
        "model": arguments.model or "(default)",
        "flags": arguments.flags,
        "model_alone_images_per_s": statistics.median(
            row["model_alone_images_per_s"] for row in rounds
        ),
        "settings": rounds[0]["settings"],
        "summary": summary,
        "rounds": rounds,
    }
    (arguments.out / "results.json").write_text(json.dumps(report, indent=2) + "\n")
    print(f"model alone: {report['model_alone_images_per_s']:.1f} images/s {report['settings']}")
    for repository, row in summary.items():
        print(
            f"{repository}: {row['images_per_s_with_startup']:.1f} images/s with start-up "
            f"({100 * row['share_of_model_alone_with_startup']:.0f}% of model alone), "
            f"{row['images_per_s_marginal']:.1f} marginal "
            f"({100 * row['share_of_model_alone_marginal']:.0f}%), peak RSS "
            f"{row['peak_rss_mb']:.0f} MB, scored {row['scored']}; load_input "
            f"{row['load_alone_ms_per_image']:.2f} ms/image"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
