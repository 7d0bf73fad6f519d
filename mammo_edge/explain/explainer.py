"""Explain: score inputs and find where the model looked, one record per input.

:class:`Explainer` reads inputs through the local engine's batching loop
(:func:`~mammo_edge.engines.local.iter_loaded_batches`), scores each batch once (with the
model's heatmap output when it has one), computes the heatmap grid
(:mod:`mammo_edge.explain.heatmaps`: the model's own lesion map or occlusion sensitivity) and its
peak, and gives each input the ``predict`` record (exam fields included, as ``predict``
gives them) plus where the heatmap peaks. Overlays are drawn by :mod:`mammo_edge.explain.overlays`.
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np

from mammo_edge.errors import ErrorCode, ModelError
from mammo_edge.explain.heatmaps import (
    METHOD_AUTO,
    METHOD_HEATMAP,
    METHOD_OCCLUSION,
    METHODS,
    HeatmapGrid,
    HeatmapSpec,
    OcclusionSettings,
    Peak,
    breast_pixels,
    find_peak,
    heat_on_original,
    heatmap_grid,
    occlusion_grid,
)
from mammo_edge.explain.overlays import render_overlay, thumbnail, write_png
from mammo_edge.images.pipeline import LoadedImage, score_loaded
from mammo_edge.records.record import build_record

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
        occlusion: OcclusionSettings | None = None,
    ) -> None:
        if method not in METHODS:
            raise ModelError(f"method must be one of {', '.join(METHODS)}, got {method!r}")
        self.predictor = predictor
        self.occlusion = occlusion or OcclusionSettings()
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

        Decoding runs in the predictor's worker threads (the local engine's batching loop);
        bad inputs come out as error records (``grid`` and ``peak`` ``None``), never as
        exceptions. Records carry no exam fields yet: see :func:`with_exam_fields`.
        """
        from mammo_edge.engines.local import iter_loaded_batches

        predictor = self.predictor
        context = predictor.record_context

        def load(source, label: str) -> LoadedImage:
            return predictor.load(source, label, keep_pixels=keep_pixels)

        batches = iter_loaded_batches(
            inputs, load, batch_size=predictor.batch_size, workers=predictor.workers
        )
        try:
            for batch in batches:
                explained = self.explain_loaded([item for _, item in batch])
                for (index, _), (item, grid) in zip(batch, explained, strict=True):
                    peak = self.peak(item, grid)
                    yield Explained(index, item, build_record(item, context), grid, peak)
        finally:
            batches.close()

    def peak(self, item: LoadedImage, grid: HeatmapGrid | None) -> Peak | None:
        """The heatmap's peak, on the breast when the preprocessing segmented one."""
        if grid is None:
            return None
        config = self.predictor.metadata.preprocess
        on_breast = None
        if config.breast_crop and item.model_input is not None:
            on_breast = breast_pixels(item.model_input, float(config.pixel_offset))
        return find_peak(grid, item.geometry, on_breast)

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


def with_exam_fields(results: Iterable[ExplainResult], predictor) -> Iterator[ExplainResult]:
    """The explain records with the exam fields ``predict`` gives them, in the same order.

    :meth:`Explainer.iter_explain` scores image by image; this passes the records through
    the predictor's exam grouping (:meth:`~mammo_edge.predictor.Predictor.group`), so an
    image's probability and label weigh its other breast exactly as in ``predict``. Run it
    after the overlays are drawn: a record may wait here for the rest of its exam, and the
    image's pixels should not wait with it.
    """
    waiting: deque[ExplainResult] = deque()

    def predictions() -> Iterator:
        for result in results:
            waiting.append(result)
            yield result.prediction

    for prediction in predictor.group(predictions()):
        yield replace(waiting.popleft(), prediction=prediction)


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
    "with_exam_fields",
    "find_peak",
    "heat_on_original",
    "heatmap_grid",
    "image_file_stem",
    "occlusion_grid",
    "render_overlay",
    "thumbnail",
    "write_png",
]
