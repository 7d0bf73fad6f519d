"""Time a callable: warm-up calls first (not recorded), then repeats until enough samples."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class RepeatPolicy:
    """How long to time one configuration.

    Timed calls continue until both ``min_repeats`` calls and ``min_seconds`` of timed
    work are done, and stop at ``max_repeats`` or ``max_seconds``, whichever comes first.
    Warm-up covers ``warmup`` calls (first-call allocation, kernel selection, TF tracing).
    """

    warmup: int
    min_repeats: int
    min_seconds: float
    max_repeats: int
    max_seconds: float


QUICK_POLICY = RepeatPolicy(
    warmup=2, min_repeats=3, min_seconds=0.25, max_repeats=200, max_seconds=1.5
)
FULL_POLICY = RepeatPolicy(
    warmup=3, min_repeats=10, min_seconds=2.0, max_repeats=2000, max_seconds=12.0
)


def time_calls(call: Callable[[], object], policy: RepeatPolicy) -> list[float]:
    """Per-call wall times in seconds (``time.perf_counter``), warm-up excluded."""
    for _ in range(policy.warmup):
        call()
    timings: list[float] = []
    started = time.perf_counter()
    while True:
        before = time.perf_counter()
        call()
        timings.append(time.perf_counter() - before)
        elapsed = time.perf_counter() - started
        enough = len(timings) >= policy.min_repeats and elapsed >= policy.min_seconds
        if enough or len(timings) >= policy.max_repeats:
            break
        if elapsed >= policy.max_seconds and len(timings) >= 1:
            break
    return timings
