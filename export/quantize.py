"""INT8: static QDQ quantisation with onnxruntime, and how far it moves the probabilities.

Recipe (issue 3): ``quant_pre_process`` (shape inference + graph clean-up), then
``quantize_static`` in QDQ format, signed int8 activations and weights, per-channel
weights, MinMax calibration on preprocessed training images. quantize_static does not keep
``metadata_props``, so the mammo-edge metadata is written again afterwards.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
from onnxruntime.quantization import (
    CalibrationDataReader,
    QuantFormat,
    QuantType,
    quantize_static,
)
from onnxruntime.quantization.shape_inference import quant_pre_process

from mammo_edge.metadata import ModelMetadata
from mammo_edge.metrics import roc_auc

from .errors import ExportError
from .parity import onnx_probabilities
from .provenance import attach_metadata

#: ship INT8 only if its AUC is within this of FP32's on the same images (issue 3).
AUC_TOLERANCE = 0.01
_CALIBRATION_CHUNK = 16


class _BatchReader(CalibrationDataReader):
    """Feeds a preprocessed (N, S, S, 1) batch to the calibrator in small chunks."""

    def __init__(self, input_name: str, batch: np.ndarray) -> None:
        self._chunks = iter(
            [
                {input_name: batch[start : start + _CALIBRATION_CHUNK]}
                for start in range(0, len(batch), _CALIBRATION_CHUNK)
            ]
        )

    def get_next(self) -> dict[str, np.ndarray] | None:
        return next(self._chunks, None)


@dataclass(frozen=True)
class Int8Agreement:
    """INT8 against FP32 on the same images: probability drift, label flips, AUC change."""

    images: int
    image_source: str
    max_abs_difference: float
    mean_abs_difference: float
    label_agreement: float
    threshold: float
    auc_fp32: float
    auc_int8: float
    delta_auc: float
    auc_tolerance: float

    @property
    def accepted(self) -> bool:
        """True when |ΔAUC| is within tolerance, i.e. the INT8 model may ship."""
        return abs(self.delta_auc) <= self.auc_tolerance


def quantize_int8(
    fp32_model: onnx.ModelProto,
    calibration_batch: np.ndarray,
    metadata: ModelMetadata,
) -> onnx.ModelProto:
    """Quantise ``fp32_model`` to QDQ int8, calibrated on ``calibration_batch``.

    Args:
        fp32_model: the exported float model (input ``image`` [N,S,S,1]).
        calibration_batch: (N, S, S, 1) float32 preprocessed training images.
        metadata: written into the int8 model's metadata_props.
    """
    if calibration_batch.ndim != 4 or len(calibration_batch) == 0:
        raise ExportError(
            f"INT8 calibration needs a non-empty (N, S, S, 1) batch, got {calibration_batch.shape}"
        )
    input_name = fp32_model.graph.input[0].name
    with tempfile.TemporaryDirectory() as folder:
        float_path = Path(folder) / "fp32.onnx"
        prepared_path = Path(folder) / "prepared.onnx"
        int8_path = Path(folder) / "int8.onnx"
        onnx.save(fp32_model, str(float_path))
        # Symbolic shape inference needs sympy, which is not in the train extra; the graph
        # has one dynamic dimension (batch) and ONNX shape inference resolves the rest.
        quant_pre_process(str(float_path), str(prepared_path), skip_symbolic_shape=True)
        quantize_static(
            str(prepared_path),
            str(int8_path),
            _BatchReader(input_name, calibration_batch),
            quant_format=QuantFormat.QDQ,
            activation_type=QuantType.QInt8,
            weight_type=QuantType.QInt8,
            per_channel=True,
        )
        int8_model = onnx.load(str(int8_path))
    attach_metadata(int8_model, metadata)
    onnx.checker.check_model(int8_model)
    return int8_model


def compare_int8(
    fp32_model: onnx.ModelProto,
    int8_model: onnx.ModelProto,
    batch: np.ndarray,
    labels: np.ndarray,
    threshold: float,
    image_source: str,
    auc_tolerance: float = AUC_TOLERANCE,
) -> Int8Agreement:
    """Score ``batch`` with both models and compare.

    Args:
        batch: (N, S, S, 1) float32 preprocessed images.
        labels: (N,) 0/1 ground truth, both classes present.
        threshold: decision threshold for the label-agreement rate.
    """
    labels = np.asarray(labels)
    if len(labels) != len(batch) or len(set(labels.tolist())) != 2:
        raise ExportError(
            f"INT8 comparison needs one 0/1 label per image with both classes present; "
            f"got {len(labels)} labels for {len(batch)} images"
        )
    level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    fp32 = onnx_probabilities(fp32_model.SerializeToString(), batch, level)
    int8 = onnx_probabilities(int8_model.SerializeToString(), batch, level)
    difference = np.abs(fp32 - int8)
    auc_fp32 = roc_auc(labels, fp32)
    auc_int8 = roc_auc(labels, int8)
    return Int8Agreement(
        images=len(batch),
        image_source=image_source,
        max_abs_difference=float(difference.max()),
        mean_abs_difference=float(difference.mean()),
        label_agreement=float(np.mean((fp32 >= threshold) == (int8 >= threshold))),
        threshold=threshold,
        auc_fp32=auc_fp32,
        auc_int8=auc_int8,
        delta_auc=auc_int8 - auc_fp32,
        auc_tolerance=auc_tolerance,
    )
