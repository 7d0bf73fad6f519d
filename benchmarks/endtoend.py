"""End to end: ``mammo-edge predict`` over a folder of real 1024x1024 PGMs, as a user runs it.

Each measurement is a fresh child process (``python -m mammo_edge.cli predict ...``)
timed by wall clock, with its own peak resident memory (VmHWM), by ``mammo-edge bench``'s
core (:mod:`mammo_edge.bench.process`), cold start included. Throughput is given two ways:

* *with start-up*: images / wall time of one process (what a user waits for);
* *marginal*: (images of a 2N run - images of an N run) / (time difference), i.e. the
  steady-state rate with interpreter start, imports and model load cancelled out.

The in-process stage split (decode, resize, inference per image) says where the time goes.
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mammo_edge.bench.process import cli_command, run_process
from mammo_edge.bench.process import cold_start as bench_cold_start

from .sources import MIAS_ARCHIVE, REPOSITORY


@dataclass(frozen=True)
class CliThroughput:
    """``mammo-edge predict`` on a folder, at N and 2N images.

    Attributes:
        label: which model and flags.
        arguments: extra CLI arguments used (``--model``, ``--batch-size``...).
        images: images in the larger run; scored: of those, results with a probability.
        wall_s: wall time of the larger run.
        images_per_s_with_startup: images / wall of the larger run.
        images_per_s_marginal: (2N - N) / (wall 2N - wall N); None if not measurable.
        peak_rss_mb: peak RSS of the larger run's process.
        status: ``ok`` or why not.
    """

    label: str
    arguments: list[str]
    images: int
    scored: int
    wall_s: float | None
    images_per_s_with_startup: float | None
    images_per_s_marginal: float | None
    peak_rss_mb: float | None
    status: str


@dataclass(frozen=True)
class ColdStart:
    """Fresh processes predicting one image with one model: median wall time (seconds)."""

    predict_one_image_s: float | None
    runs: int
    peak_rss_mb: float | None
    status: str


@dataclass(frozen=True)
class StartupParts:
    """What any cold start is made of, in seconds (medians of fresh processes)."""

    python_startup_s: float
    import_onnxruntime_s: float
    import_mammo_edge_s: float
    import_mammo_edge_cli_s: float


@dataclass(frozen=True)
class StageSplit:
    """In-process milliseconds per image for each pipeline stage (one thread, batch ``batch``)."""

    images: int
    batch: int
    threads: int | None
    decode_ms: float
    resize_ms: float
    inference_ms: float

    @property
    def total_ms(self) -> float:
        return self.decode_ms + self.resize_ms + self.inference_ms


def prepare_pgm_folder(folder: Path, count: int) -> str:
    """Write ``count`` real 1024x1024 PGMs into ``folder``; returns where they came from.

    MIAS images from ``../shared/mias/all-mias.tar.gz`` (cycled when ``count`` exceeds
    the 322 references / 258 files); without it, the repository's ``examples/*.pgm``;
    without those, ``mammo-edge bench``'s synthetic set (said so in the report).
    """
    folder.mkdir(parents=True, exist_ok=True)
    sources: list[bytes] = []
    origin = ""
    if MIAS_ARCHIVE.is_file():
        from train.mias import open_mias

        dataset = open_mias(MIAS_ARCHIVE)
        references = [record.reference for record in dataset.records][:count]
        sources = [dataset.read_bytes(reference) for reference in references]
        origin = f"MIAS {MIAS_ARCHIVE.name}"
    else:
        examples = sorted((REPOSITORY / "examples").glob("*.pgm"))
        if examples:
            sources = [path.read_bytes() for path in examples]
            origin = "repository examples/*.pgm (replicated)"
    if not sources:
        from mammo_edge.bench.images import write_synthetic_set

        made = write_synthetic_set(folder / "synthetic", min(count, 4))
        sources = [path.read_bytes() for path in made]
        for path in made:
            path.unlink()
        (folder / "synthetic").rmdir()
        origin = "mammo-edge bench's synthetic 1024x1024 PGMs (no MIAS archive, no examples)"
    for index in range(count):
        (folder / f"image{index:05d}.pgm").write_bytes(sources[index % len(sources)])
    return origin


def add_compare_option(parser) -> None:
    """``--compare CHECKOUT`` (repeatable): also run another checkout's CLI, same rounds."""
    parser.add_argument(
        "--compare",
        type=Path,
        action="append",
        default=[],
        help="also run the CLI of another checkout of the repository (e.g. a git worktree "
        "of an older commit), interleaved with this one",
    )


