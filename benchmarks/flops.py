"""FLOPs per image, counted from the ONNX graph (and from Keras layers, as a cross-check).

A multiply-add counts as 2 FLOPs. Dense work (what a GEMM peak is comparable to):

* ``Conv``: ``2 * (C_in / group) * k_h * k_w * prod(output shape)``
* ``MatMul`` / ``Gemm``: ``2 * K * prod(output shape)`` (K = the contracted dimension)

Their quantised forms (``QLinearConv``, ``ConvInteger``, ``QLinearMatMul``,
``MatMulInteger``) count the same. QDQ models, as ``export`` writes them, keep float
``Conv``/``MatMul`` nodes between ``DequantizeLinear`` and ``QuantizeLinear``, so the INT8
file counts the same dense work as FP32. Everything else (bias adds, ReLU, pooling,
sigmoid, (de)quantisation) is counted apart as one operation per output element (per
window element for pooling), and left out of the GFLOP/s figures.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import numpy as np
import onnx
from onnx import numpy_helper, shape_inference
from onnx.reference import ReferenceEvaluator

CONV_OPS = {"Conv", "ConvInteger", "QLinearConv"}
MATMUL_OPS = {"MatMul", "MatMulInteger", "QLinearMatMul", "Gemm"}
POOL_OPS = {"MaxPool", "AveragePool"}
# Ops that move or relabel data without arithmetic.
FREE_OPS = {
    "Reshape",
    "Transpose",
    "Flatten",
    "Squeeze",
    "Unsqueeze",
    "Identity",
    "Shape",
    "Constant",
    "Concat",
    "Gather",
    "Cast",
    "Dropout",
}
# Integer shape arithmetic that tf2onnx emits around Reshape; folded to constants.
FOLDABLE_OPS = {
    "Shape",
    "Gather",
    "Cast",
    "ReduceProd",
    "Unsqueeze",
    "Squeeze",
    "Concat",
    "Slice",
    "Constant",
}
_FOLD_MAX_ELEMENTS = 64
# Position of the weight input of each conv-like op (QLinearConv interleaves scales).
_CONV_WEIGHT_INPUT = {"Conv": 1, "ConvInteger": 1, "QLinearConv": 3}
_MATMUL_LEFT_INPUT = {"MatMul": 0, "MatMulInteger": 0, "QLinearMatMul": 0, "Gemm": 0}


@dataclass(frozen=True)
class FlopCount:
    """Arithmetic of one image through a model.

    Attributes:
        dense_flops: Conv/MatMul/Gemm FLOPs (multiply-add = 2).
        other_ops: elementwise and pooling operations, one per output (window) element.
        dense_by_node: dense FLOPs per node name, in graph order.
    """

    dense_flops: int
    other_ops: int
    dense_by_node: dict[str, int] = field(default_factory=dict)

    @property
    def gflops(self) -> float:
        """Dense work in GFLOP."""
        return self.dense_flops / 1e9


def count_onnx_flops(model: onnx.ModelProto) -> FlopCount:
    """Count FLOPs for one image of ``model`` (batch dimension fixed to 1, shapes inferred).

    Raises:
        ValueError: a Conv/MatMul/Gemm whose shapes shape inference could not determine.
    """
    inferred = _fold_shape_arithmetic(_with_batch_one(model))
    shapes = _known_shapes(inferred)
    attributes = {
        node.name: {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
        for node in inferred.graph.node
    }
    dense: dict[str, int] = {}
    other = 0
    for index, node in enumerate(inferred.graph.node):
        name = node.name or f"{node.op_type}_{index}"
        output_shape = shapes.get(node.output[0]) if node.output else None
        if node.op_type in CONV_OPS or node.op_type in MATMUL_OPS:
            if output_shape is None:
                raise ValueError(f"node {name} ({node.op_type}): output shape unknown")
            dense[name] = _dense_flops(node, name, shapes, attributes.get(node.name, {}))
        elif node.op_type in POOL_OPS and output_shape is not None:
            kernel = attributes.get(node.name, {}).get("kernel_shape", [1])
            other += _product(output_shape) * _product(kernel)
        elif node.op_type not in FREE_OPS and output_shape is not None:
            other += _product(output_shape)
    return FlopCount(dense_flops=sum(dense.values()), other_ops=other, dense_by_node=dense)


def count_keras_flops(model) -> int:
    """Dense FLOPs per image from a Keras model's layer shapes (Conv2D, DepthwiseConv2D
    and Dense; nested models are walked into).

    Independent of ONNX: used to cross-check :func:`count_onnx_flops`.

    Raises:
        ValueError: a counted layer whose output shape is not fully known (a nested
            model built for any input size).
    """
    total = 0
    for layer in _leaf_layers(model):
        kind = type(layer).__name__
        if kind not in ("Conv2D", "DepthwiseConv2D", "Dense"):
            continue
        output = [d for d in layer.output.shape[1:]]
        if any(d is None for d in output):
            raise ValueError(f"layer {layer.name} ({kind}): output shape {output} not fixed")
        kernel_shape = [int(d) for d in layer.kernel.shape]
        if kind == "DepthwiseConv2D":
            # kernel (kh, kw, C_in, multiplier): each output element sees kh * kw inputs.
            contracted = _product(kernel_shape[:2])
        else:
            # Conv2D kernel (kh, kw, C_in / groups, C_out); Dense kernel (K, units): the
            # contracted size is everything but the last axis.
            contracted = _product(kernel_shape[:-1])
        total += 2 * contracted * _product(output)
    return total


def _leaf_layers(model):
    for layer in model.layers:
        if hasattr(layer, "layers") and layer.layers:
            yield from _leaf_layers(_at_fed_size(layer))
        else:
            yield layer


def _at_fed_size(nested):
    """A nested model built for any input size (lite0's backbone), cloned at the size its
    outer model feeds it so that its layers' output shapes are fixed; else ``nested``."""
    inputs = getattr(nested, "inputs", None) or []
    nodes = getattr(nested, "_inbound_nodes", None) or []
    if len(inputs) != 1 or not nodes or not nodes[-1].input_tensors:
        return nested
    fed = tuple(nodes[-1].input_tensors[0].shape)[1:]
    if None not in tuple(inputs[0].shape)[1:] or None in fed:
        return nested
    import keras

    return keras.models.clone_model(nested, input_tensors=keras.Input(fed))


def op_histogram(model: onnx.ModelProto) -> dict[str, int]:
    """How many nodes of each op type the graph holds."""
    return dict(sorted(Counter(node.op_type for node in model.graph.node).items()))


def _dense_flops(node, name: str, shapes: dict[str, list[int]], attrs: dict) -> int:
    output = shapes[node.output[0]]
    if node.op_type in CONV_OPS:
        weight = shapes.get(node.input[_CONV_WEIGHT_INPUT[node.op_type]])
        if weight is None:
            raise ValueError(f"node {name} ({node.op_type}): weight shape unknown")
        # ONNX Conv weight is (C_out, C_in / group, k...), so group is already divided out.
        return 2 * _product(weight[1:]) * _product(output)
    left = shapes.get(node.input[_MATMUL_LEFT_INPUT[node.op_type]])
    if left is None:
        raise ValueError(f"node {name} ({node.op_type}): input shape unknown")
    if node.op_type == "Gemm" and attrs.get("transA", 0):
        contracted = left[0]
    else:
        contracted = left[-1]
    return 2 * contracted * _product(output)


def _fold_shape_arithmetic(model: onnx.ModelProto, rounds: int = 10) -> onnx.ModelProto:
    """Constant-fold the small integer subgraphs that compute Reshape targets.

    tf2onnx builds a Dense on a 4-D tensor (a Keras ``Tensordot``) as Shape -> Gather ->
    ReduceProd -> Concat -> Reshape; onnx shape inference does not propagate values
    through ReduceProd, so the MatMul after it would have no shape. With the batch fixed
    to 1 those values are constants: each round evaluates the nodes whose inputs are all
    known (one node at a time, with onnx's reference evaluator), turns their outputs into
    initializers and infers shapes again.
    """
    current = model
    for _ in range(rounds):
        current = shape_inference.infer_shapes(current, strict_mode=False, data_prop=True)
        shapes = _known_shapes(current)
        constants = {init.name: numpy_helper.to_array(init) for init in current.graph.initializer}
        kept, folded = [], []
        for node in current.graph.node:
            values = _evaluate_if_constant(node, constants, shapes)
            if values is None:
                kept.append(node)
                continue
            for name, value in zip(node.output, values, strict=True):
                constants[name] = value
                folded.append(numpy_helper.from_array(np.asarray(value), name))
        if not folded:
            return current
        del current.graph.node[:]
        current.graph.node.extend(kept)
        current.graph.initializer.extend(folded)
        del current.graph.value_info[:]
    return shape_inference.infer_shapes(current, strict_mode=False, data_prop=True)


def _evaluate_if_constant(node, constants: dict, shapes: dict[str, list[int]]) -> list | None:
    if node.op_type not in FOLDABLE_OPS:
        return None
    if node.op_type == "Shape":
        if node.attribute or node.input[0] not in shapes:
            return None
        return [np.asarray(shapes[node.input[0]], dtype=np.int64)]
    inputs = [name for name in node.input if name]
    if not all(name in constants for name in inputs):
        return None
    if any(constants[name].size > _FOLD_MAX_ELEMENTS for name in inputs):
        return None  # weights: leave them where they are
    feeds = {name: constants[name] for name in inputs}
    return list(ReferenceEvaluator(node).run(None, feeds))


def _with_batch_one(model: onnx.ModelProto) -> onnx.ModelProto:
    single = onnx.ModelProto()
    single.CopyFrom(model)
    del single.graph.value_info[:]
    for value in (*single.graph.input, *single.graph.output):
        dims = value.type.tensor_type.shape.dim
        if dims and not dims[0].HasField("dim_value"):
            dims[0].Clear()
            dims[0].dim_value = 1
    return single


def _known_shapes(model: onnx.ModelProto) -> dict[str, list[int]]:
    shapes: dict[str, list[int]] = {}
    values = (*model.graph.input, *model.graph.value_info, *model.graph.output)
    for value in values:
        dims = value.type.tensor_type.shape.dim
        if value.type.tensor_type.HasField("shape") and all(d.HasField("dim_value") for d in dims):
            shapes[value.name] = [d.dim_value for d in dims]
    for initializer in model.graph.initializer:
        shapes[initializer.name] = list(initializer.dims)
    return shapes


def _product(values) -> int:
    result = 1
    for value in values:
        result *= int(value)
    return result
