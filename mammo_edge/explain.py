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
:class:`~mammo_edge.preprocess.Geometry` (resize, crop, flip) to the original image's
pixels, x from the left and y from the top; :func:`render_overlay` draws the grid,
interpolated onto the original image, with the peak marked.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from itertools import islice
from pathlib import Path

import cv2
import numpy as np

from .errors import ErrorCode, ModelError
from .pipeline import LoadedImage, build_record, input_label, score_loaded
from .preprocess import Geometry

#: Keys of ``ModelMetadata.outputs`` (ONNX ``mammo_edge.outputs``) that describe a heatmap.
HEATMAP_KEY = "heatmap"
HEATMAP_STRIDE_KEY = "heatmap_stride"
HEATMAP_WINDOW_KEY = "heatmap_window"

METHOD_AUTO = "auto"
METHOD_HEATMAP = "heatmap"
METHOD_OCCLUSION = "occlusion"
METHODS = (METHOD_AUTO, METHOD_HEATMAP, METHOD_OCCLUSION)

#: Overlays are drawn at most this many pixels on their longer side (peaks stay exact).
OVERLAY_MAX_SIDE = 1024
#: Share of the overlay taken by the colour map at the hottest cells.
OVERLAY_ALPHA = 0.55


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


def find_peak(grid: HeatmapGrid, geometry: Geometry) -> Peak:
    """The grid's maximum (first on ties, row-major), mapped to original pixels."""
    row, column = np.unravel_index(int(np.argmax(grid.values)), grid.values.shape)
    input_x, input_y = grid.centre(int(row), int(column))
    x, y = geometry.to_original(input_x, input_y)
    return Peak(x, y, input_x, input_y, float(grid.values[row, column]))


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


def render_overlay(
    pixels: np.ndarray,
    grid: HeatmapGrid,
    geometry: Geometry,
    peak: Peak,
    max_side: int = OVERLAY_MAX_SIDE,
    alpha: float = OVERLAY_ALPHA,
) -> np.ndarray:
    """The image in gray with the heatmap in colour (OpenCV JET) and the peak circled.

    Args:
        pixels: the original ``(H, W)`` uint8 image.
        grid, geometry, peak: from the same image.
        max_side: the overlay's longer side at most (it is never enlarged).
        alpha: colour weight at the hottest cells (cold ones get 30% of it); none where
            the model input did not cover the image.

    Returns:
        ``(h, w, 3)`` uint8 BGR, ready for ``cv2.imwrite``.
    """
    height, width = pixels.shape
    shrink = min(1.0, max_side / max(height, width))
    out_width, out_height = max(1, round(width * shrink)), max(1, round(height * shrink))
    gray = pixels
    if (out_width, out_height) != (width, height):
        gray = cv2.resize(pixels, (out_width, out_height), interpolation=cv2.INTER_AREA)
    heat, inside = heat_on_original(grid, geometry, out_width, out_height)
    low, high = heat_range(grid)
    level = np.clip((heat - low) / (high - low), 0.0, 1.0)
    colour = cv2.applyColorMap((level * 255).astype(np.uint8), cv2.COLORMAP_JET)
    base = cv2.cvtColor(gray, cv2.COLOR_GRAY2BGR)
    # Cold cells tint faintly and hot ones strongly, so the anatomy stays readable.
    weight = np.where(inside, alpha * (0.3 + 0.7 * level), 0.0)[..., np.newaxis]
    overlay = (base * (1 - weight) + colour * weight).round().astype(np.uint8)
    centre = (
        round((peak.x + 0.5) * out_width / width - 0.5),
        round((peak.y + 0.5) * out_height / height - 0.5),
    )
    radius = max(6, round(max(out_width, out_height) / 30))
    thickness = max(1, round(radius / 8))
    # A dark halo under a white mark keeps the peak visible on bright and dark tissue alike.
    for colour_bgr, extra in (((0, 0, 0), 2), ((255, 255, 255), 0)):
        cv2.circle(overlay, centre, radius, colour_bgr, thickness + extra, cv2.LINE_AA)
        cv2.drawMarker(
            overlay,
            centre,
            colour_bgr,
            cv2.MARKER_CROSS,
            radius,
            thickness + extra,
            cv2.LINE_AA,
        )
    return overlay


