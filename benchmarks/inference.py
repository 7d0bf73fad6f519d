"""Model-only timing: Keras ``model(x)``, Keras ``predict``, onnxruntime FP32/INT8 (CPU, CUDA).

Every configuration is timed on the same random 0..255 batch (speed does not depend on
pixel values) and yields one :class:`InferenceRow`; a configuration that cannot run here
yields a row whose ``status`` says why instead of numbers. Timing, statistics and the
random batch are ``mammo-edge bench``'s (:mod:`mammo_edge.bench`); the suite adds Keras,
GFLOP/s and the share of the GEMM peak.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import onnxruntime as ort

from mammo_edge.bench.model_alone import random_batch
from mammo_edge.bench.timing import LatencySummary, RepeatPolicy, summarize, time_calls
from mammo_edge.model.providers import CPU_PROVIDER as CPU
from mammo_edge.model.providers import CUDA_PROVIDER as CUDA


@dataclass(frozen=True)
class InferenceRow:
    """One engine at one batch size and thread count.

    Attributes:
        engine: ``keras model(x)``, ``keras predict``, ``onnxruntime FP32``, ``onnxruntime INT8``.
        provider: ``tensorflow``, ``CPUExecutionProvider`` or ``CUDAExecutionProvider``.
        threads: intra-op threads (``None``: the engine's default, all cores).
        batch: images per call.
        status: ``ok`` or ``absent: <why>``.
        latency: timings (None unless ``ok``).
        gflops_per_s: dense FLOPs/image x images/s (None unless ``ok``).
        peak_fraction: ``gflops_per_s`` / numpy GEMM peak at the same thread count.
    """

    engine: str
    provider: str
    threads: int | None
    batch: int
    status: str
    latency: LatencySummary | None = None
    gflops_per_s: float | None = None
    peak_fraction: float | None = None

    @property
    def ok(self) -> bool:
        return self.status == "ok"


def preprocess_of(session: ort.InferenceSession, source: object):
    """The preprocessing contract the model at ``source`` carries in its metadata."""
    from mammo_edge.model.metadata import ModelMetadata

    props = session.get_modelmeta().custom_metadata_map
    return ModelMetadata.from_props(props, str(source)).preprocess


def onnx_session(
    model_path: Path, threads: int | None, provider: str = CPU
) -> ort.InferenceSession:
    """The session the runtime builds (:func:`mammo_edge.model.providers.create_session`)."""
    from mammo_edge.model.providers import create_session

    device = "cpu" if provider == CPU else "cuda"
    return create_session(
        Path(model_path).read_bytes(), device=device, threads=threads, source=str(model_path)
    )


def cuda_absent_reason() -> str | None:
    """None when onnxruntime offers CUDA, else the reason CUDA rows are absent."""
    available = ort.get_available_providers()
    if CUDA in available:
        return None
    return f"absent: onnxruntime offers {', '.join(available)} (no onnxruntime-gpu / GPU)"


def time_onnx(
    engine: str,
    model_path: Path,
    threads: int | None,
    batches: list[int],
    image_size: int,
    policy: RepeatPolicy,
    flops_per_image: int,
    peak_by_threads: dict[int, float],
    provider: str = CPU,
) -> list[InferenceRow]:
    """Time one ONNX model at each batch size with one session."""
    session = onnx_session(model_path, threads, provider)
    running = session.get_providers()[0]
    if running != provider:
        reason = f"absent: {provider} requested but onnxruntime fell back to {running}"
        return [InferenceRow(engine, provider, threads, b, reason) for b in batches]
    input_name = session.get_inputs()[0].name
    rows = []
    for batch in batches:
        feed = {input_name: random_batch(batch, image_size)}
        timings = time_calls(lambda feed=feed: session.run(None, feed), policy)
        rows.append(
            _row(engine, provider, threads, batch, timings, flops_per_image, peak_by_threads)
        )
    return rows


def time_keras(
    keras_model,
    batches: list[int],
    image_size: int,
    policy: RepeatPolicy,
    flops_per_image: int,
    peak_by_threads: dict[int, float],
    cores: int,
) -> list[InferenceRow]:
    """Time Keras ``model(x, training=False)`` and ``model.predict(x)`` at each batch size.

    TensorFlow keeps its default thread pools (all cores); the peak fraction is taken
    against the GEMM peak at ``cores`` threads.
    """
    import tensorflow as tf

    rows = []
    for engine in ("keras model(x)", "keras predict"):
        for batch in batches:
            numpy_batch = random_batch(batch, image_size)
            if engine == "keras model(x)":
                tensor = tf.constant(numpy_batch)
                call: Callable[[], object] = lambda t=tensor: keras_model(t, training=False)  # noqa: E731
            else:
                call = lambda x=numpy_batch, b=batch: keras_model.predict(  # noqa: E731
                    x, batch_size=b, verbose=0
                )
            timings = time_calls(call, policy)
            rows.append(
                _row(
                    engine,
                    "tensorflow",
                    None,
                    batch,
                    timings,
                    flops_per_image,
                    peak_by_threads,
                    cores,
                )
            )
    return rows


def absent_rows(engine: str, provider: str, batches: list[int], reason: str) -> list[InferenceRow]:
    """Rows that say why ``engine`` was not measured."""
    return [InferenceRow(engine, provider, None, batch, reason) for batch in batches]


def _row(
    engine: str,
    provider: str,
    threads: int | None,
    batch: int,
    timings: list[float],
    flops_per_image: int,
    peak_by_threads: dict[int, float],
    default_threads: int | None = None,
) -> InferenceRow:
    latency = summarize(timings, batch)
    gflops = flops_per_image * latency.images_per_s / 1e9
    peak = peak_by_threads.get(threads if threads is not None else default_threads or 0)
    fraction = gflops / peak if peak and provider != CUDA else None
    return InferenceRow(engine, provider, threads, batch, "ok", latency, gflops, fraction)
