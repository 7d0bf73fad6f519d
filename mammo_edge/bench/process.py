"""Fresh processes: ``mammo-edge predict`` as a child, its wall time and its own peak RSS.

A child's peak resident memory is its ``VmHWM`` from ``/proc``, polled until it exits:
its ``ru_maxrss`` (``os.wait4``) would inherit the parent's high-water mark across fork
and exec, and the parent may be a benchmark holding several models (or TensorFlow). Where
``/proc`` is unreadable, ``ru_maxrss`` is the fallback.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class ProcessRun:
    """One child process: wall time, exit code, peak RSS, and its stderr tail."""

    wall_s: float
    exit_code: int
    peak_rss_mb: float
    stderr_tail: str


def cli_command(arguments: list[str]) -> list[str]:
    """``mammo-edge ARGUMENTS`` run with this interpreter, so this environment is measured."""
    return [sys.executable, "-m", "mammo_edge.cli", *arguments]


def run_process(
    command: list[str], stdout_path: Path, timeout_s: float = 600, cwd: Path | None = None
) -> ProcessRun:
    """Run ``command`` (in ``cwd``), poll its peak RSS, reap it with ``os.wait4``, time it."""
    with stdout_path.open("wb") as stdout, tempfile.TemporaryFile() as stderr:
        started = time.perf_counter()
        process = subprocess.Popen(command, stdout=stdout, stderr=stderr, cwd=cwd)
        deadline = started + timeout_s
        high_water_kib = 0
        while True:
            high_water_kib = max(high_water_kib, _vm_hwm_kib(process.pid))
            pid, status, usage = os.wait4(process.pid, os.WNOHANG)
            if pid:
                break
            if time.perf_counter() > deadline:
                process.kill()
                pid, status, usage = os.wait4(process.pid, 0)
                break
            time.sleep(0.001)
        wall = time.perf_counter() - started
        process.returncode = os.waitstatus_to_exitcode(status)  # reaped here, not by Popen
        stderr.seek(0)
        tail = stderr.read()[-800:].decode("utf-8", "replace")
    peak_kib = high_water_kib if high_water_kib else usage.ru_maxrss
    return ProcessRun(wall, process.returncode, peak_kib / 1024, tail)


def predict_child(
    inputs: list[str], flags: list[str], work: Path, ok_codes: tuple[int, ...] = (0,)
) -> ProcessRun:
    """``mammo-edge predict INPUTS --format jsonl --output FILE --quiet FLAGS`` in a child.

    Raises:
        RuntimeError: the child's exit code is not in ``ok_codes`` (0: every input scored;
            2: some failed); the message ends with its stderr's end.
    """
    output = work / "predict.jsonl"
    arguments = ["predict", *inputs, "--format", "jsonl", "--output", str(output), "--quiet"]
    run = run_process(cli_command([*arguments, *flags]), work / "stdout.txt")
    output.unlink(missing_ok=True)
    if run.exit_code not in ok_codes:
        raise RuntimeError(f"mammo-edge predict exited {run.exit_code}: {run.stderr_tail.strip()}")
    return run


def cold_start(image: str, flags: list[str], work: Path) -> ProcessRun:
    """A fresh process predicting one image: interpreter start, imports, model load, score.

    Raises:
        RuntimeError: the child did not score the image (exit code not 0).
    """
    return predict_child([image], flags, work)


def peak_rss(paths: list[str], flags: list[str], work: Path) -> ProcessRun:
    """A fresh process predicting ``paths`` (listed in a file, ``@list``): its peak RSS.

    Raises:
        RuntimeError: the child failed (exit code other than 0 or 2).
    """
    listing = work / "inputs.txt"
    listing.write_text("\n".join(paths) + "\n", encoding="utf-8")
    return predict_child([f"@{listing}"], flags, work, ok_codes=(0, 2))


def _vm_hwm_kib(pid: int) -> int:
    """Peak RSS (VmHWM) of a running process in KiB from /proc; 0 when unreadable."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as handle:
            for line in handle:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return 0
