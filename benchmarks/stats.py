"""Latency statistics: median, p95, p99 and throughput of one timed configuration."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


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
