"""The preprocessing contract: how an 8-bit grayscale mammogram becomes model input.

This is the one place pixels are flipped, cropped and resized (the breast is found in
:mod:`mammo_edge.images.breast`, whose names are importable from here too). Training
(``train/``) imports it and the runtime reads its parameters from the ONNX model's
metadata, so the two cannot drift.

Two recipes use it:

- the seed study's: grayscale, ``cv2.resize`` of the whole frame to 128x128 with
  INTER_LINEAR, float32 on the 0..255 scale, NHWC with one channel
  (``PreprocessConfig()``);
- the breast-aware one (``breast_crop=True``): find the breast (threshold, an opening that
  detaches film labels and tape, largest component), blank everything outside it, put the
  chest wall on the left, crop to the breast, pad on the nipple side to the input's aspect
  ratio, resize to ``input_height x input_width``.

Every step that moves pixels is recorded in a :class:`Geometry`, so a point of the model
input (a heatmap peak) maps back to the original image's pixel coordinates.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields

import cv2
import numpy as np

from mammo_edge.images.breast import (  # also public here
    BREAST_LEVEL,
    NoBreastFoundError,
    breast_bounds,
    breast_mask,
    check_image,
    chest_wall_side,
)

__all__ = [
    "CHEST_WALL_SIDES",
    "INTERPOLATIONS",
    "ORIENTATIONS",
    "SEED_PREPROCESS",
    "Geometry",
    "NoBreastFoundError",
    "PreparedImage",
    "PreprocessConfig",
    "breast_mask",
    "chest_wall_side",
    "prepare",
    "to_model_batch",
    "to_model_input",
]

INTERPOLATIONS = {
    "linear": cv2.INTER_LINEAR,
    "area": cv2.INTER_AREA,
    "nearest": cv2.INTER_NEAREST,
    "cubic": cv2.INTER_CUBIC,
}
ORIENTATIONS = ("none", "chest_wall_left")
CHEST_WALL_SIDES = ("left", "right")


@dataclass(frozen=True)
class PreprocessConfig:
    """How pixels become model input; travels with the model in its metadata.

    Model input = ``resize(crop(image_uint8)) * pixel_scale + pixel_offset``, float32, NHWC,
    one channel.

    Attributes:
        input_size: side of a square input (the seed's 128); ignored for a side that
            ``input_height`` / ``input_width`` set.
        interpolation: OpenCV interpolation used for the resize.
        pixel_scale, pixel_offset: affine map of the 0..255 values.
        layout: always ``NHWC``.
        input_height, input_width: a non-square input (0 = use ``input_size``).
        breast_crop: segment the breast, blank the rest and crop to it.
        orientation: ``chest_wall_left`` flips images whose chest wall is on the right.
    """

    input_size: int = 128
    interpolation: str = "linear"
    pixel_scale: float = 1.0
    pixel_offset: float = 0.0
    layout: str = "NHWC"
    input_height: int = 0
    input_width: int = 0
    breast_crop: bool = False
    orientation: str = "none"

    def __post_init__(self) -> None:
        if self.interpolation not in INTERPOLATIONS:
            raise ValueError(
                f"interpolation must be one of {sorted(INTERPOLATIONS)}, got {self.interpolation!r}"
            )
        if self.layout != "NHWC":
            raise ValueError(f"only NHWC layout is supported, got {self.layout!r}")
        if self.input_size < 8:
            raise ValueError(f"input_size must be at least 8 pixels, got {self.input_size}")
        for name in ("input_height", "input_width"):
            value = getattr(self, name)
            if value != 0 and value < 8:
                raise ValueError(f"{name} must be 0 (use input_size) or >= 8, got {value}")
        if self.orientation not in ORIENTATIONS:
            raise ValueError(f"orientation must be one of {ORIENTATIONS}, got {self.orientation!r}")

    @property
    def height(self) -> int:
        """Rows of the model input."""
        return self.input_height or self.input_size

    @property
    def width(self) -> int:
        """Columns of the model input."""
        return self.input_width or self.input_size

    def as_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> PreprocessConfig:
        """Build from :meth:`as_dict` output; unknown keys are an error, missing keys default."""
        known = {field.name for field in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"unknown preprocessing field(s): {', '.join(unknown)}")
        return cls(**values)


#: The seed study's recipe (resize the frame to 128x128, 0..255). Not a default anywhere:
#: every caller passes the contract of the model it feeds.
SEED_PREPROCESS = PreprocessConfig()


@dataclass(frozen=True)
class Geometry:
    """Where the model input came from in the original image.

    The original image (``original_width x original_height``) was flipped left-right when
    ``flipped``, then the box ``crop`` = (x0, y0, x1, y1) of the flipped image (may extend
    past it: padded with black) was resized to the model input.
    """

    original_width: int
    original_height: int
    flipped: bool
    crop: tuple[int, int, int, int]
    input_width: int
    input_height: int

    def to_original(self, x: float, y: float) -> tuple[float, float]:
        """Map a point of the model input (pixel centres, x right, y down) to the original.

        Returns:
            ``(x, y)`` in the original image's pixel coordinates (x from the left, y from
            the top), clipped to the image.
        """
        x0, y0, x1, y1 = self.crop
        scale_x = (x1 - x0) / self.input_width
        scale_y = (y1 - y0) / self.input_height
        flipped_x = x0 + (x + 0.5) * scale_x - 0.5
        original_y = y0 + (y + 0.5) * scale_y - 0.5
        original_x = self.original_width - 1 - flipped_x if self.flipped else flipped_x
        return (
            float(np.clip(original_x, 0, self.original_width - 1)),
            float(np.clip(original_y, 0, self.original_height - 1)),
        )

    def to_input(self, x: float, y: float) -> tuple[float, float]:
        """Map a point of the original image to model-input coordinates (inverse of above)."""
        x0, y0, x1, y1 = self.crop
        flipped_x = self.original_width - 1 - x if self.flipped else x
        return (
            (flipped_x - x0 + 0.5) * self.input_width / (x1 - x0) - 0.5,
            (y - y0 + 0.5) * self.input_height / (y1 - y0) - 0.5,
        )

    @property
    def scale(self) -> float:
        """Original pixels per model-input pixel (mean of the two axes)."""
        x0, y0, x1, y1 = self.crop
        return 0.5 * ((x1 - x0) / self.input_width + (y1 - y0) / self.input_height)


@dataclass(frozen=True)
class PreparedImage:
    """One image ready for the model: ``model_input`` (H, W, 1) float32 and its geometry."""

    model_input: np.ndarray
    geometry: Geometry
    chest_wall_side: str | None = None


def prepare(
    image: np.ndarray,
    config: PreprocessConfig,
    chest_wall: str | None = None,
    mask: np.ndarray | None = None,
) -> PreparedImage:
    """Turn one 8-bit grayscale image into model input, recording the geometry.

    Args:
        image: ``(H, W)`` uint8 array, values 0..255 (other dtypes are rejected: map
            16-bit or DICOM values to 8 bits first, see ``mammo_edge.images.decode``).
        config: the preprocessing contract, normally read from the model.
        chest_wall: ``left`` / ``right`` when the file says which side the chest wall is on
            (DICOM Patient Orientation); ``None`` detects it from the pixels.
        mask: :func:`breast_mask` of ``image`` when the caller has it already (the
            runtime's mammogram check computes it); ``None`` segments here.

    Returns:
        :class:`PreparedImage` with a ``(height, width, 1)`` float32 input.

    Raises:
        NoBreastFoundError: ``breast_crop`` is set and no breast is found.
    """
    check_image(image)
    if chest_wall is not None and chest_wall not in CHEST_WALL_SIDES:
        raise ValueError(
            f"chest_wall must be one of {CHEST_WALL_SIDES} or None, got {chest_wall!r}"
        )
    height, width = image.shape
    side = None
    flipped = False
    crop = (0, 0, width, height)
    if config.breast_crop:
        if mask is None:
            mask = breast_mask(image)
        elif mask.shape != image.shape or mask.dtype != bool:
            raise ValueError(
                f"mask must be a {image.shape} bool array, got {mask.dtype} {mask.shape}"
            )
        side = chest_wall or chest_wall_side(mask)
        flipped = config.orientation == "chest_wall_left" and side == "right"
        bounds = breast_bounds(mask)
        crop = _grow_to_aspect(
            _mirrored(bounds, width) if flipped else bounds,
            config.height / config.width,
            chest_wall_left=flipped or side == "left",
        )
        image = _masked_crop(image, mask, crop, flipped)
    elif config.orientation == "chest_wall_left":
        side = chest_wall or chest_wall_side(image > BREAST_LEVEL)
        flipped = side == "right"
        if flipped:
            image = cv2.flip(image, 1)
    resized = cv2.resize(
        np.ascontiguousarray(image),
        (config.width, config.height),
        interpolation=INTERPOLATIONS[config.interpolation],
    )
    model_input = resized.astype(np.float32)
    if config.pixel_scale != 1.0 or config.pixel_offset != 0.0:
        # In place: the same float32 products and sums as ``x * scale + offset``.
        model_input *= np.float32(config.pixel_scale)
        model_input += np.float32(config.pixel_offset)
    geometry = Geometry(width, height, flipped, crop, config.width, config.height)
    return PreparedImage(model_input[:, :, np.newaxis], geometry, side)


def to_model_input(image: np.ndarray, config: PreprocessConfig) -> np.ndarray:
    """The ``(height, width, 1)`` float32 model input of one image (see :func:`prepare`)."""
    return prepare(image, config).model_input


def to_model_batch(images: list[np.ndarray], config: PreprocessConfig) -> np.ndarray:
    """Stack several images into a ``(N, height, width, 1)`` float32 batch."""
    batch = np.empty((len(images), config.height, config.width, 1), dtype=np.float32)
    for index, image in enumerate(images):
        batch[index] = to_model_input(image, config)
    return batch


def _mirrored(box: tuple[int, int, int, int], width: int) -> tuple[int, int, int, int]:
    """A box ``(x0, y0, x1, y1)`` of an image ``width`` wide, in the image flipped left-right."""
    x0, y0, x1, y1 = box
    return width - x1, y0, width - x0, y1


def _grow_to_aspect(
    box: tuple[int, int, int, int], aspect: float, chest_wall_left: bool = True
) -> tuple[int, int, int, int]:
    """The breast's bounding box grown to ``aspect`` (= height / width).

    A box too narrow grows towards the nipple side (right, after orientation) so the chest
    wall stays on the input's left edge; a box too flat grows equally up and down.
    """
    x0, y0, x1, y1 = box
    box_width, box_height = x1 - x0, y1 - y0
    if box_height / box_width > aspect:
        wanted = round(box_height / aspect)
        if chest_wall_left:
            x1 = x0 + wanted
        else:
            x0 = x1 - wanted
    else:
        wanted = round(box_width * aspect)
        extra = wanted - box_height
        y0 -= extra // 2
        y1 = y0 + wanted
    return x0, y0, x1, y1


def _masked_crop(
    image: np.ndarray, mask: np.ndarray, box: tuple[int, int, int, int], flipped: bool
) -> np.ndarray:
    """The box of the image (flipped left-right first when ``flipped``), black outside
    the mask and where the box extends past the image.

    Only the box is read, masked and flipped, never the whole frame (a 4.5k x 2.8k DICOM
    is 12.6 M pixels): the same bytes as flipping, masking and cutting the whole image.
    """
    height, width = image.shape
    x0, y0, x1, y1 = box
    crop = np.zeros((y1 - y0, x1 - x0), dtype=np.uint8)
    inside = crop[max(-y0, 0) : min(height - y0, y1 - y0), max(-x0, 0) : min(width - x0, x1 - x0)]
    if flipped:
        x0, x1 = width - x1, width - x0  # the box in the unflipped image
    rows = slice(max(y0, 0), min(y1, height))
    columns = slice(max(x0, 0), min(x1, width))
    # OpenCV writes into ``inside``, a view of ``crop``; copyTo zeroes nothing: the mask's
    # 0 pixels stay as np.zeros left them (the product with the 0/1 mask).
    if flipped:
        cv2.flip(cv2.copyTo(image[rows, columns], mask.view(np.uint8)[rows, columns]), 1, inside)
    else:
        cv2.copyTo(image[rows, columns], mask.view(np.uint8)[rows, columns], inside)
    return crop
