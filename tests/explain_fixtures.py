"""Synthetic breasts with a bright blob, and a tiny ONNX model that has a heatmap output.

:func:`synthetic_breast` draws what the breast segmentation accepts: a bright textured
half-ellipse anchored to the left or right edge of a black frame, with a Gaussian blob at a
known place. :func:`build_heatmap_model` writes an ONNX model whose ``heatmap`` output is
the mean of each ``window x window`` square of the input taken every ``stride`` pixels
(through a sigmoid), and whose probability is the heatmap's maximum: its peak is the
brightest window, so a blob must come back where it was drawn.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from conftest import tiny_metadata

from mammo_edge.images.preprocess import PreprocessConfig
from mammo_edge.model.metadata import ModelMetadata

#: A breast-aware contract (crop, chest wall left) at a small, non-square input.
CROP_CONFIG = PreprocessConfig(
    input_size=128,
    input_height=128,
    input_width=64,
    interpolation="area",
    breast_crop=True,
    orientation="chest_wall_left",
)
HEATMAP_WINDOW = 8
HEATMAP_STRIDE = 2


def synthetic_breast(
    height: int = 600,
    width: int = 420,
    side: str = "left",
    blob: tuple[float, float] = (120.0, 330.0),
    blob_sigma: float = 9.0,
    seed: int = 0,
) -> np.ndarray:
    """A ``(height, width)`` uint8 "mammogram" with a blob centred at ``blob`` = (x, y).

    The breast is a half-ellipse on the ``side`` edge (the chest wall), gray ~110 with mild
    texture, on a black background; the blob adds up to +130 gray.
    """
    rng = np.random.default_rng(seed)
    rows, columns = np.mgrid[0:height, 0:width].astype(np.float64)
    centre_x = 0.0 if side == "left" else width - 1.0
    semi_x, semi_y = 0.62 * width, 0.42 * height
    inside = ((columns - centre_x) / semi_x) ** 2 + ((rows - height / 2) / semi_y) ** 2 <= 1.0
    tissue = 100 + 12 * np.sin(rows / 23.0) * np.cos(columns / 31.0)
    tissue += rng.normal(0, 3, size=(height, width))
    blob_x, blob_y = blob
    tissue += 130 * np.exp(-((columns - blob_x) ** 2 + (rows - blob_y) ** 2) / (2 * blob_sigma**2))
    image = np.where(inside, tissue, rng.integers(0, 6, size=(height, width)))
    return np.clip(image, 0, 255).astype(np.uint8)


def heatmap_metadata(config: PreprocessConfig = CROP_CONFIG, **overrides) -> ModelMetadata:
    """Metadata naming the heatmap output and its grid (the keys explain reads)."""
    values = {
        "model_name": "tiny-heatmap-model",
        "preprocess": config,
        "arch": "tiny-heatmap",
        "outputs": {
            "probability": "probability",
            "heatmap": "heatmap",
            "heatmap_stride": HEATMAP_STRIDE,
            "heatmap_window": HEATMAP_WINDOW,
        },
    }
    values.update(overrides)
    return tiny_metadata(**values)


def build_heatmap_model(
    path: Path,
    metadata: ModelMetadata | None = None,
    window: int = HEATMAP_WINDOW,
    stride: int = HEATMAP_STRIDE,
    scale: float = 0.05,
) -> Path:
    """Write the window-mean heatmap model for ``metadata``'s input size to ``path``.

    ``scale`` < 0 makes a model whose heat is highest on the darkest windows (the blanked
    background): a network that looks off the breast."""
    import onnx
    from onnx import TensorProto, helper

    metadata = metadata or heatmap_metadata()
    height, width = metadata.preprocess.height, metadata.preprocess.width
    image = helper.make_tensor_value_info("image", TensorProto.FLOAT, ["N", height, width, 1])
    probability = helper.make_tensor_value_info("probability", TensorProto.FLOAT, ["N", 1])
    heatmap = helper.make_tensor_value_info("heatmap", TensorProto.FLOAT, ["N", None, None, 1])
    nodes = [
        helper.make_node("Transpose", ["image"], ["nchw"], perm=[0, 3, 1, 2]),
        helper.make_node(
            "AveragePool",
            ["nchw"],
            ["pooled"],
            kernel_shape=[window, window],
            strides=[stride, stride],
        ),
        helper.make_node("Sub", ["pooled", "shift"], ["centred"]),
        helper.make_node("Mul", ["centred", "scale"], ["logits"]),
        helper.make_node("Sigmoid", ["logits"], ["cells"]),
        helper.make_node("Transpose", ["cells"], ["heatmap"], perm=[0, 2, 3, 1]),
        helper.make_node("Flatten", ["cells"], ["flat"], axis=1),
        helper.make_node("ReduceMax", ["flat"], ["probability"], axes=[1], keepdims=1),
    ]
    initializers = [
        helper.make_tensor("shift", TensorProto.FLOAT, [], [150.0]),
        helper.make_tensor("scale", TensorProto.FLOAT, [], [scale]),
    ]
    graph = helper.make_graph(nodes, "tiny_heatmap", [image], [probability, heatmap], initializers)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    helper.set_model_props(model, metadata.to_props())
    onnx.checker.check_model(model)
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(path))
    return path
