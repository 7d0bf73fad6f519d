"""The preprocessing contract: how an 8-bit grayscale mammogram becomes model input.

This is the one place pixels are segmented, flipped, cropped and resized. Training
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

INTERPOLATIONS = {
    "linear": cv2.INTER_LINEAR,
    "area": cv2.INTER_AREA,
    "nearest": cv2.INTER_NEAREST,
    "cubic": cv2.INTER_CUBIC,
}
ORIENTATIONS = ("none", "chest_wall_left")
CHEST_WALL_SIDES = ("left", "right")

#: Segmentation works on a copy whose longer side is this many pixels (speed; the mask is
#: scaled back up). At 1024 px mini-MIAS is 200 um/px, so one mask pixel is 800 um.
_MASK_SIDE = 256
#: Gray level (0..255) above which a pixel may be breast. Film background in mini-MIAS sits
#: at 0..12; the breast's skin line is above 25.
_BREAST_LEVEL = 20
#: Opening diameter, as a fraction of the longer side: ~31 px at 1024 px. Film labels touch
#: the breast through thin bridges that a smaller opening keeps.
_OPENING_FRACTION = 31 / 1024
#: A line of the image edge this bright (share of pixels above _BREAST_LEVEL) is frame.
_FRAME_LINE_FRACTION = 0.95
#: A breast must cover at least this share of the frame, and the frame must not be filled.
_MIN_BREAST_FRACTION = 0.03
_MAX_BREAST_FRACTION = 0.98
#: The image must hold some contrast inside the mask (standard deviation of gray levels).
_MIN_BREAST_CONTRAST = 2.0


class NoBreastFoundError(ValueError):
    """No breast could be found in the image (blank or uniform frame, text, a tiny crop)."""


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


def breast_mask(image: np.ndarray) -> np.ndarray:
    """Segment the breast: a ``(H, W)`` bool mask, True on the breast.

    Threshold at a fixed dark level, open with a disc ~3% of the image side so film labels
    and tape touching the breast come apart, keep the largest component, fill its holes.
    A bright frame around the image (a scanner's or exporter's border, uniform or
    textured; :func:`_frame_thickness`) is cut off first and is never breast, so the
    breast inside it is segmented exactly as without the frame.

    Raises:
        NoBreastFoundError: when nothing breast-like is found.
    """
    _check_image(image)
    top, bottom, left, right = _frame_thickness(image)
    if top or bottom or left or right:
        height, width = image.shape
        mask = np.zeros(image.shape, dtype=bool)
        mask[top : height - bottom, left : width - right] = _segment(
            image[top : height - bottom, left : width - right]
        )
        return mask
    return _segment(image)


def _segment(image: np.ndarray) -> np.ndarray:
    """:func:`breast_mask` of an image without a frame."""
    height, width = image.shape
    shrink = _MASK_SIDE / max(height, width)
    small = cv2.resize(
        image,
        (max(1, round(width * shrink)), max(1, round(height * shrink))),
        interpolation=cv2.INTER_AREA,
    )
    candidate = (small > _BREAST_LEVEL).astype(np.uint8)
    diameter = max(3, round(_OPENING_FRACTION * _MASK_SIDE) | 1)
    disc = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (diameter, diameter))
    opened = cv2.morphologyEx(candidate, cv2.MORPH_OPEN, disc)
    count, labels, stats, _ = cv2.connectedComponentsWithStats(opened, connectivity=8)
    if count <= 1:
        raise NoBreastFoundError("no tissue brighter than the film background")
    largest = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
    component = (labels == largest).astype(np.uint8)
    # Undo the opening's erosion of the skin line inside the component's reach.
    component = cv2.dilate(component, disc) & candidate
    filled = _fill_holes(component)
    fraction = float(filled.mean())
    if fraction < _MIN_BREAST_FRACTION:
        raise NoBreastFoundError(
            f"the largest bright region covers {fraction:.1%} of the frame; a mammogram's "
            f"breast covers at least {_MIN_BREAST_FRACTION:.0%}"
        )
    if fraction > _MAX_BREAST_FRACTION:
        raise NoBreastFoundError(
            "the whole frame is bright: no background around a breast (a uniform or inverted "
            "image?)"
        )
    if float(small[filled.astype(bool)].std()) < _MIN_BREAST_CONTRAST:
        raise NoBreastFoundError("the bright region is uniform: no breast tissue in it")
    # The 0/1 bytes are valid booleans: a view, not another full-size copy.
    return cv2.resize(filled, (width, height), interpolation=cv2.INTER_NEAREST).view(bool)


def _frame_thickness(image: np.ndarray) -> tuple[int, int, int, int]:
    """Rows/columns of a bright frame around the image (top, bottom, left, right).

    A scanner's or exporter's border (uniform or textured) makes at least three of the
    four outermost lines bright end to end; a breast touches one side at most (mini-MIAS:
    no outermost line is more than 98% bright). Each side's band is the run of lines at
    least 95% bright from the edge, capped at the thinnest frame side's, so the breast
    that leans on one side of the frame keeps its own rows. No frame: zeros.
    """
    # The bright share of every row and column: OpenCV's integer sums over a 0/1 copy are
    # the numbers numpy's mean of the boolean image gives, in a fraction of the time.
    _, candidate = cv2.threshold(image, _BREAST_LEVEL, 1, cv2.THRESH_BINARY)
    height, width = image.shape
    rows = cv2.reduce(candidate, 1, cv2.REDUCE_SUM, dtype=cv2.CV_32S).ravel() / width
    columns = cv2.reduce(candidate, 0, cv2.REDUCE_SUM, dtype=cv2.CV_32S).ravel() / height
    lines = (rows, rows[::-1], columns, columns[::-1])  # from the top, bottom, left, right
    runs = []
    for fractions in lines:
        dark = np.flatnonzero(fractions < _FRAME_LINE_FRACTION)
        runs.append(int(dark[0]) if len(dark) else len(fractions))
    frame_sides = [run for run in runs if run > 0]
    if len(frame_sides) < 3:
        return 0, 0, 0, 0
    band = min(frame_sides)
    top, bottom, left, right = (min(run, band) for run in runs)
    if top + bottom > len(rows) // 2 or left + right > len(columns) // 2:
        return 0, 0, 0, 0  # a bright frame filling the image: nothing inside to frame
    return top, bottom, left, right


def chest_wall_side(mask: np.ndarray) -> str:
    """``left`` or ``right``: the side of the frame the breast is anchored to.

    The chest wall is the image edge the breast leans on: its tissue is widest there and
    tapers to the nipple on the other side, so the mask's mass sits on the chest-wall half.
    """
    half = mask.shape[1] // 2
    left = np.count_nonzero(mask[:, :half])
    right = np.count_nonzero(mask[:, mask.shape[1] - half :])
    return "left" if left >= right else "right"


def prepare(
    image: np.ndarray,
    config: PreprocessConfig,
    chest_wall: str | None = None,
    mask: np.ndarray | None = None,
) -> PreparedImage:
    """Turn one 8-bit grayscale image into model input, recording the geometry.

    Args:
        image: ``(H, W)`` uint8 array, values 0..255 (other dtypes are rejected: map
            16-bit or DICOM values to 8 bits first, see ``mammo_edge.imageio``).
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
    _check_image(image)
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
        if flipped:
            image, mask = image[:, ::-1], mask[:, ::-1]
        crop = _breast_box(
            mask, config.height / config.width, chest_wall_left=flipped or side == "left"
        )
        # Cut first, then blank outside the breast: only the crop is copied and masked, not
        # the whole frame (the same pixels; a 4.5k x 2.8k DICOM is 12.6 M of them).
        image = _cut(image, crop)
        image *= _cut(mask.view(np.uint8), crop)
    elif config.orientation == "chest_wall_left":
        side = chest_wall or chest_wall_side(image > _BREAST_LEVEL)
        flipped = side == "right"
        if flipped:
            image = image[:, ::-1]
    resized = cv2.resize(
        np.ascontiguousarray(image),
        (config.width, config.height),
        interpolation=INTERPOLATIONS[config.interpolation],
    )
    model_input = resized.astype(np.float32)
    if config.pixel_scale != 1.0 or config.pixel_offset != 0.0:
        model_input = model_input * np.float32(config.pixel_scale) + np.float32(config.pixel_offset)
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


