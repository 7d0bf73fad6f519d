"""Timing: warm-up calls first, then repeats until enough samples; their statistics.

One owner for how a call is timed (:func:`time_calls`), how per-call times are summarised
(:func:`summarize`: median, p95, p99, images/s) and how figures of several rounds are
summarised (:func:`spread`: min, median, max). ``mammo-edge bench`` and the development
suite (``benchmarks/``) both time through here.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np


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


@dataclass(frozen=True)
class LatencySummary:
    """Wall times of repeated calls on one batch, warm-up excluded.

    Attributes:
        batch: images per call.
        runs: timed calls.
        median_ms, p95_ms, p99_ms: per-call latency percentiles in milliseconds
            (linear interpolation between order statistics, numpy's default).
        images_per_s: ``batch / median`` seconds; the median resists the odd slow call
            that a shared machine produces, where a mean would not.
    """

    batch: int
    runs: int
    median_ms: float
    p95_ms: float
    p99_ms: float
    images_per_s: float


def summarize(seconds: Sequence[float], batch: int) -> LatencySummary:
    """Summarise per-call wall times (seconds) of calls that each processed ``batch`` images."""
    if len(seconds) == 0:
        raise ValueError("no timings to summarise: at least one timed call is needed")
    if batch < 1:
        raise ValueError(f"batch must be at least 1, got {batch}")
    values = np.asarray(seconds, dtype=np.float64)
    if np.any(values <= 0):
        raise ValueError("timings must be positive seconds")
    median, p95, p99 = np.percentile(values, [50, 95, 99])
    return LatencySummary(
        batch=batch,
        runs=len(values),
        median_ms=float(median * 1e3),
        p95_ms=float(p95 * 1e3),
        p99_ms=float(p99 * 1e3),
        images_per_s=float(batch / median),
    )


@dataclass(frozen=True)
class Spread:
    """One figure measured in several rounds: its smallest, median and largest value."""

    min: float
    median: float
    max: float
    rounds: int


def spread(values: Sequence[float]) -> Spread:
    """The :class:`Spread` of ``values`` (one per round).

    Raises:
        ValueError: no values.
    """
    if len(values) == 0:
        raise ValueError("no rounds to summarise")
    ordered = np.asarray(values, dtype=np.float64)
    return Spread(
        min=float(ordered.min()),
        median=float(np.median(ordered)),
        max=float(ordered.max()),
        rounds=len(ordered),
    )
