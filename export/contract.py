"""The interface every exported graph has: tensor names and the ONNX opset range.

Kept free of heavy imports so that ``python -m export --help`` answers at once.
"""

#: ONNX opset used unless asked otherwise; QDQ per-channel quantisation needs >= 13.
DEFAULT_OPSET = 17
MINIMUM_OPSET = 13
#: float32 [N, S, S, 1], NHWC, 0..255 after mammo_edge.images.preprocess.
INPUT_NAME = "image"
#: float32 [N, 1], sigmoid probability of "abnormal".
OUTPUT_NAME = "probability"
#: Output roles that are tensors of the graph, in the order the ONNX model lists them.
TENSOR_OUTPUT_ROLES = ("probability", "heatmap")
