"""Where a model looked: a heatmap per image, its peak in original pixels, an overlay.

Two sources of heatmap, chosen per model:

- **the model's own lesion map**, when its metadata (``ModelMetadata.outputs``) names a
  ``heatmap`` output and describes its grid with ``heatmap_stride`` and
  ``heatmap_window`` (model-input pixels): cell ``(i, j)`` scores the
  ``window x window`` square whose top-left corner is ``(stride * j, stride * i)``, so its
  centre is ``(stride * j + window / 2 - 0.5, stride * i + window / 2 - 0.5)``;
- **occlusion sensitivity** for any other model (the seed CNN): copies of the model input
  with one patch blanked to the image's background level are scored in batches through
  onnxruntime; a cell's value is how far its patch's occlusion *lowers* the probability.

Either way the result is a :class:`HeatmapGrid` of values at known model-input points. Its
maximum (:func:`find_peak`) is mapped back through the preprocessing
:class:`~mammo_edge.images.preprocess.Geometry` (resize, crop, flip) to the original image's
pixels, x from the left and y from the top; :func:`render_overlay` draws the grid,
interpolated onto the original image, with the peak marked (:mod:`mammo_edge.explain.overlays`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import cv2
import numpy as np

from mammo_edge.errors import ModelError
from mammo_edge.images.preprocess import Geometry

#: Keys of ``ModelMetadata.outputs`` (ONNX ``mammo_edge.outputs``) that describe a heatmap.
HEATMAP_KEY = "heatmap"
HEATMAP_STRIDE_KEY = "heatmap_stride"
HEATMAP_WINDOW_KEY = "heatmap_window"

METHOD_AUTO = "auto"
METHOD_HEATMAP = "heatmap"
METHOD_OCCLUSION = "occlusion"
METHODS = (METHOD_AUTO, METHOD_HEATMAP, METHOD_OCCLUSION)


@dataclass(frozen=True)
class HeatmapSpec:
    """Where a model's heatmap output lives and how its cells sit on the model input.

    Attributes:
        output: the ONNX output name of the ``(N, rows, columns[, 1])`` map.
        stride: model-input pixels between neighbouring cells.
        window: side, in model-input pixels, of the square each cell scores.
    """

    output: str
    stride: int
    window: int

    @classmethod
    def from_outputs(cls, outputs: dict, source: str = "model") -> HeatmapSpec | None:
        """Read the spec from ``ModelMetadata.outputs``; ``None`` when there is no heatmap.

        Raises:
            ModelError: a heatmap is named but its grid is missing or not positive integers.
        """
        name = outputs.get(HEATMAP_KEY)
        if not name:
            return None
        values = {}
        for key in (HEATMAP_STRIDE_KEY, HEATMAP_WINDOW_KEY):
            value = outputs.get(key)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ModelError(
                    f"{source}: its metadata names a heatmap output ({name!r}) but "
                    f"mammo_edge.outputs[{key!r}] is {value!r}; expected a positive integer "
                    "(model-input pixels). Re-export the model, or use --method occlusion."
                )
            values[key] = value
        return cls(str(name), values[HEATMAP_STRIDE_KEY], values[HEATMAP_WINDOW_KEY])


@dataclass(frozen=True)
class HeatmapGrid:
    """Heatmap values at a regular grid of model-input points.

    Attributes:
        values: ``(rows, columns)`` float32.
        origin_x, origin_y: model-input coordinates (pixel centres) of cell ``(0, 0)``.
        step_x, step_y: model-input pixels between neighbouring cells.
        method: ``heatmap`` (the model's own map: probabilities) or ``occlusion``
            (probability drops).
    """

    values: np.ndarray
    origin_x: float
    origin_y: float
    step_x: float
    step_y: float
    method: str

    def centre(self, row: int, column: int) -> tuple[float, float]:
        """Model-input ``(x, y)`` of cell ``(row, column)``."""
        return self.origin_x + column * self.step_x, self.origin_y + row * self.step_y


@dataclass(frozen=True)
class Peak:
    """The heatmap's maximum.

    Attributes:
        x, y: in the original image's pixels (x from the left, y from the top).
        input_x, input_y: in model-input pixels.
        value: the heatmap value there (a probability, or a probability drop).
    """

    x: float
    y: float
    input_x: float
    input_y: float
    value: float


@dataclass(frozen=True)
class OcclusionSettings:
    """Occlusion patch and stride as fractions of the model input's height and width.

    The defaults blank an eighth of each side at a time, moving by half a patch: a
    15 x 15 grid, 225 scored copies per image.
    """

    patch_fraction: float = 1 / 8
    stride_fraction: float = 1 / 2
    batch_size: int = 64

    def patch_and_stride(self, height: int, width: int) -> tuple[int, int, int, int]:
        """``(patch_height, patch_width, stride_y, stride_x)`` in model-input pixels."""
        patch_height = max(1, round(height * self.patch_fraction))
        patch_width = max(1, round(width * self.patch_fraction))
        return (
            patch_height,
            patch_width,
            max(1, round(patch_height * self.stride_fraction)),
            max(1, round(patch_width * self.stride_fraction)),
        )


def heatmap_grid(values: np.ndarray, spec: HeatmapSpec) -> HeatmapGrid:
    """The grid of one image's heatmap output ``(rows, columns)`` or ``(rows, columns, 1)``."""
    values = np.asarray(values, dtype=np.float32)
    if values.ndim == 3 and values.shape[-1] == 1:
        values = values[..., 0]
    if values.ndim != 2:
        raise ValueError(f"expected a (rows, columns) heatmap, got shape {values.shape}")
    half = spec.window / 2 - 0.5
    return HeatmapGrid(values, half, half, float(spec.stride), float(spec.stride), METHOD_HEATMAP)


def _positions(size: int, patch: int, stride: int) -> list[int]:
    """Patch start positions covering ``0..size`` (the last patch flush with the edge)."""
    starts = list(range(0, max(size - patch, 0) + 1, stride))
    if starts[-1] != max(size - patch, 0):
        starts.append(max(size - patch, 0))
    return starts


def occlusion_grid(
    model_input: np.ndarray,
    score_batch: Callable[[np.ndarray], np.ndarray],
    settings: OcclusionSettings = OcclusionSettings(),
    base_probability: float | None = None,
    fill: float | None = None,
) -> HeatmapGrid:
    """Occlusion sensitivity of one image: how much blanking each patch lowers the score.

    Args:
        model_input: ``(height, width, 1)`` float32, as ``preprocess.prepare`` makes it.
        score_batch: ``(N, height, width, 1)`` -> ``(N,)`` probabilities (onnxruntime,
            e.g. :meth:`Predictor.score_batch`).
        settings: patch and stride.
        base_probability: the unoccluded probability; scored here when ``None``.
        fill: the value occluded pixels take; default the image's background level
            (its 1st percentile: film background for a mammogram, the blanked surround
            for a breast-cropped input).

    Returns:
        A grid of ``base - occluded`` probabilities at the patch centres (positive where
        hiding the patch lowers the score).
    """
    height, width = model_input.shape[:2]
    patch_height, patch_width, stride_y, stride_x = settings.patch_and_stride(height, width)
    rows = _positions(height, patch_height, stride_y)
    columns = _positions(width, patch_width, stride_x)
    if fill is None:
        fill = float(np.percentile(model_input, 1))
    if base_probability is None:
        base_probability = float(score_batch(model_input[np.newaxis])[0])
    boxes = [(top, left) for top in rows for left in columns]
    scores = np.empty(len(boxes), dtype=np.float64)
    for start in range(0, len(boxes), settings.batch_size):
        chunk = boxes[start : start + settings.batch_size]
        batch = np.repeat(model_input[np.newaxis], len(chunk), axis=0)
        for index, (top, left) in enumerate(chunk):
            batch[index, top : top + patch_height, left : left + patch_width] = fill
        scores[start : start + len(chunk)] = np.asarray(score_batch(batch)).reshape(-1)
    if not np.all(np.isfinite(scores)):
        raise ValueError("the model returned a non-finite probability for an occluded copy")
    drops = (base_probability - scores).reshape(len(rows), len(columns)).astype(np.float32)
    step_y = float(rows[1] - rows[0]) if len(rows) > 1 else float(height)
    step_x = float(columns[1] - columns[0]) if len(columns) > 1 else float(width)
    # The last row/column may sit closer than one stride (flush with the edge); cells are
    # placed by their own starts, so a uniform grid is exact only when the starts are even.
    values = drops
    if _uneven(rows) or _uneven(columns):
        values = _regrid(drops, rows, columns, step_y, step_x)
    return HeatmapGrid(
        values,
        origin_x=patch_width / 2 - 0.5,
        origin_y=patch_height / 2 - 0.5,
        step_x=step_x,
        step_y=step_y,
        method=METHOD_OCCLUSION,
    )


def _uneven(starts: list[int]) -> bool:
    return len(starts) > 2 and len({b - a for a, b in zip(starts, starts[1:], strict=False)}) > 1


def _regrid(
    drops: np.ndarray, rows: list[int], columns: list[int], step_y: float, step_x: float
) -> np.ndarray:
    """Resample values at uneven starts onto the even grid ``0, step, 2 step, ...``."""
    even_rows = np.arange(0, rows[-1] + 1e-6, step_y)
    even_columns = np.arange(0, columns[-1] + 1e-6, step_x)
    by_row = np.stack([np.interp(even_columns, columns, line) for line in drops])
    return np.stack(
        [np.interp(even_rows, rows, by_row[:, index]) for index in range(by_row.shape[1])],
        axis=1,
    ).astype(np.float32)


def find_peak(grid: HeatmapGrid, geometry: Geometry, on_breast: np.ndarray | None = None) -> Peak:
    """The grid's maximum (first on ties, row-major), mapped to original pixels.

    Args:
        grid: the heatmap.
        geometry: where the model input came from.
        on_breast: ``(height, width)`` bool, the model-input pixels on the breast
            (:func:`breast_pixels`); the peak is then the highest cell whose centre lies on
            the breast, so a label, a ruler or a scanner border beside it never holds the
            mark. ``None`` (or no cell on the breast): the highest cell anywhere.
    """
    values = grid.values
    if on_breast is not None:
        allowed = _cells_on(grid, on_breast)
        if allowed.any():
            values = np.where(allowed, values, -np.inf)
    row, column = np.unravel_index(int(np.argmax(values)), values.shape)
    input_x, input_y = grid.centre(int(row), int(column))
    x, y = geometry.to_original(input_x, input_y)
    return Peak(x, y, input_x, input_y, float(grid.values[row, column]))


def breast_pixels(model_input: np.ndarray, background: float) -> np.ndarray:
    """The model-input pixels wholly on the breast that breast-aware preprocessing kept.

    Everything off the breast (background, labels, rulers, borders) and the padding was
    blanked to ``background`` (the input value of a black pixel: the contract's
    ``pixel_offset``). A pixel on the skin line blends both through the resize, so the kept
    pixels are eroded by one: a peak there maps back onto the breast, not just beside it.
    """
    kept = np.asarray(model_input, dtype=np.float32).reshape(model_input.shape[:2]) != background
    inner = cv2.erode(kept.view(np.uint8), np.ones((3, 3), np.uint8)).view(bool)
    return inner if inner.any() else kept


def _cells_on(grid: HeatmapGrid, on_breast: np.ndarray) -> np.ndarray:
    """Per cell, whether its centre's model-input pixel is on the breast."""
    height, width = on_breast.shape
    rows, columns = grid.values.shape
    xs = np.clip(np.rint(grid.origin_x + np.arange(columns) * grid.step_x), 0, width - 1)
    ys = np.clip(np.rint(grid.origin_y + np.arange(rows) * grid.step_y), 0, height - 1)
    return on_breast[np.ix_(ys.astype(int), xs.astype(int))]


def heat_on_original(
    grid: HeatmapGrid, geometry: Geometry, width: int, height: int
) -> tuple[np.ndarray, np.ndarray]:
    """The grid interpolated onto a ``width x height`` raster of the original image.

    The raster may be smaller than the original (a thumbnail): its pixel centres are mapped
    to the original, then through :meth:`Geometry.to_input` to the model input, where the
    grid is sampled bilinearly (edge cells extend to the input's border).

    Returns:
        ``(heat, inside)``: ``(height, width)`` float32 values and a bool mask of the pixels
        that fed the model input (outside a breast crop there is no heat).
    """
    scale_x = geometry.original_width / width
    scale_y = geometry.original_height / height
    xs = (np.arange(width, dtype=np.float64) + 0.5) * scale_x - 0.5
    ys = (np.arange(height, dtype=np.float64) + 0.5) * scale_y - 0.5
    grid_x, grid_y = np.meshgrid(xs, ys)
    input_x, input_y = geometry.to_input(grid_x, grid_y)
    inside = (
        (input_x >= -0.5)
        & (input_x <= geometry.input_width - 0.5)
        & (input_y >= -0.5)
        & (input_y <= geometry.input_height - 0.5)
    )
    map_x = ((input_x - grid.origin_x) / grid.step_x).astype(np.float32)
    map_y = ((input_y - grid.origin_y) / grid.step_y).astype(np.float32)
    heat = cv2.remap(
        np.ascontiguousarray(grid.values, dtype=np.float32),
        map_x,
        map_y,
        interpolation=cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_REPLICATE,
    )
    return heat, inside


def heat_range(grid: HeatmapGrid) -> tuple[float, float]:
    """The values shown from blue to red.

    A model's own map holds probabilities: shown on the fixed 0..1 scale, so a calm image
    looks calm. Occlusion drops have no fixed scale: shown from 0 to the largest drop.
    """
    if grid.method == METHOD_HEATMAP:
        return 0.0, 1.0
    top = float(np.max(grid.values))
    return 0.0, top if top > 1e-6 else 1e-6