def thumbnail(image: np.ndarray, max_side: int) -> np.ndarray:
    """``image`` (gray or BGR) shrunk to at most ``max_side`` on its longer side."""
    height, width = image.shape[:2]
    shrink = min(1.0, max_side / max(height, width))
    if shrink >= 1.0:
        return image
    size = (max(1, round(width * shrink)), max(1, round(height * shrink)))
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA)


def write_png(path: Path, image: np.ndarray) -> None:
    """Write ``image`` as PNG; raises OSError naming the file when it cannot."""
    path.parent.mkdir(parents=True, exist_ok=True)
    ok, encoded = cv2.imencode(".png", image)
    if not ok:
        raise OSError(f"cannot encode {path.name} as PNG")
    path.write_bytes(encoded.tobytes())


# --- records ---------------------------------------------------------------------------


@dataclass(frozen=True)
class ExplainResult:
    """The ``predict`` record of one input plus where its heatmap peaks.

    Attributes:
        prediction: the :class:`~mammo_edge.predictor.PredictionResult` ``predict`` gives.
        peak_x, peak_y: the heatmap maximum in the original image's pixels (x from the
            left, y from the top); ``None`` on error.
        peak_value: the heatmap value there: a probability (``heatmap``) or a
            probability drop (``occlusion``).
        heatmap_method: ``heatmap`` or ``occlusion``; ``None`` on error.
        overlay: the overlay PNG, relative to the output folder; ``None`` on error.
    """

    prediction: object
    peak_x: float | None = None
    peak_y: float | None = None
    peak_value: float | None = None
    heatmap_method: str | None = None
    overlay: str | None = None

    @property
    def ok(self) -> bool:
        return bool(self.prediction.ok)

    def as_dict(self) -> dict:
        """The ``predict`` fields, then the explanation's, as plain JSON-ready values."""
        record = self.prediction.as_dict()
        extra = asdict(self)
        del extra["prediction"]
        for key in ("peak_x", "peak_y"):
            if extra[key] is not None:
                extra[key] = round(extra[key], 1)
        if extra["peak_value"] is not None:
            extra["peak_value"] = round(extra["peak_value"], 6)
        record.update(extra)
        return record


#: Fields an explain.jsonl record adds to the ``predict`` record.
EXPLAIN_FIELDS = ("peak_x", "peak_y", "peak_value", "heatmap_method", "overlay")


@dataclass(frozen=True)
class Explained:
    """One input after scoring and explaining; ``grid`` and ``peak`` are ``None`` on error."""

    index: int
    item: LoadedImage
    record: object
    grid: HeatmapGrid | None
    peak: Peak | None


