"""ONNX files timed in bare onnxruntime sessions: wall and CPU time per image, side by side.

Where ``mammo-edge bench`` times a model as the Predictor runs it, this times the files
themselves, with the threads and intra-op spinning chosen here, so two settings or two
quantisation recipes can be compared in one process. The files are timed in interleaved
rounds (``--calls`` calls each per round), so a busy machine slows all of them alike; the
figures are medians over rounds, and the ratio is the first file's time over each file's.
Input: bench's model-alone batch (:func:`mammo_edge.bench.model_alone.random_batch`; a
network's time does not depend on the pixel values). CPU time is this process's
(``time.process_time``: every thread), far less moved by other jobs than wall time.

Why idle intra-op threads do not spin (``reports/benchmarks/spinning.txt``, the setting
``mammo_edge.model.providers`` makes)::

    python -m benchmarks.session_speed mammo_edge/models/lite0.onnx \\
        mammo_edge/models/lite0-int8.onnx --threads 2 --batch 2 --spinning both --rounds 10

The INT8 recipes' speed (``reports/int8/speed.txt``; candidates from
``python -m benchmarks.int8_sweep recipe``)::

    python -m benchmarks.session_speed mammo_edge/models/lite0.onnx \\
        mammo_edge/models/lite0-int8.onnx runs/int8-sweep/ent.onnx --threads 1
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

#: ``--spinning`` choices: the session config values tried for each file.
SPINNING = {"off": ("0",), "on": ("1",), "both": ("1", "0")}


def build_parser() -> argparse.ArgumentParser:
    """The options of ``python -m benchmarks.session_speed``."""
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.session_speed",
        description=__doc__.split("\n\n")[0],
        epilog="\n\n".join(__doc__.split("\n\n")[1:]),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("files", type=Path, nargs="+", help="ONNX files; the first is the base")
    parser.add_argument("--threads", type=int, default=2, help="intra-op threads (default 2)")
    parser.add_argument("--batch", type=int, default=1, help="images per call (default 1)")
    parser.add_argument(
        "--spinning",
        choices=sorted(SPINNING),
        default="off",
        help="intra-op spinning of idle threads: off (mammo-edge's setting), on "
        "(onnxruntime's default) or both, one session each (default: off)",
    )
    parser.add_argument("--rounds", type=int, default=12, help="interleaved rounds (12)")
    parser.add_argument("--calls", type=int, default=4, help="calls per file per round (4)")
    parser.add_argument("--out", type=Path, help="also write the figures as JSON here")
    return parser


def open_sessions(files: list[Path], threads: int, spinning: tuple[str, ...]) -> dict:
    """One CPU session per (file, spinning value), keyed ``(position, file, value)``."""
    import onnxruntime as ort

    sessions = {}
    for position, path in enumerate(files):
        for spin in spinning:
            options = ort.SessionOptions()
            options.intra_op_num_threads = threads
            options.inter_op_num_threads = 1
            options.add_session_config_entry("session.intra_op.allow_spinning", spin)
            sessions[(position, path, spin)] = ort.InferenceSession(
                str(path), options, providers=["CPUExecutionProvider"]
            )
    return sessions


def time_sessions(sessions: dict, batch: int, rounds: int, calls: int) -> dict:
    """Median wall and CPU milliseconds per image of every session, interleaved rounds."""
    from mammo_edge.bench.model_alone import random_batch

    first = next(iter(sessions.values())).get_inputs()[0]
    inputs = {first.name: random_batch(batch, tuple(first.shape[1:3]))}
    for session in sessions.values():
        for _ in range(3):  # warm-up
            session.run(None, inputs)
    wall = {key: [] for key in sessions}
    cpu = {key: [] for key in sessions}
    for _ in range(rounds):
        for key, session in sessions.items():
            started, started_cpu = time.perf_counter(), time.process_time()
            for _ in range(calls):
                session.run(None, inputs)
            wall[key].append((time.perf_counter() - started) * 1e3 / (calls * batch))
            cpu[key].append((time.process_time() - started_cpu) * 1e3 / (calls * batch))
    return {
        key: {"wall_ms": statistics.median(wall[key]), "cpu_ms": statistics.median(cpu[key])}
        for key in sessions
    }


def main(argv: list[str] | None = None) -> int:
    """Time the files, print one line each (and ``--out`` JSON); returns 0."""
    args = build_parser().parse_args(argv)
    sessions = open_sessions(args.files, args.threads, SPINNING[args.spinning])
    figures = time_sessions(sessions, args.batch, args.rounds, args.calls)
    base = next(iter(figures.values()))
    rows = []
    for (_, path, spin), figure in figures.items():
        rows.append({"file": str(path), "spinning": spin == "1", **figure})
        print(
            f"{path} spinning={spin}: wall {figure['wall_ms']:.2f} ms/image "
            f"({base['wall_ms'] / figure['wall_ms']:.2f}x), CPU {figure['cpu_ms']:.2f} ms/image "
            f"({base['cpu_ms'] / figure['cpu_ms']:.2f}x) (batch {args.batch}, "
            f"{args.threads} threads)"
        )
    if args.out is not None:
        settings = {key: getattr(args, key) for key in ("threads", "batch", "rounds", "calls")}
        args.out.write_text(json.dumps({"settings": settings, "rows": rows}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
