"""Pick the intra-op thread count and batch size from the measured rows."""

from __future__ import annotations

from dataclasses import dataclass

from .inference import CPU, InferenceRow


@dataclass(frozen=True)
class Choice:
    """The fastest measured configuration of one engine on CPU.

    Attributes:
        engine: e.g. ``onnxruntime FP32``.
        throughput_threads, throughput_batch: the (threads, batch) with the most images/s.
        images_per_s: that rate.
        latency_threads: threads with the lowest batch-1 median latency.
        latency_ms: that latency.
        considered: how many (threads, batch) rows were compared.
    """

    engine: str
    throughput_threads: int | None
    throughput_batch: int
    images_per_s: float
    latency_threads: int | None
    latency_ms: float | None
    considered: int


def choose(rows: list[InferenceRow], engine: str) -> Choice | None:
    """Best throughput and best batch-1 latency among the measured CPU rows of ``engine``."""
    measured = [r for r in rows if r.engine == engine and r.provider == CPU and r.ok]
    if not measured:
        return None
    fastest = max(measured, key=lambda r: r.latency.images_per_s)
    single = [r for r in measured if r.batch == 1]
    quickest = min(single, key=lambda r: r.latency.median_ms) if single else None
    return Choice(
        engine=engine,
        throughput_threads=fastest.threads,
        throughput_batch=fastest.batch,
        images_per_s=fastest.latency.images_per_s,
        latency_threads=quickest.threads if quickest else None,
        latency_ms=quickest.latency.median_ms if quickest else None,
        considered=len(measured),
    )


def best_row(
    rows: list[InferenceRow], engine: str, min_batch: int = 1, max_batch: int | None = None
) -> InferenceRow | None:
    """The measured CPU row of ``engine`` with the most images/s within the batch range."""
    candidates = [
        r
        for r in rows
        if r.engine == engine
        and r.provider in (CPU, "tensorflow")
        and r.ok
        and r.batch >= min_batch
        and (max_batch is None or r.batch <= max_batch)
    ]
    return max(candidates, key=lambda r: r.latency.images_per_s) if candidates else None
