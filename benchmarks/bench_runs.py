"""The runs behind reports/benchmarks/bench/, one after another, each logged with the load
average and the CPU time other processes took meanwhile (:class:`benchmarks.machine.CpuWatch`).

    .venv/bin/python -m benchmarks.bench_runs > reports/benchmarks/bench/run.log 2>&1
    .venv/bin/python -m benchmarks.bench_runs 0 1   # only the two `mammo-edge bench` runs

Before each step it waits (up to ``MAMMO_EDGE_QUIET_WAIT_S`` seconds, default 900) for a
quiet moment: five seconds in which the machine's CPUs were at least 85% idle. A step
started without one says so in the log.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import time

from .machine import CpuWatch

OUT = "reports/benchmarks/bench"
#: ``mammo-edge`` and ``python`` of this environment, whatever the folder it runs in.
MAMMO_EDGE = f"{sys.executable} -m mammo_edge.cli"
STEPS = [
    (f"{MAMMO_EDGE} bench --csv {OUT}/bench.csv", f"{OUT}/bench.md"),
    (f"{MAMMO_EDGE} bench --json", f"{OUT}/bench.json"),
    (
        f"{sys.executable} -m benchmarks.bench_vs_suite --rounds 3 --images 48 "
        f"--suite-images 128 --out {OUT}",
        None,
    ),
    (
        f"{sys.executable} -m benchmarks.cpu_per_image --model lite0-pair --rounds 3",
        f"{OUT}/cpu_per_image-lite0-pair.json",
    ),
    (
        f"{sys.executable} -m benchmarks.cpu_per_image --model lite0-pair-int8 --rounds 3",
        f"{OUT}/cpu_per_image-lite0-pair-int8.json",
    ),
]


#: A quiet moment: this share of all CPUs' time idle over :data:`QUIET_WINDOW_S` seconds.
QUIET_IDLE = 0.85
QUIET_WINDOW_S = 5.0


def idle_share(seconds: float) -> float:
    """Share of all CPUs' time spent idle over the next ``seconds`` (from /proc/stat)."""

    def read() -> tuple[int, int]:
        with open("/proc/stat", encoding="ascii") as handle:
            values = [int(value) for value in handle.readline().split()[1:8]]
        return values[3] + values[4], sum(values)

    idle_before, total_before = read()
    time.sleep(seconds)
    idle_after, total_after = read()
    return (idle_after - idle_before) / max(1, total_after - total_before)


def wait_for_quiet(limit_s: float) -> str:
    """Wait until a quiet moment or ``limit_s`` seconds; says which."""
    started = time.perf_counter()
    while time.perf_counter() - started < limit_s:
        share = idle_share(QUIET_WINDOW_S)
        if share >= QUIET_IDLE:
            return f"quiet ({share:.0%} idle) after {time.perf_counter() - started:.0f} s"
    return f"no quiet moment in {limit_s:.0f} s"


def main(argv: list[str] | None = None) -> int:
    """Run every step (or those whose indexes are given); returns 0."""
    only = [int(index) for index in (sys.argv[1:] if argv is None else argv)]
    for index, (command, stdout_path) in enumerate(STEPS):
        if only and index not in only:
            continue
        print(f"$ {command}" + (f" > {stdout_path}" if stdout_path else ""), flush=True)
        waited = wait_for_quiet(float(os.environ.get("MAMMO_EDGE_QUIET_WAIT_S", "900")))
        print(f"  start {time.strftime('%H:%M:%S')}, {waited}, load {os.getloadavg()}", flush=True)
        watch = CpuWatch().start()
        started = time.perf_counter()
        if stdout_path:
            with open(stdout_path, "w", encoding="utf-8") as out:
                done = subprocess.run(shlex.split(command), stdout=out, check=False)
        else:
            done = subprocess.run(shlex.split(command), check=False)
        print(
            f"  exit {done.returncode}, {time.perf_counter() - started:.1f} s; other "
            f"processes: {json.dumps(watch.stop())}; load {os.getloadavg()}",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
