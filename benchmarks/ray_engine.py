"""The Ray engine against the local engine: images/s on the same folder, overhead stated.

``python -m benchmarks.ray_engine --out reports/benchmarks/ray`` (or ``python -m benchmarks
--ray``, which writes into ``OUT/ray``). For each CPU count k (default 1 and 2):

* a local Ray instance of k CPUs is started (its start-up time is reported apart);
* then, ``repeats`` times and interleaved so both see the same machine load: the local
  engine (``Predictor.iter_predict`` with k onnxruntime threads and k decoding threads) and
  the Ray engine (``RayEngine.iter_predict``: load tasks plus an actor pool on those k
  CPUs, a fresh pool each run, as each ``mammo-edge predict --engine ray`` call makes), both
  over the same folder of real 1024x1024 MIAS PGMs, records consumed to the end;
* a run of each engine over one batch of images, whose wall time is the fixed cost of a
  run (for Ray: dataset planning, actor start, model shipping) rather than scoring.

Throughput is images / median wall time (what a user waits for), and the marginal rate
(images beyond the first batch / wall time beyond the one-batch run), which cancels the
fixed costs and is what a large archive sees. The records of both engines are compared (same
paths and error codes in the same order; the largest probability difference is reported).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import os
import shlex
import statistics
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from .endtoend import prepare_pgm_folder
from .machine import machine_info


@dataclass(frozen=True)
class EngineRow:
    """One engine at one CPU count.

    Attributes:
        engine: ``local`` or ``ray``.
        cpus: k (Ray instance CPUs; local onnxruntime and decoding threads).
        images: images per run.
        wall_s: wall time of every timed run.
        median_s: their median.
        images_per_s: ``images / median_s``: what a user waits for, fixed costs included.
        marginal_images_per_s: ``(images - batch) / (median_s - median wall of a one-batch
            run)``: the steady rate with per-run fixed costs cancelled; None if not positive.
    """

    engine: str
    cpus: int
    images: int
    wall_s: list[float]
    median_s: float
    images_per_s: float
    marginal_images_per_s: float | None


@dataclass(frozen=True)
class RayOverhead:
    """Fixed costs of the Ray engine at one CPU count.

    Attributes:
        cpus: k.
        ray_init_s: ``ray.init(num_cpus=k)`` of a local instance (paid once per process).
        small_run_images: images in the small run (one batch).
        small_run_s: median wall of that run: the per-run fixed cost, nearly all overhead.
        extra_s_vs_local: median Ray wall minus median local wall on the full folder.
    """

    cpus: int
    ray_init_s: float
    small_run_images: int
    small_run_s: float
    extra_s_vs_local: float


def _timed_runs(run, repeats: int) -> list[float]:
    walls = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        walls.append(time.perf_counter() - start)
    return walls


def run_ray_benchmark(
    images: int = 128,
    cpu_counts: tuple[int, ...] = (1, 2),
    repeats: int = 3,
    batch_size: int = 16,
    model: str | None = None,
    log=print,
) -> dict:
    """Measure both engines; returns a JSON-able dict (see :func:`write_ray_reports`)."""
    import ray

    from mammo_edge.engines.ray_engine import RayEngine, plan_actors, start_ray
    from mammo_edge.images.inputs import expand_inputs
    from mammo_edge.predictor import Predictor

    rows: list[EngineRow] = []
    overheads: list[RayOverhead] = []
    parity: list[dict] = []
    with tempfile.TemporaryDirectory(prefix="mammo-ray-bench-") as work:
        folder = Path(work) / "pgm"
        origin = prepare_pgm_folder(folder, images)
        paths = expand_inputs([folder])
        log(f"{len(paths)} images from {origin}")
        for cpus in cpu_counts:
            local = Predictor(
                model, device="cpu", threads=cpus, workers=cpus, batch_size=batch_size
            )
            list(local.iter_predict(paths[:batch_size]))  # warm-up: first-call allocations
            if ray.is_initialized():
                ray.shutdown()
            start = time.perf_counter()
            start_ray(ray, None, cpus)
            ray_init_s = time.perf_counter() - start
            engine = RayEngine(local)
            plan = plan_actors(cpus)
            log(
                f"k={cpus}: ray.init {ray_init_s:.2f} s; {plan.actors} actor(s) x "
                f"{plan.threads} thread(s)"
            )
            list(engine.iter_predict(paths[:batch_size]))  # warm-up: worker processes start
            local_walls: list[float] = []
            ray_walls: list[float] = []
            local_records = ray_records = []
            for repeat in range(repeats):
                start = time.perf_counter()
                local_records = list(local.iter_predict(paths))
                local_walls.append(time.perf_counter() - start)
                start = time.perf_counter()
                ray_records = list(engine.iter_predict(paths))
                ray_walls.append(time.perf_counter() - start)
                log(
                    f"k={cpus} repeat {repeat + 1}: local {local_walls[-1]:.2f} s, "
                    f"ray {ray_walls[-1]:.2f} s"
                )
            small = _timed_runs(
                lambda engine=engine: list(engine.iter_predict(paths[:batch_size])), repeats
            )
            ray.shutdown()
            small_local = _timed_runs(
                lambda local=local: list(local.iter_predict(paths[:batch_size])), repeats
            )
            parity.append(_compare(cpus, local_records, ray_records))
            for name, walls, small_walls in (
                ("local", local_walls, small_local),
                ("ray", ray_walls, small),
            ):
                median = statistics.median(walls)
                small_median = statistics.median(small_walls)
                extra = median - small_median
                marginal = (len(paths) - batch_size) / extra if extra > 0 else None
                rows.append(
                    EngineRow(name, cpus, len(paths), walls, median, len(paths) / median, marginal)
                )
            overheads.append(
                RayOverhead(
                    cpus=cpus,
                    ray_init_s=ray_init_s,
                    small_run_images=batch_size,
                    small_run_s=statistics.median(small),
                    extra_s_vs_local=statistics.median(ray_walls) - statistics.median(local_walls),
                )
            )
    import onnxruntime

    return {
        "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "machine": machine_info(),
        "versions": {"ray": ray.__version__, "onnxruntime": onnxruntime.__version__},
        "images": len(paths),
        "image_origin": origin,
        "batch_size": batch_size,
        "repeats": repeats,
        "model_sha256": local.model_sha256,
        "rows": [asdict(row) for row in rows],
        "overheads": [asdict(overhead) for overhead in overheads],
        "parity": parity,
        "load_average": os.getloadavg() if hasattr(os, "getloadavg") else None,
    }


def _compare(cpus: int, local: list, on_ray: list) -> dict:
    same_paths = [r.path for r in local] == [r.path for r in on_ray]
    same_codes = [r.error_code for r in local] == [r.error_code for r in on_ray]
    differences = [
        abs(a.probability - b.probability)
        for a, b in zip(local, on_ray, strict=True)
        if a.probability is not None and b.probability is not None
    ]
    return {
        "cpus": cpus,
        "same_paths_in_order": same_paths,
        "same_error_codes": same_codes,
        "max_abs_probability_difference": max(differences, default=0.0),
    }


def render_markdown(results: dict, command: str) -> str:
    """The report: throughput table, overheads, parity, and the command."""
    machine = results["machine"]
    lines = [
        "# Ray engine vs local engine",
        "",
        f"Command: `{command}`  ",
        f"Run {results['created']}; {results['images']} images ({results['image_origin']}), "
        f"batch {results['batch_size']}, median of {results['repeats']} runs each; "
        f"ray {results['versions']['ray']}, onnxruntime {results['versions']['onnxruntime']}; "
        f"CPU: {machine.get('cpu', '?')}, {machine.get('logical_cores', '?')} logical cores.",
        "",
        "| engine | CPUs | median wall (s) | images/s | Ray / local | marginal images/s "
        "(fixed costs cancelled) |",
        "|---|---|---|---|---|---|",
    ]
    by_key = {(row["engine"], row["cpus"]): row for row in results["rows"]}
    for row in results["rows"]:
        local = by_key[("local", row["cpus"])]
        ratio = row["images_per_s"] / local["images_per_s"] if row["engine"] == "ray" else 1.0
        marginal = row["marginal_images_per_s"]
        lines.append(
            f"| {row['engine']} | {row['cpus']} | {row['median_s']:.2f} | "
            f"{row['images_per_s']:.1f} | {ratio:.2f}x | "
            f"{'-' if marginal is None else f'{marginal:.1f}'} |"
        )
    lines += [
        "",
        "Overhead of the Ray engine:",
        "",
        "| CPUs | ray.init (once per process) | run over one batch "
        "(per-run fixed cost) | Ray wall - local wall, full folder |",
        "|---|---|---|---|",
    ]
    for overhead in results["overheads"]:
        lines.append(
            f"| {overhead['cpus']} | {overhead['ray_init_s']:.2f} s | "
            f"{overhead['small_run_s']:.2f} s ({overhead['small_run_images']} images) | "
            f"{overhead['extra_s_vs_local']:+.2f} s |"
        )
    lines += ["", "Records, Ray vs local:", ""]
    for check in results["parity"]:
        lines.append(
            f"- {check['cpus']} CPU(s): same paths in order {check['same_paths_in_order']}, "
            f"same error codes {check['same_error_codes']}, max |dp| "
            f"{check['max_abs_probability_difference']:.2e}"
        )
    load = results.get("load_average")
    if load:
        lines += ["", f"Load average at the end: {', '.join(f'{value:.2f}' for value in load)}."]
    return "\n".join(lines) + "\n"


def write_ray_reports(results: dict, out: Path, command: str) -> dict[str, Path]:
    """Write ``results.json`` and ``results.md`` into ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    paths = {"json": out / "results.json", "markdown": out / "results.md"}
    payload = dict(results, command=command)
    paths["json"].write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
    paths["markdown"].write_text(render_markdown(results, command), encoding="utf-8")
    return paths


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.ray_engine",
        description="Images/s of mammo-edge's Ray engine at 1 and 2 CPUs against the local "
        "engine on the same folder, with Ray's overhead.",
    )
    parser.add_argument("--images", type=int, default=128, help="images in the folder")
    parser.add_argument("--cpus", default="1,2", help="CPU counts, comma-separated")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per engine")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--model", default=None, help="model name, folder or .onnx")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/ray"))
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    arguments = build_parser().parse_args(argv)
    try:
        import ray  # noqa: F401
    except ImportError:
        print("benchmarks.ray_engine: error: needs pip install 'mammo-edge[ray]'", file=sys.stderr)
        return 1
    logging.getLogger("ray").setLevel(logging.ERROR)
    cpu_counts = tuple(int(part) for part in arguments.cpus.split(",") if part.strip())
    results = run_ray_benchmark(
        images=arguments.images,
        cpu_counts=cpu_counts,
        repeats=arguments.repeats,
        batch_size=arguments.batch_size,
        model=arguments.model,
    )
    command = shlex.join(["python", "-m", "benchmarks.ray_engine", *argv])
    paths = write_ray_reports(results, arguments.out, command)
    print(paths["markdown"].read_text())
    print("wrote " + ", ".join(str(path) for path in paths.values()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
