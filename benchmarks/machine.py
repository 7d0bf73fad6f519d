"""What the benchmark ran on: CPU, cores, library versions, BLAS, and the GEMM peak.

The CPU facts come from ``mammo-edge bench``'s core (:mod:`mammo_edge.bench.machine`); the
suite adds what needs its own extras: BLAS thread pools (threadpoolctl) and the GEMM peak.

The GEMM peak is the machine's practical FP32 limit: numpy float32 matmul of large
square matrices with BLAS limited to the same thread count as the model under test,
best of several calls. ``OPENBLAS_CORETYPE`` (set on some machines of this workplace)
forces an older OpenBLAS kernel and understates the peak; the run records it and warns.
"""

from __future__ import annotations

import importlib.metadata
import os
import platform
import time
from dataclasses import dataclass

import numpy as np
from threadpoolctl import threadpool_info, threadpool_limits

from mammo_edge.bench.machine import cpu_features, cpu_name

#: Environment variables that change thread counts or BLAS kernels, recorded with results.
RECORDED_ENV = (
    "OPENBLAS_CORETYPE",
    "OPENBLAS_L2_SIZE",
    "OPENBLAS_NUM_THREADS",
    "OMP_NUM_THREADS",
    "MKL_NUM_THREADS",
    "TF_NUM_INTRAOP_THREADS",
    "TF_NUM_INTEROP_THREADS",
    "TF_ENABLE_ONEDNN_OPTS",
    "MAMMO_EDGE_MODEL",
)
VERSIONED_PACKAGES = (
    "numpy",
    "onnxruntime",
    "onnxruntime-gpu",
    "onnx",
    "tensorflow-cpu",
    "tensorflow",
    "keras",
    "tf2onnx",
    "opencv-python-headless",
)


@dataclass(frozen=True)
class GemmPeak:
    """Best numpy float32 matmul rate at one BLAS thread count."""

    threads: int
    size: int
    repeats: int
    best_seconds: float
    gflops_per_s: float
    blas_architecture: str


def machine_info() -> dict:
    """CPU, core count, OS, Python, package versions, BLAS pools and relevant env vars."""
    versions = {}
    for package in VERSIONED_PACKAGES:
        try:
            versions[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            continue
    return {
        "cpu": cpu_name(),
        "cpu_features": cpu_features(),
        "logical_cores": os.cpu_count(),
        "usable_cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "platform": platform.platform(),
        "python": platform.python_version(),
        "versions": versions,
        "threadpools": threadpool_info(),
        "env": {name: os.environ.get(name) for name in RECORDED_ENV},
        "load_average_at_start": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
    }


def blas_warning() -> str | None:
    """A warning when OpenBLAS is forced onto an older kernel, else None."""
    forced = [name for name in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE") if os.environ.get(name)]
    if not forced:
        return None
    return (
        f"{' and '.join(forced)} set: numpy's OpenBLAS runs an older kernel, so the GEMM "
        "peak is understated and fractions of it overstated. For the real run: "
        "env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python -m benchmarks"
    )


def measure_gemm_peak(threads: int, size: int = 2048, repeats: int = 10) -> GemmPeak:
    """Best-of-``repeats`` float32 ``size x size`` matmul rate with BLAS on ``threads`` threads.

    One untimed call first (page faults, thread start-up). FLOPs per call: ``2 * size**3``.
    """
    rng = np.random.default_rng(0)
    left = rng.standard_normal((size, size), dtype=np.float32)
    right = rng.standard_normal((size, size), dtype=np.float32)
    product = np.empty((size, size), dtype=np.float32)
    with threadpool_limits(limits=threads, user_api="blas"):
        architecture = ",".join(
            sorted(
                {
                    str(pool.get("architecture", "?"))
                    for pool in threadpool_info()
                    if pool["user_api"] == "blas"
                }
            )
        )
        np.matmul(left, right, out=product)
        best = float("inf")
        for _ in range(repeats):
            started = time.perf_counter()
            np.matmul(left, right, out=product)
            best = min(best, time.perf_counter() - started)
    return GemmPeak(
        threads=threads,
        size=size,
        repeats=repeats,
        best_seconds=best,
        gflops_per_s=2.0 * size**3 / best / 1e9,
        blas_architecture=architecture,
    )


@dataclass
class CpuWatch:
    """CPU time spent on this machine by processes other than this one and its children.

    A benchmark on a shared machine is only as good as its quiet: this reads the busy time
    of all CPUs (``/proc/stat``) and subtracts this process's own CPU time and that of its
    waited-for children (``os.times``) between :meth:`start` and :meth:`stop`.
    """

    wall_s: float = 0.0
    busy_s: float = 0.0
    own_s: float = 0.0
    _start: tuple[float, float, float] | None = None

    def start(self) -> CpuWatch:
        self._start = (time.perf_counter(), _busy_seconds(), _own_seconds())
        return self

    def stop(self) -> dict:
        """``{"wall_s", "foreign_cpu_s", "foreign_share"}`` (share of all cores' time)."""
        wall0, busy0, own0 = self._start or (time.perf_counter(), _busy_seconds(), 0.0)
        self.wall_s = time.perf_counter() - wall0
        self.busy_s = _busy_seconds() - busy0
        self.own_s = _own_seconds() - own0
        foreign = max(0.0, self.busy_s - self.own_s)
        cores = os.cpu_count() or 1
        return {
            "wall_s": round(self.wall_s, 1),
            "foreign_cpu_s": round(foreign, 1),
            "foreign_share": round(foreign / (self.wall_s * cores), 3) if self.wall_s else None,
        }


def _busy_seconds() -> float:
    """Busy CPU seconds of all CPUs since boot (user, nice, system, irq, softirq)."""
    try:
        with open("/proc/stat", encoding="ascii") as handle:
            fields = handle.readline().split()[1:]
    except OSError:
        return 0.0
    user, nice, system, _idle, _iowait, irq, softirq = (int(v) for v in fields[:7])
    return (user + nice + system + irq + softirq) / os.sysconf("SC_CLK_TCK")


def _own_seconds() -> float:
    times = os.times()
    return times.user + times.system + times.children_user + times.children_system
