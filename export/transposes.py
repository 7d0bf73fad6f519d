"""Where the Transpose nodes of an exported graph are, and what onnxruntime makes of them.

Keras lays tensors out NHWC, ONNX ``Conv``/``MaxPool`` want NCHW, so every converted
convolution starts life between two Transposes. This module counts what is left so the
export report (and docs/export.md) can say which remain and why.
"""

from __future__ import annotations

import tempfile
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import onnx
import onnxruntime as ort

ORT_LEVELS = {
    "disabled": ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
    "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
    "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
    "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
}


@dataclass(frozen=True)
class TransposeNode:
    """One Transpose left in the graph: its name, permutation and neighbours."""

    name: str
    perm: tuple[int, ...]
    producer: str
    consumers: tuple[str, ...]


def count_ops(model: onnx.ModelProto) -> Counter:
    """How many nodes of each op type the main graph holds."""
    return Counter(node.op_type for node in model.graph.node)


def find_transposes(model: onnx.ModelProto) -> tuple[TransposeNode, ...]:
    """Every Transpose node with the op type that feeds it and the op types that read it."""
    producers = {output: node for node in model.graph.node for output in node.output}
    graph_inputs = {value.name for value in model.graph.input}
    found = []
    for node in model.graph.node:
        if node.op_type != "Transpose":
            continue
        perm = next((tuple(a.ints) for a in node.attribute if a.name == "perm"), ())
        source = node.input[0]
        producer = "graph input" if source in graph_inputs else producers[source].op_type
        consumers = tuple(
            other.op_type for other in model.graph.node if set(node.output) & set(other.input)
        )
        found.append(TransposeNode(node.name, perm, producer, consumers))
    return tuple(found)


def ort_optimized_op_counts(model: onnx.ModelProto) -> dict[str, dict[str, int]]:
    """Op counts of the graph onnxruntime (CPU) actually runs, per optimisation level.

    Returns:
        ``{"basic": {...}, "extended": {...}, "all": {...}}``; "all" adds CPU-specific
        layout nodes (NCHWc ``ReorderInput``/``ReorderOutput``), which is why such graphs
        are never shipped: they are only valid on the machine that wrote them.
    """
    counts = {}
    with tempfile.TemporaryDirectory() as folder:
        for name in ("basic", "extended", "all"):
            options = ort.SessionOptions()
            options.graph_optimization_level = ORT_LEVELS[name]
            options.intra_op_num_threads = 1
            # Level "all" warns that its NCHWc graph is hardware-specific: known, and the
            # graph is only counted here, never shipped.
            options.log_severity_level = 3
            optimized_path = Path(folder) / f"{name}.onnx"
            options.optimized_model_filepath = str(optimized_path)
            ort.InferenceSession(
                model.SerializeToString(), options, providers=["CPUExecutionProvider"]
            )
            optimized = onnx.load(str(optimized_path))
            counts[name] = dict(sorted(count_ops(optimized).items()))
    return counts
