"""The preprocessing contract: how an 8-bit grayscale mammogram becomes model input.

This is the one place pixels are resized. Training (``train/``) imports it and the
runtime reads its parameters from the ONNX model's metadata, so the two cannot drift.

The seed study's recipe: grayscale, ``cv2.resize`` to 128x128 with INTER_LINEAR,
float32 values on the 0..255 scale (no normalisation), NHWC with one channel.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import cv2
import numpy as np

INTERPOLATIONS = {
    "linear": cv2.INTER_LINEAR,
    "area": cv2.INTER_AREA,
    "nearest": cv2.INTER_NEAREST,
    "cubic": cv2.INTER_CUBIC,
}


@dataclass(frozen=True)
class PreprocessConfig:
    """How pixels become model input; travels with the model in its metadata.

    Model input = ``resize(image_uint8) * pixel_scale + pixel_offset``, as float32 in
    NHWC layout with one channel.
    """

    input_size: int = 128
    interpolation: str = "linear"
    pixel_scale: float = 1.0
    pixel_offset: float = 0.0
    layout: str = "NHWC"

    def __post_init__(self) -> None:
        if self.interpolation not in INTERPOLATIONS:
            raise ValueError(
                f"interpolation must be one of {sorted(INTERPOLATIONS)}, got {self.interpolation!r}"
            )
        if self.layout != "NHWC":
            raise ValueError(f"only NHWC layout is supported, got {self.layout!r}")
        if self.input_size < 8:
            raise ValueError(f"input_size must be at least 8 pixels, got {self.input_size}")

    def as_dict(self) -> dict:
        return asdict(self)


SEED_PREPROCESS = PreprocessConfig()


def to_model_input(image: np.ndarray, config: PreprocessConfig = SEED_PREPROCESS) -> np.ndarray:
    """Resize one 8-bit grayscale image to the model's input.

    Args:
        image: ``(H, W)`` uint8 array, values 0..255 (other dtypes are rejected: map
            16-bit or DICOM values to 8 bits first, see ``mammo_edge.imageio``).
        config: the preprocessing contract, normally read from the model.

    Returns:
        ``(input_size, input_size, 1)`` float32 array.
    """
    if not isinstance(image, np.ndarray):
        raise TypeError(f"expected a numpy array, got {type(image).__name__}")
    if image.ndim != 2:
        raise ValueError(f"expected a 2-D grayscale image (H, W), got shape {image.shape}")
    if image.dtype != np.uint8:
        raise ValueError(f"expected uint8 pixels (0..255), got dtype {image.dtype}")
    size = config.input_size
    resized = cv2.resize(image, (size, size), interpolation=INTERPOLATIONS[config.interpolation])
    model_input = resized.astype(np.float32)
    if config.pixel_scale != 1.0 or config.pixel_offset != 0.0:
        model_input = model_input * np.float32(config.pixel_scale) + np.float32(config.pixel_offset)
    return model_input[:, :, np.newaxis]


def to_model_batch(
    images: list[np.ndarray], config: PreprocessConfig = SEED_PREPROCESS
) -> np.ndarray:
    """Stack several images into a ``(N, size, size, 1)`` float32 batch."""
    size = config.input_size
    batch = np.empty((len(images), size, size, 1), dtype=np.float32)
    for index, image in enumerate(images):
        batch[index] = to_model_input(image, config)
    return batch