def cli_throughput(
    label: str,
    small_folder: Path,
    large_folder: Path,
    extra: list[str],
    work: Path,
    repeats: int = 3,
) -> CliThroughput:
    """Time ``mammo-edge predict`` on the N-image and 2N-image folders (median of
    ``repeats`` runs each)."""
    runs = {}
    for name, folder in (("small", small_folder), ("large", large_folder)):
        slug = "".join(c if c.isalnum() else "_" for c in label)
        output = work / f"{slug}_{name}.jsonl"
        arguments = ["predict", str(folder), "--format", "jsonl", "--output", str(output)]
        # Each run lasts about a second: take the median of a few so that one slow start
        # (page cache, a neighbour's burst) does not decide the rate or the marginal.
        attempts = []
        for _ in range(repeats):
            run = run_process(cli_command([*arguments, "--quiet", *extra]), work / "stdout.txt")
            if run.exit_code != 0:
                return CliThroughput(
                    label,
                    extra,
                    0,
                    0,
                    None,
                    None,
                    None,
                    None,
                    f"failed: exit {run.exit_code}: {run.stderr_tail.strip()[-300:]}",
                )
            attempts.append(run)
        run = sorted(attempts, key=lambda attempt: attempt.wall_s)[len(attempts) // 2]
        runs[name] = (run, _count_scored(output), _count_lines(folder))
    small_run, _, small_images = runs["small"]
    large_run, scored, large_images = runs["large"]  # `output` is the large run's
    difference = large_run.wall_s - small_run.wall_s
    marginal = (large_images - small_images) / difference if difference > 0 else None
    return CliThroughput(
        label=label,
        arguments=extra,
        images=large_images,
        scored=scored,
        wall_s=large_run.wall_s,
        images_per_s_with_startup=large_images / large_run.wall_s,
        images_per_s_marginal=marginal,
        peak_rss_mb=large_run.peak_rss_mb,
        status="ok" if scored == large_images else _unscored_status(output, scored, large_images),
    )


def cold_start(image: Path, extra: list[str], work: Path, repeats: int) -> ColdStart:
    """Median wall time of ``repeats`` fresh processes predicting ``image``
    (:func:`mammo_edge.bench.process.cold_start`, as ``mammo-edge bench`` measures it)."""
    walls, peak, status = [], None, "ok"
    for _ in range(repeats):
        try:
            run = bench_cold_start(str(image), extra, work)
        except RuntimeError as error:
            status = f"failed: {str(error)[-300:]}"
            break
        walls.append(run.wall_s)
        peak = run.peak_rss_mb
    return ColdStart(
        predict_one_image_s=float(np.median(walls)) if walls else None,
        runs=len(walls),
        peak_rss_mb=peak,
        status=status,
    )


def startup_parts(work: Path, repeats: int) -> StartupParts:
    """Bare interpreter start and the import times a cold start pays, each in a fresh process."""
    return StartupParts(
        python_startup_s=_median_wall([sys.executable, "-c", "pass"], work, repeats),
        import_onnxruntime_s=_import_seconds("onnxruntime", work, repeats),
        import_mammo_edge_s=_import_seconds("mammo_edge", work, repeats),
        import_mammo_edge_cli_s=_import_seconds("mammo_edge.cli", work, repeats),
    )


def stage_split(
    folder: Path, model_path: Path, batch: int, threads: int | None, limit: int = 64
) -> StageSplit:
    """Per-image milliseconds of decode, resize and inference, in this process, one by one."""
    from mammo_edge.images.decode import load_image
    from mammo_edge.images.preprocess import to_model_input

    from .inference import onnx_session, preprocess_of

    paths = sorted(folder.glob("*.pgm"))[:limit]
    session = onnx_session(model_path, threads)
    input_name = session.get_inputs()[0].name
    config = preprocess_of(session, model_path)
    to_model_input(load_image(paths[0]).pixels, config)  # warm caches and imports
    started = time.perf_counter()
    images = [load_image(path).pixels for path in paths]
    decoded = time.perf_counter()
    inputs = np.stack([to_model_input(image, config) for image in images])
    resized = time.perf_counter()
    for _ in range(3):  # warm-up: the first calls at a new batch size allocate buffers
        session.run(None, {input_name: inputs[:batch]})
    passes = []
    for _ in range(3):
        pass_start = time.perf_counter()
        for start in range(0, len(inputs), batch):
            session.run(None, {input_name: inputs[start : start + batch]})
        passes.append(time.perf_counter() - pass_start)
    count = len(paths)
    return StageSplit(
        images=count,
        batch=batch,
        threads=threads,
        decode_ms=(decoded - started) / count * 1e3,
        resize_ms=(resized - decoded) / count * 1e3,
        inference_ms=float(np.median(passes)) / count * 1e3,
    )


def _import_seconds(module: str, work: Path, repeats: int) -> float:
    code = (
        "import time, sys; t = time.perf_counter(); "
        f"import {module}; sys.stdout.write(repr(time.perf_counter() - t))"
    )
    values = []
    for _ in range(repeats):
        run = run_process([sys.executable, "-c", code], work / "import.txt")
        if run.exit_code == 0:
            values.append(float((work / "import.txt").read_text()))
    return float(np.median(values)) if values else float("nan")


def _median_wall(command: list[str], work: Path, repeats: int) -> float:
    return float(np.median([run_process(command, work / "out.txt").wall_s for _ in range(repeats)]))


def _count_lines(folder: Path) -> int:
    return sum(1 for _ in folder.glob("*.pgm"))


def _count_scored(output: Path) -> int:
    scored = 0
    for line in output.read_text(encoding="utf-8").splitlines():
        if line.strip() and json.loads(line).get("probability") is not None:
            scored += 1
    return scored


def _unscored_status(output: Path, scored: int, images: int) -> str:
    """``only S/N images scored`` with the error codes the other records carry."""
    codes: dict[str, int] = {}
    for line in output.read_text(encoding="utf-8").splitlines():
        if line.strip():
            record = json.loads(line)
            if record.get("probability") is None:
                code = str(record.get("error_code") or record.get("code") or "no probability")
                codes[code] = codes.get(code, 0) + 1
    listed = ", ".join(f"{code} x{count}" for code, count in sorted(codes.items()))
    return f"only {scored}/{images} images scored ({listed})"
