"""mammo-edge: flag abnormal mammograms with a small CNN through onnxruntime (research use only).

Public API::

    from mammo_edge import Predictor
    predictor = Predictor()                      # the shipped model, SHA-256 verified
    result = predictor.predict("examples/mdb003.pgm")
    print(result.probability, result.label)

The names below are imported on first use, so ``import mammo_edge`` (and ``mammo-edge
--help``) stay fast and never load onnxruntime, OpenCV or pydicom until needed. Nothing
here ever imports TensorFlow, Keras, tf2onnx or onnx.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

__version__ = "0.1.0"

__all__ = [
    "DecodedImage",
    "ErrorCode",
    "InputError",
    "ModelError",
    "PredictionResult",
    "Predictor",
    "__version__",
    "expand_inputs",
    "iter_inputs",
    "load_image",
    "load_input",
]

_LAZY = {
    "Predictor": "predictor",
    "PredictionResult": "records.record",
    "load_image": "images.decode",
    "DecodedImage": "images.decode",
    "ErrorCode": "errors",
    "InputError": "errors",
    "ModelError": "errors",
    "expand_inputs": "images.inputs",
    "iter_inputs": "images.inputs",
    "load_input": "images.pipeline",
}

if TYPE_CHECKING:
    from mammo_edge.errors import ErrorCode, InputError, ModelError
    from mammo_edge.images.decode import DecodedImage, load_image
    from mammo_edge.images.inputs import expand_inputs, iter_inputs
    from mammo_edge.images.pipeline import load_input
    from mammo_edge.predictor import Predictor
    from mammo_edge.records.record import PredictionResult


def __getattr__(name: str):
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'mammo_edge' has no attribute {name!r}")
    from importlib import import_module

    return getattr(import_module(f".{module}", __name__), name)
