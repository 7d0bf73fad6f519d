"""Prove that the ONNX model computes what the Keras model computes.

Both run on the same preprocessed batch; the export fails when any probability differs by
more than the tolerance. onnxruntime is checked with graph optimisations off and at the
level the runtime uses (ORT_ENABLE_ALL, onnxruntime's default), because fused kernels can
round differently from the plain graph.
"""

from __future__ import annotations

from dataclasses import dataclass

import keras
import numpy as np
import onnxruntime as ort

from .errors import ExportError

#: max |Δp| allowed between Keras and onnxruntime (issue 3).
PARITY_TOLERANCE = 1e-5
#: Heatmap cells may differ between Keras and onnxruntime by at most this much.
HEATMAP_PARITY_TOLERANCE = 1e-4
_CHUNK = 32


@dataclass(frozen=True)
class ParityReport:
    """How closely onnxruntime reproduces Keras on one batch of images."""

    images: int
    image_source: str
    max_abs_difference: float
    mean_abs_difference: float
    max_abs_difference_unoptimized: float
    tolerance: float


def keras_probabilities(model: keras.Model, batch: np.ndarray) -> np.ndarray:
    """Keras inference (``training=False``) on a (N, S, S, 1) float32 batch -> (N,) float32."""
    outputs = [
        np.asarray(_first(model(batch[start : start + _CHUNK], training=False)))
        for start in range(0, len(batch), _CHUNK)
    ]
    return np.concatenate(outputs).reshape(-1).astype(np.float32)


def _first(outputs):
    # A model with a heatmap returns [probability, heatmap]; parity is on the probability.
    return outputs[0] if isinstance(outputs, (list, tuple)) else outputs


def onnx_probabilities(
    model_bytes: bytes,
    batch: np.ndarray,
    level: ort.GraphOptimizationLevel = ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
) -> np.ndarray:
    """onnxruntime CPU inference of a serialized model on a (N, S, S, 1) batch -> (N,)."""
    options = ort.SessionOptions()
    options.graph_optimization_level = level
    options.intra_op_num_threads = 1
    session = ort.InferenceSession(model_bytes, options, providers=["CPUExecutionProvider"])
    input_name = session.get_inputs()[0].name
    outputs = [
        session.run(None, {input_name: batch[start : start + _CHUNK]})[0]
        for start in range(0, len(batch), _CHUNK)
    ]
    return np.concatenate(outputs).reshape(-1).astype(np.float32)


def check_parity(
    keras_model: keras.Model,
    model_bytes: bytes,
    batch: np.ndarray,
    image_source: str,
    tolerance: float = PARITY_TOLERANCE,
) -> ParityReport:
    """Compare Keras and onnxruntime probabilities on ``batch``.

    Args:
        keras_model: the model that was exported.
        model_bytes: the serialized ONNX model.
        batch: (N, S, S, 1) float32, preprocessed with ``mammo_edge.images.preprocess``.
        image_source: where the images came from, for the report.
        tolerance: largest allowed |Δp|.

    Raises:
        ExportError: some probability differs by more than ``tolerance``.
    """
    if batch.ndim != 4 or batch.dtype != np.float32 or len(batch) == 0:
        raise ExportError(
            f"parity needs a non-empty (N, S, S, 1) float32 batch, got {batch.shape} {batch.dtype}"
        )
    expected = keras_probabilities(keras_model, batch)
    optimized = np.abs(onnx_probabilities(model_bytes, batch) - expected)
    unoptimized = np.abs(
        onnx_probabilities(model_bytes, batch, ort.GraphOptimizationLevel.ORT_DISABLE_ALL)
        - expected
    )
    report = ParityReport(
        images=len(batch),
        image_source=image_source,
        max_abs_difference=float(optimized.max()),
        mean_abs_difference=float(optimized.mean()),
        max_abs_difference_unoptimized=float(unoptimized.max()),
        tolerance=tolerance,
    )
    worst = max(report.max_abs_difference, report.max_abs_difference_unoptimized)
    if not worst <= tolerance:
        raise ExportError(
            f"parity failed: Keras and onnxruntime differ by up to {worst:.3g} in probability "
            f"on {report.images} images from {image_source} (allowed {tolerance:g}); "
            "the ONNX file was not written. Check the tf2onnx/onnxruntime versions."
        )
    return report


def check_heatmap_parity(keras_model: keras.Model, onnx_model, batch: np.ndarray) -> dict | None:
    """Largest |Keras - onnxruntime| heatmap cell on the first 16 images; None without one."""
    if len(keras_model.outputs) < 2:
        return None
    sample = batch[:16]
    session = ort.InferenceSession(
        onnx_model.SerializeToString(), providers=["CPUExecutionProvider"]
    )
    onnx_heatmap = session.run(["heatmap"], {session.get_inputs()[0].name: sample})[0]
    keras_heatmap = np.asarray(keras_model(sample, training=False)[1])
    worst = float(np.abs(onnx_heatmap - keras_heatmap).max())
    if worst > HEATMAP_PARITY_TOLERANCE:
        raise ExportError(
            f"heatmap parity failed: max |Δ| {worst:.3g} > {HEATMAP_PARITY_TOLERANCE:g}"
        )
    return {
        "images": len(sample),
        "max_abs_difference": worst,
        "tolerance": HEATMAP_PARITY_TOLERANCE,
    }
