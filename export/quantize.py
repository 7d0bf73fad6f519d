"""INT8: static QDQ quantisation with onnxruntime, and how far it moves the probabilities.

Every recipe: ``quant_pre_process`` (shape inference + graph clean-up, batch-norm folded
into the convolutions), then ``quantize_static`` in QDQ format, signed int8 per-channel
symmetric weights, calibrated on real preprocessed images.
quantize_static does not keep ``metadata_props``, so the mammo-edge metadata is written
again afterwards. A :class:`QuantRecipe` says what differs by architecture:

- ``seed`` (issue 3): signed int8 activations, MinMax ranges over every calibration image,
  every node in int8.
- ``lite0`` (issue 18): **unsigned** int8 activations (U8S8): with signed ones onnxruntime
  1.32's x86 graph optimiser left 14 of the 48 quantised convolutions and all 9 residual
  Adds as float nodes between Q/DQ pairs (1.3x FP32 in the same run), with unsigned ones
  it fuses all of them into QLinearConv/QLinearAdd (2.2x) at the same ΔAUC. Entropy (KL)
  ranges on a spread of 32 breasts; the first
  convolution (one input channel, K = 9: nothing for int8 GEMM to win, and it sees the raw
  pixels) and the head from the lesion (cell-logit) convolution on (window average,
  top-k mean, image offset, both sigmoids: a few hundred values per image, where one
  rounding step moves the probability directly) stay FP32. Plain MinMax on every node
  failed the gate at export (ΔAUC −0.0124); the recipes compared before this one was
  chosen, with their ΔAUC and mean |Δp|, are in ``reports/int8/lite0-recipes.md``.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
from onnxruntime.quantization import (
    CalibrationDataReader,
    CalibrationMethod,
    QuantFormat,
    QuantType,
    quantize_static,
)
from onnxruntime.quantization.shape_inference import quant_pre_process

from mammo_edge.evaluation.metrics import roc_auc
from mammo_edge.model.metadata import ModelMetadata

from .errors import ExportError
from .parity import onnx_probabilities
from .provenance import attach_metadata

#: ship INT8 only if its AUC is within this of FP32's on the same images (issue 3).
AUC_TOLERANCE = 0.01
_CALIBRATION_CHUNK = 16


@dataclass(frozen=True)
class QuantRecipe:
    """How one architecture is quantised (see the module docstring for why).

    Attributes:
        name: the recipe's name, recorded in the export report and the model card.
        activation_type: ``QInt8`` or ``QUInt8`` (onnxruntime's ``QuantType``); weights are
            always ``QInt8``.
        calibration: ``MinMax``, ``Entropy`` or ``Percentile`` (onnxruntime's methods).
        calibration_images: calibrate on this many images spread evenly over the given
            batch (``None``: all of them).
        keep_fp32: structural parts left in FP32: ``first_conv`` (the first Conv of the
            graph), ``head`` (the last Conv and every node after it).
        why_fp32: one sentence for the model card.
    """

    name: str
    activation_type: str = "QInt8"
    calibration: str = "MinMax"
    calibration_images: int | None = None
    keep_fp32: tuple[str, ...] = ()
    why_fp32: str = ""
    extra_options: dict = field(default_factory=dict)


SEED_RECIPE = QuantRecipe(name="seed")
LITE0_RECIPE = QuantRecipe(
    name="lite0",
    activation_type="QUInt8",
    calibration="Entropy",
    calibration_images=32,
    keep_fp32=("first_conv", "head"),
    why_fp32=(
        "the first convolution has one input channel (nothing for int8 kernels to win) and "
        "sees the raw pixels; the head (lesion convolution, window average, top-k mean, "
        "sigmoids) turns a few hundred values into the probability, where one int8 step "
        "moves it directly"
    ),
)
#: Recipes by architecture (the contract's ``arch``); others get the seed's.
RECIPES = {"seed": SEED_RECIPE, "lite0": LITE0_RECIPE}


def recipe_for(arch: str) -> QuantRecipe:
    """The quantisation recipe of an architecture (``SEED_RECIPE`` when none is registered)."""
    return RECIPES.get(arch, SEED_RECIPE)


def fp32_node_names(model: onnx.ModelProto, keep_fp32: tuple[str, ...]) -> list[str]:
    """Names of the nodes ``keep_fp32`` names in ``model`` (the prepared float graph).

    Raises:
        ExportError: an unknown part, or a graph without Conv nodes when one is named.
    """
    unknown = sorted(set(keep_fp32) - {"first_conv", "head"})
    if unknown:
        raise ExportError(f"unknown FP32 part(s) {unknown}: use first_conv and/or head")
    nodes = list(model.graph.node)
    convolutions = [index for index, node in enumerate(nodes) if node.op_type == "Conv"]
    if keep_fp32 and not convolutions:
        raise ExportError(f"recipe keeps {keep_fp32} in FP32 but the graph has no Conv node")
    chosen: list[int] = []
    if "first_conv" in keep_fp32:
        chosen.append(convolutions[0])
    if "head" in keep_fp32:
        chosen.extend(range(convolutions[-1], len(nodes)))
    return [nodes[index].name for index in sorted(set(chosen))]


def calibration_subset(batch: np.ndarray, count: int | None) -> np.ndarray:
    """``count`` images spread evenly over ``batch`` (all of them when ``count`` is None)."""
    if count is None or count >= len(batch):
        return batch
    return batch[np.linspace(0, len(batch) - 1, count).round().astype(int)]


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
    recipe: QuantRecipe = SEED_RECIPE,
) -> onnx.ModelProto:
    """Quantise ``fp32_model`` to QDQ int8, calibrated on ``calibration_batch``.

    Args:
        fp32_model: the exported float model (input ``image`` [N,S,S,1]).
        calibration_batch: (N, S, S, 1) float32 preprocessed training images.
        metadata: written into the int8 model's metadata_props.
        recipe: calibration method, images and the parts kept in FP32.
    """
    return quantize_with_recipe(fp32_model, calibration_batch, metadata, recipe)[0]


def quantize_with_recipe(
    fp32_model: onnx.ModelProto,
    calibration_batch: np.ndarray,
    metadata: ModelMetadata,
    recipe: QuantRecipe,
) -> tuple[onnx.ModelProto, list[str]]:
    """As :func:`quantize_int8`, also returning the names of the nodes kept in FP32."""
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
        excluded = fp32_node_names(onnx.load(str(prepared_path)), recipe.keep_fp32)
        quantize_static(
            str(prepared_path),
            str(int8_path),
            _BatchReader(
                input_name, calibration_subset(calibration_batch, recipe.calibration_images)
            ),
            quant_format=QuantFormat.QDQ,
            activation_type=getattr(QuantType, recipe.activation_type),
            weight_type=QuantType.QInt8,
            per_channel=True,
            calibrate_method=getattr(CalibrationMethod, recipe.calibration),
            nodes_to_exclude=excluded,
            extra_options=dict(recipe.extra_options),
        )
        int8_model = onnx.load(str(int8_path))
    attach_metadata(int8_model, metadata)
    onnx.checker.check_model(int8_model)
    return int8_model, excluded


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
