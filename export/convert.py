"""Keras model -> ONNX graph with tf2onnx, counting the Transpose nodes on the way.

``tf2onnx.convert.from_keras`` fails on Keras 3 (``KeyError: 'keras_tensor_N'``: it walks
Keras 2 internals), so the model is wrapped in a ``tf.function`` with an explicit input
signature. We run the two halves of ``tf2onnx.convert.from_function`` ourselves
(``process_tf_graph`` then ``optimizer.optimize_graph``) only to count Transpose nodes
before and after tf2onnx's optimiser; the result is the same graph ``from_function`` makes.

Why Transposes appear at all: Keras convolutions are NHWC, ONNX ``Conv``/``MaxPool`` are
NCHW, so tf2onnx wraps each of them in a Transpose pair; its transpose optimiser then
pushes and cancels the pairs.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import keras
import onnx
import tensorflow as tf
from tf2onnx import optimizer, tf_loader
from tf2onnx.tfonnx import process_tf_graph

from .contract import DEFAULT_OPSET, INPUT_NAME, MINIMUM_OPSET, OUTPUT_NAME
from .errors import ExportError
from .transposes import TransposeNode, count_ops, find_transposes

_GENERATED_SUFFIX = re.compile(r"__(\d+)")


@dataclass(frozen=True)
class Conversion:
    """The converted model and what the converter did to its layout."""

    model: onnx.ModelProto
    opset: int
    input_shape: tuple[int, int]
    transposes_before_optimizer: int
    transposes_after_optimizer: int
    remaining_transposes: tuple[TransposeNode, ...]
    op_counts: dict[str, int]


def model_input_shape(model: keras.Model) -> tuple[int, int]:
    """``(height, width)`` of the one-channel NHWC input of ``model``.

    Raises:
        ExportError: the input is not (None, H, W, 1) with fixed H and W, or the output is
            not (None, 1).
    """
    shape = tuple(model.input_shape)
    if len(shape) != 4 or shape[3] != 1 or shape[1] is None or shape[2] is None:
        raise ExportError(
            f"model input shape is {shape}; mammo-edge needs (None, H, W, 1) "
            "(fixed height and width, one grayscale channel, NHWC)"
        )
    output_shape = tuple(model.outputs[0].shape)
    if output_shape[1:] != (1,):
        raise ExportError(
            f"model output shape is {output_shape}; mammo-edge needs (None, 1): "
            "one sigmoid probability of 'abnormal'"
        )
    return int(shape[1]), int(shape[2])


def keras_to_onnx(
    model: keras.Model,
    opset: int = DEFAULT_OPSET,
    output_names: tuple[str, ...] = (OUTPUT_NAME,),
) -> Conversion:
    """Convert ``model`` to ONNX with input ``image`` [N,H,W,1] and output ``probability`` [N,1].

    Args:
        model: a Keras 3 model taking (N, H, W, 1) float32 and returning (N, 1) first, then
            any further outputs (e.g. a heatmap) in the order of ``output_names``.
        opset: ONNX opset, at least 13.
        output_names: the ONNX names of the model's outputs, ``probability`` first.

    Returns:
        A Conversion holding the ModelProto (no mammo-edge metadata yet) and the Transpose
        counts before and after tf2onnx's optimiser.
    """
    if opset < MINIMUM_OPSET:
        raise ExportError(f"opset {opset} is too old: use --opset {MINIMUM_OPSET} or newer")
    height, width = model_input_shape(model)
    signature = [tf.TensorSpec([None, height, width, 1], tf.float32, name=INPUT_NAME)]
    function = tf.function(lambda image: model(image, training=False), input_signature=signature)
    concrete = function.get_concrete_function(*signature)
    input_names = [t.name for t in concrete.inputs if t.dtype != tf.dtypes.resource]
    wanted_outputs = tuple(output_names)
    output_names = [t.name for t in concrete.outputs if t.dtype != tf.dtypes.resource]
    if len(input_names) != 1 or len(output_names) != len(wanted_outputs):
        raise ExportError(
            f"expected one input and {len(wanted_outputs)} output(s) {list(wanted_outputs)}, "
            f"got {input_names} -> {output_names}"
        )
    frozen = tf_loader.from_function(concrete, input_names, output_names)
    renames = {input_names[0]: INPUT_NAME, **dict(zip(output_names, wanted_outputs, strict=True))}
    with tf.Graph().as_default() as tf_graph:
        tf.import_graph_def(frozen, name="")
        graph = process_tf_graph(
            tf_graph,
            opset=opset,
            input_names=input_names,
            output_names=output_names,
            tensors_to_rename=renames,
        )
        before = sum(1 for node in graph.get_nodes() if node.type == "Transpose")
        graph = optimizer.optimize_graph(graph)
        # A fixed doc string: the concrete function's name carries a per-process counter,
        # which would make reruns differ byte-for-byte for no reason.
        proto = graph.make_model(f"mammo-edge: converted from Keras model {model.name!r}")
    proto.graph.name = model.name
    _name_batch_dimension(proto)
    _renumber_generated_names(proto)
    onnx.checker.check_model(proto)
    _check_interface(proto, (height, width), wanted_outputs)
    return Conversion(
        model=proto,
        opset=opset,
        input_shape=(height, width),
        transposes_before_optimizer=before,
        transposes_after_optimizer=count_ops(proto)["Transpose"],
        remaining_transposes=find_transposes(proto),
        op_counts=dict(count_ops(proto)),
    )


def _name_batch_dimension(model: onnx.ModelProto) -> None:
    # tf2onnx names the unknown batch dims "unk__57" and "unk__58"; one shared name says
    # that input and output batch sizes are equal, and keeps reruns byte-identical.
    for value in (*model.graph.input, *model.graph.output):
        value.type.tensor_type.shape.dim[0].dim_param = "batch"


def _renumber_generated_names(model: onnx.ModelProto) -> None:
    # tf2onnx suffixes the names it makes with a process-wide counter ("Transpose__46"),
    # and when it merges duplicate constants the survivor's name ("const_axes__37" or
    # "const_starts__35") depends on those counters. So converting the same model twice
    # gives different bytes. Generated constants become "const__K" and every counter is
    # renumbered in order of first appearance: the mapping is one-to-one, so the graph
    # computes the same thing, and the bytes depend only on the model.
    graph = model.graph
    numbers: dict[str, str] = {}

    def renumber(name: str) -> str:
        return _GENERATED_SUFFIX.sub(
            lambda match: "__" + numbers.setdefault(match.group(1), str(len(numbers) + 1)),
            name,
        )

    generated_constants = {
        tensor.name for tensor in graph.initializer if _GENERATED_SUFFIX.search(tensor.name)
    }
    new_names: dict[str, str] = {}
    for node in graph.node:
        for name in (*node.input, *node.output):
            if name not in new_names:
                renamed = renumber(name)
                if name in generated_constants:
                    renamed = "const__" + _GENERATED_SUFFIX.findall(renamed)[-1]
                new_names[name] = renamed
    for node in graph.node:
        node.name = renumber(node.name)
        node.input[:] = [new_names.get(name, name) for name in node.input]
        node.output[:] = [new_names.get(name, name) for name in node.output]
    for tensor in graph.initializer:
        tensor.name = new_names.get(tensor.name, tensor.name)
    for value in (*graph.input, *graph.output, *graph.value_info):
        value.name = new_names.get(value.name, value.name)


def _check_interface(
    model: onnx.ModelProto, input_shape: tuple[int, int], output_names=(OUTPUT_NAME,)
) -> None:
    inputs = [value for value in model.graph.input]
    outputs = [value for value in model.graph.output]
    found_outputs = [v.name for v in outputs]
    if [v.name for v in inputs] != [INPUT_NAME] or found_outputs != list(output_names):
        raise ExportError(
            f"converted graph has inputs {[v.name for v in inputs]} and outputs "
            f"{found_outputs}; expected ['{INPUT_NAME}'] -> {list(output_names)}"
        )
    dims = inputs[0].type.tensor_type.shape.dim
    static = [d.dim_value if d.HasField("dim_value") else None for d in dims]
    if static[1:] != [*input_shape, 1] or static[0] is not None:
        raise ExportError(
            f"converted input shape is {static}; expected [N, {input_shape[0]}, "
            f"{input_shape[1]}, 1] "
            "with a dynamic batch dimension"
        )
