"""OpenVINO beside onnxruntime on this CPU: the same ONNX files, the same inputs, same run.

Measures whether ``--device openvino`` would earn its place (issue 18: ship it only if it
is faster). OpenVINO is not a dependency of mammo-edge; install it for the measurement
only (``pip install openvino``). Engines, each at batch 1 on real preprocessed MIAS
breasts, interleaved round by round so a busy machine slows all alike:

- onnxruntime FP32 (``lite0``) and INT8 (``lite0-int8``), sessions as the runtime builds
  them (:func:`mammo_edge.model.providers.create_session`);
- OpenVINO FP32 and the same QDQ INT8 file (OpenVINO runs QDQ models in int8), compiled
  for CPU with ``PERFORMANCE_HINT=LATENCY``, ``INFERENCE_PRECISION_HINT=f32`` and the same
  thread count.

Process CPU time is the steadier figure on a shared machine, but with 2 threads it also
counts onnxruntime's spin-waiting; at 1 thread (``--threads 1``) it is the work itself.

Reported: median wall and process-CPU milliseconds per image, and each engine's ratio to
onnxruntime FP32 in the same run; the largest probability difference of each engine from
onnxruntime FP32 on the measured images.

    python -m benchmarks.openvino_side_by_side --threads 2 --out reports/benchmarks/openvino
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np

from .sources import MIAS_ARCHIVE


def _inputs(config, count: int) -> np.ndarray:
    from mammo_edge.images.preprocess import prepare
    from train.mias import open_mias

    dataset = open_mias(MIAS_ARCHIVE)
    references = [record.reference for record in dataset.records][:count]
    return np.stack([prepare(dataset.read_image(ref), config).model_input for ref in references])


def _engines(threads: int) -> dict:
    """name -> callable(batch) -> probabilities, for every engine measured."""
    import openvino as ov

    from mammo_edge.model.providers import create_session
    from mammo_edge.model.registry import read_verified, resolve_model

    engines = {}
    core = ov.Core()
    for name in ("lite0", "lite0-int8"):
        model_file = resolve_model(name)
        model_bytes, _ = read_verified(model_file)
        session = create_session(model_bytes, device="cpu", threads=threads, source=name)
        precision = "INT8" if name.endswith("int8") else "FP32"

        def run_ort(batch, session=session):
            return session.run(["probability"], {"image": batch})[0].ravel()

        engines[f"onnxruntime {precision}"] = run_ort
        compiled = core.compile_model(
            core.read_model(str(model_file.path)),
            "CPU",
            # f32: on CPUs with AVX-512 BF16 or AMX OpenVINO otherwise computes in bf16
            # (max |Δp| 0.073 against onnxruntime FP32 here), which is not the same model.
            {
                "PERFORMANCE_HINT": "LATENCY",
                "INFERENCE_NUM_THREADS": threads,
                "INFERENCE_PRECISION_HINT": "f32",
            },
        )
        request = compiled.create_infer_request()

        def run_openvino(batch, request=request, compiled=compiled):
            result = request.infer({0: batch})
            return np.asarray(result[compiled.output("probability")]).ravel()

        engines[f"OpenVINO {precision}"] = run_openvino
    return engines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.openvino_side_by_side", description=__doc__
    )
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--images", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--out", type=Path, required=True)
    arguments = parser.parse_args(argv)
    import openvino

    from mammo_edge import Predictor

    config = Predictor("lite0", device="cpu").metadata.preprocess
    inputs = _inputs(config, arguments.images)
    engines = _engines(arguments.threads)
    reference = None
    probabilities = {}
    for name, run in engines.items():
        for image in inputs[:3]:
            run(image[np.newaxis])  # warm-up: first calls allocate and compile kernels
        probabilities[name] = np.concatenate([run(image[np.newaxis]) for image in inputs])
    reference = probabilities["onnxruntime FP32"]
    wall = {name: [] for name in engines}
    cpu = {name: [] for name in engines}
    for _ in range(arguments.rounds):
        for name, run in engines.items():
            started, started_cpu = time.perf_counter(), time.process_time()
            for image in inputs:
                run(image[np.newaxis])
            wall[name].append((time.perf_counter() - started) / len(inputs) * 1e3)
            cpu[name].append((time.process_time() - started_cpu) / len(inputs) * 1e3)
    base_wall = statistics.median(wall["onnxruntime FP32"])
    base_cpu = statistics.median(cpu["onnxruntime FP32"])
    rows = []
    for name in engines:
        rows.append(
            {
                "engine": name,
                "wall_ms_per_image": statistics.median(wall[name]),
                "cpu_ms_per_image": statistics.median(cpu[name]),
                "speed_vs_onnxruntime_fp32_wall": base_wall / statistics.median(wall[name]),
                "speed_vs_onnxruntime_fp32_cpu": base_cpu / statistics.median(cpu[name]),
                "max_abs_probability_difference_vs_onnxruntime_fp32": float(
                    np.abs(probabilities[name] - reference).max()
                ),
            }
        )
    import onnxruntime

    with open("/proc/loadavg") as handle:
        load = handle.read().split()[:3]
    report = {
        "batch": 1,
        "threads": arguments.threads,
        "images": len(inputs),
        "rounds": arguments.rounds,
        "versions": {"openvino": openvino.__version__, "onnxruntime": onnxruntime.__version__},
        "load_average_after": load,
        "rows": rows,
    }
    arguments.out.mkdir(parents=True, exist_ok=True)
    (arguments.out / "results.json").write_text(json.dumps(report, indent=2) + "\n")
    print(f"batch 1, {arguments.threads} threads, {len(inputs)} MIAS breasts, load {load}")
    for row in rows:
        print(
            f"{row['engine']:18s} wall {row['wall_ms_per_image']:6.2f} ms "
            f"({row['speed_vs_onnxruntime_fp32_wall']:.2f}x), CPU "
            f"{row['cpu_ms_per_image']:6.2f} ms ({row['speed_vs_onnxruntime_fp32_cpu']:.2f}x), "
            f"max |Δp| vs ORT FP32 {row['max_abs_probability_difference_vs_onnxruntime_fp32']:.2g}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