class Explainer:
    """Score inputs with a :class:`~mammo_edge.predictor.Predictor` and find where it looked.

    Args:
        predictor: the loaded model (its session, metadata and threshold).
        method: ``auto`` (the model's heatmap when it has one, else occlusion),
            ``heatmap`` or ``occlusion``.
        occlusion: patch and stride for occlusion.

    Raises:
        ModelError: ``heatmap`` requested for a model without one, or a heatmap output
            named in the metadata that the graph lacks or cannot place.
    """

    def __init__(
        self,
        predictor,
        method: str = METHOD_AUTO,
        occlusion: OcclusionSettings = OcclusionSettings(),
    ) -> None:
        if method not in METHODS:
            raise ModelError(f"method must be one of {', '.join(METHODS)}, got {method!r}")
        self.predictor = predictor
        self.occlusion = occlusion
        source = str(predictor.model_file.path)
        spec = None
        if method != METHOD_OCCLUSION:
            spec = HeatmapSpec.from_outputs(predictor.metadata.outputs, source)
            if spec is None and method == METHOD_HEATMAP:
                raise ModelError(
                    f"{source} has no heatmap output (its metadata's mammo_edge.outputs names "
                    "none); use --method occlusion or auto"
                )
            if spec is not None and spec.output not in predictor.output_names:
                raise ModelError(
                    f"{source}: the metadata names heatmap output {spec.output!r}, but the "
                    f"model's outputs are {', '.join(predictor.output_names)}"
                )
        self.spec = spec
        self.method = METHOD_HEATMAP if spec is not None else METHOD_OCCLUSION

    def iter_explain(self, inputs: Iterable, keep_pixels: bool = True) -> Iterator[Explained]:
        """Score and explain inputs (paths or arrays) in order, one batch at a time.

        Decoding runs in the predictor's worker threads; bad inputs come out as error
        records (``grid`` and ``peak`` ``None``), never as exceptions.
        """
        predictor = self.predictor
        context = predictor.record_context
        numbered = enumerate(inputs)

        def load(entry: tuple[int, object]) -> LoadedImage:
            index, source = entry
            return predictor.load(source, input_label(source, index), keep_pixels=keep_pixels)

        with ThreadPoolExecutor(max_workers=predictor.workers) as pool:
            while chunk := list(islice(numbered, predictor.batch_size)):
                loaded = list(pool.map(load, chunk))
                explained = self.explain_loaded(loaded)
                for (index, _), (item, grid) in zip(chunk, explained, strict=True):
                    peak = find_peak(grid, item.geometry) if grid is not None else None
                    yield Explained(index, item, build_record(item, context), grid, peak)

    def explain_loaded(
        self, items: list[LoadedImage]
    ) -> list[tuple[LoadedImage, HeatmapGrid | None]]:
        """Score a batch of loaded items and compute each scored item's heatmap grid."""
        predictor = self.predictor
        if self.spec is not None:
            maps: list[np.ndarray] = []

            def score_with_map(batch: np.ndarray) -> np.ndarray:
                probabilities, heatmaps = predictor.score_batch_with(batch, self.spec.output)
                maps.extend(heatmaps)
                return probabilities

            scored = score_loaded(items, score_with_map, predictor.head)
            results = []
            remaining = iter(maps)
            for before, after in zip(items, scored, strict=True):
                heat = next(remaining, None) if before.ok else None
                if not after.ok or heat is None:
                    results.append((after, None))
                    continue
                try:
                    results.append((after, heatmap_grid(heat, self.spec)))
                except ValueError as error:
                    results.append((after.failed(ErrorCode.INFERENCE_FAILED, str(error)), None))
            return results
        scored = score_loaded(items, predictor.score_batch, predictor.head)
        results = []
        for item in scored:
            if not item.ok:
                results.append((item, None))
                continue
            try:
                grid = occlusion_grid(
                    item.model_input,
                    predictor.score_batch,
                    self.occlusion,
                    base_probability=(
                        item.probability
                        if item.network_probability is None
                        else item.network_probability
                    ),
                )
            except Exception as error:  # onnxruntime errors are untyped
                failed = item.failed(
                    ErrorCode.INFERENCE_FAILED, f"occlusion scoring failed: {error}"
                )
                results.append((failed, None))
                continue
            results.append((item, grid))
        return results


def explain_result(explained: Explained, overlay: str | None) -> ExplainResult:
    """The explain.jsonl record of one input."""
    if explained.peak is None or explained.grid is None or not explained.record.ok:
        return ExplainResult(explained.record)
    peak = explained.peak
    return ExplainResult(
        explained.record,
        peak_x=peak.x,
        peak_y=peak.y,
        peak_value=peak.value,
        heatmap_method=explained.grid.method,
        overlay=overlay,
    )


_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def image_file_stem(index: int, path: str) -> str:
    """A file-name stem unique per input: ``0001_mdb003`` (1-based index, safe characters)."""
    stem = Path(path).stem if not path.startswith("<array") else "array"
    stem = _UNSAFE.sub("_", stem).strip("._") or "image"
    return f"{index + 1:04d}_{stem[:60]}"


__all__ = [
    "EXPLAIN_FIELDS",
    "ExplainResult",
    "Explained",
    "Explainer",
    "HeatmapGrid",
    "HeatmapSpec",
    "OcclusionSettings",
    "Peak",
    "explain_result",
    "find_peak",
    "heat_on_original",
    "heatmap_grid",
    "image_file_stem",
    "occlusion_grid",
    "render_overlay",
    "thumbnail",
    "write_png",
]
