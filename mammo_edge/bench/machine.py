"""What a benchmark ran on: CPU model, cores, ISA flags, GPU, onnxruntime and mammo-edge.

Read from ``/proc`` and onnxruntime only, so it works in a runtime-only install; the
development suite (``benchmarks/machine.py``) adds BLAS pools and the GEMM peak on top.
"""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

#: The SIMD and matrix features that decide onnxruntime's kernel choice.
ISA_FLAGS = ("avx2", "fma", "avx512f", "avx512_vnni", "avx_vnni", "avx512_bf16", "amx_int8")


@dataclass(frozen=True)
class MachineFacts:
    """The machine a bench run measured.

    Attributes:
        cpu: the CPU's model name.
        cores: cores this process may run on (its affinity mask).
        isa_flags: which of :data:`ISA_FLAGS` the CPU has.
        gpu: the NVIDIA GPU's name(s), or ``None`` when none is found.
        onnxruntime_version: the installed onnxruntime's version.
        providers: the execution providers that onnxruntime offers, best first.
        mammo_edge_version: this package's version.
    """

    cpu: str
    cores: int
    isa_flags: list[str]
    gpu: str | None
    onnxruntime_version: str
    providers: list[str]
    mammo_edge_version: str


def machine_facts() -> MachineFacts:
    """Collect :class:`MachineFacts` for this process (a fraction of a second)."""
    import onnxruntime

    from mammo_edge import __version__
    from mammo_edge.model.providers import available_providers

    return MachineFacts(
        cpu=cpu_name(),
        cores=usable_cores(),
        isa_flags=cpu_features(),
        gpu=gpu_name(),
        onnxruntime_version=onnxruntime.__version__,
        providers=available_providers(),
        mammo_edge_version=__version__,
    )


def usable_cores() -> int:
    """Cores this process may run on (``sched_getaffinity``), else ``os.cpu_count()``."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def cpu_name() -> str:
    """The CPU's model name from /proc/cpuinfo (falls back to ``platform.processor()``)."""
    value = _cpuinfo_field("model name")
    return value or platform.processor() or platform.machine()


def cpu_features() -> list[str]:
    """The flags of :data:`ISA_FLAGS` that /proc/cpuinfo lists (empty where unreadable)."""
    flags = set((_cpuinfo_field("flags") or "").split())
    return [flag for flag in ISA_FLAGS if flag in flags]


def gpu_name() -> str | None:
    """NVIDIA GPU model name(s), comma-separated, from the driver; ``None`` without one.

    The driver's /proc files first (no process started); else ``nvidia-smi`` when it is
    on the PATH (5 s at most).
    """
    names = []
    for information in sorted(Path("/proc/driver/nvidia/gpus").glob("*/information")):
        try:
            for line in information.read_text(encoding="utf-8", errors="replace").splitlines():
                if line.startswith("Model:"):
                    names.append(line.split(":", 1)[1].strip())
        except OSError:
            continue
    if not names and shutil.which("nvidia-smi"):
        try:
            found = subprocess.run(
                ["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"],
                capture_output=True,
                text=True,
                timeout=5,
                check=False,
            )
        except (OSError, subprocess.SubprocessError):
            return None
        if found.returncode == 0:
            names = [line.strip() for line in found.stdout.splitlines() if line.strip()]
    return ", ".join(names) or None


def _cpuinfo_field(name: str) -> str | None:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            for line in handle:
                if line.startswith(name):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return None