def _check_image(image: np.ndarray) -> None:
    if not isinstance(image, np.ndarray):
        raise TypeError(f"expected a numpy array, got {type(image).__name__}")
    if image.ndim != 2:
        raise ValueError(f"expected a 2-D grayscale image (H, W), got shape {image.shape}")
    if image.dtype != np.uint8:
        raise ValueError(f"expected uint8 pixels (0..255), got dtype {image.dtype}")


def _fill_holes(mask: np.ndarray) -> np.ndarray:
    """Fill holes of a uint8 0/1 mask (background reachable from the border stays 0)."""
    padded = np.pad(mask, 1)
    flood = padded.copy()
    cv2.floodFill(flood, None, (0, 0), 1)
    holes = (flood == 0).astype(np.uint8)
    return (padded | holes)[1:-1, 1:-1]


def _breast_box(
    mask: np.ndarray, aspect: float, chest_wall_left: bool = True
) -> tuple[int, int, int, int]:
    """The mask's bounding box grown to ``aspect`` (= height / width).

    A box too narrow grows towards the nipple side (right, after orientation) so the chest
    wall stays on the input's left edge; a box too flat grows equally up and down.
    """
    rows = np.flatnonzero(mask.any(axis=1))
    columns = np.flatnonzero(mask.any(axis=0))
    x0, x1 = int(columns[0]), int(columns[-1]) + 1
    y0, y1 = int(rows[0]), int(rows[-1]) + 1
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


def _cut(image: np.ndarray, box: tuple[int, int, int, int]) -> np.ndarray:
    """The box of the image, padded with black where it extends past the image."""
    x0, y0, x1, y1 = box
    height, width = image.shape
    out = np.zeros((y1 - y0, x1 - x0), dtype=image.dtype)
    src_x0, src_y0 = max(x0, 0), max(y0, 0)
    src_x1, src_y1 = min(x1, width), min(y1, height)
    out[src_y0 - y0 : src_y1 - y0, src_x0 - x0 : src_x1 - x0] = image[src_y0:src_y1, src_x0:src_x1]
    return out
