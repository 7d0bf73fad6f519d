"""The model alone: inference on input already decoded and preprocessed, no files, no records.

What ``session.run`` costs, as the local engine calls it: ``streams`` calls in flight on
one session (onnxruntime sessions are thread-safe), each on the Predictor's threads. The
batch is searched over a few sizes; latency is one batch-1 call at a time.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from mammo_edge.bench.timing import LatencySummary, RepeatPolicy, summarize, time_calls
from mammo_edge.model.providers import on_gpu

#: One call's work: ``(N, H, W, 1)`` float32 in, anything out (e.g. ``Predictor.score_batch``).
Score = Callable[[np.ndarray], object]

#: Batch sizes tried on each kind of device (the Predictor's default is always added).
CPU_BATCHES = (1, 2, 4, 8)
GPU_BATCHES = (1, 8, 16, 32, 64)
#: Passes over the batch sizes in the search (each size's fastest pass counts).
SEARCH_PASSES = 2
#: How much faster than the default batch another must be to replace it (a fraction).
BATCH_MARGIN = 0.10
#: Batch-1 latency: enough calls for a p95 (20), about a second at most.
LATENCY_POLICY = RepeatPolicy(
    warmup=2, min_repeats=20, min_seconds=0.3, max_repeats=400, max_seconds=1.0
)


def random_batch(batch: int, size: int | tuple[int, int], seed: int = 0) -> np.ndarray:
    """A ``(batch, H, W, 1)`` float32 batch of 0..255 values, as after preprocessing.

    ``size`` is the model input's ``(H, W)`` (read from the model), or one side if square.
    """
    height, width = (size, size) if isinstance(size, int) else size
    rng = np.random.default_rng(seed)
    return rng.uniform(0, 255, size=(batch, height, width, 1)).astype(np.float32)


def candidate_batches(provider: str, default: int, limit: int) -> list[int]:
    """The batch sizes to search on ``provider``: :data:`CPU_BATCHES` or
    :data:`GPU_BATCHES` and the Predictor's ``default``, none above ``limit`` (the images)."""
    sizes = set(GPU_BATCHES if on_gpu(provider) else CPU_BATCHES) | {default}
    kept = sorted(size for size in sizes if size <= max(1, limit))
    return kept or [1]


def tile(inputs: np.ndarray, count: int) -> np.ndarray:
    """``count`` inputs taken cyclically from ``inputs`` (``(N, H, W, 1)``)."""
    if len(inputs) == 0:
        raise ValueError("no model input to time")
    return inputs[np.arange(count) % len(inputs)]


def timed_pass(score: Score, inputs: np.ndarray, batch: int, streams: int) -> tuple[int, float]:
    """One pass over ``inputs`` in batches of ``batch``, ``streams`` calls at once: the
    images scored and the wall seconds it took.

    The pass covers at least two batches per stream (inputs repeated when fewer), so every
    stream has work the whole time.
    """
    count = max(len(inputs), 2 * batch * streams)
    data = tile(inputs, count)
    batches = [data[start : start + batch] for start in range(0, count, batch)]
    started = time.perf_counter()
    if streams == 1:
        for part in batches:
            score(part)
    else:
        with ThreadPoolExecutor(streams, thread_name_prefix="mammo-bench") as pool:
            list(pool.map(score, batches))
    return count, time.perf_counter() - started


def pass_rate(score: Score, inputs: np.ndarray, batch: int, streams: int) -> float:
    """Images/s of one :func:`timed_pass`."""
    count, seconds = timed_pass(score, inputs, batch, streams)
    return count / seconds


def warm_up(score: Score, inputs: np.ndarray, batch: int, streams: int) -> None:
    """First calls at a batch size allocate buffers and pick kernels: one per stream, untimed."""
    data = tile(inputs, batch * streams)
    for start in range(0, len(data), batch):
        score(data[start : start + batch])


def search_best_batch(
    score: Score,
    inputs: np.ndarray,
    batches: Sequence[int],
    streams: int,
    default: int | None = None,
    passes: int = SEARCH_PASSES,
) -> tuple[int, dict[int, float]]:
    """The batch to measure at, and the best images/s of every batch tried.

    Each batch is warmed up once (:func:`warm_up`), then timed over ``passes`` passes
    (:func:`pass_rate`) that go round the sizes in turn, keeping each size's fastest: a
    burst of other work on the machine then slows one pass of a size, not its figure.
    :func:`choose_batch` picks from those rates (``default``: the Predictor's own batch);
    the rounds that follow re-measure only that one.
    """
    if not batches:
        raise ValueError("no batch sizes to search")
    rates: dict[int, float] = {}
    for batch in batches:
        warm_up(score, inputs, batch, streams)
    for _ in range(passes):
        for batch in batches:
            rates[batch] = max(rates.get(batch, 0.0), pass_rate(score, inputs, batch, streams))
    return choose_batch(rates, default), rates


def choose_batch(rates: dict[int, float], default: int | None = None) -> int:
    """The fastest batch of ``rates`` (batch -> images/s), unless it beats ``default`` by
    less than :data:`BATCH_MARGIN`: one pass each on a shared machine differs by that much
    from noise alone, and the default is what ``predict`` runs."""
    fastest = max(rates, key=rates.__getitem__)
    if default in rates and rates[fastest] < rates[default] * (1 + BATCH_MARGIN):
        return default
    return fastest


def batch1_latency(
    score: Score, single: np.ndarray, policy: RepeatPolicy = LATENCY_POLICY
) -> LatencySummary:
    """Per-call latency of ``score`` on one ``(1, H, W, 1)`` input, one call at a time."""
    if single.shape[0] != 1:
        raise ValueError(f"expected one input, got a batch of {single.shape[0]}")
    return summarize(time_calls(lambda: score(single), policy), batch=1)
