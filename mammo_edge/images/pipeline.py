"""The per-image steps every engine runs: load, score, build the record.

Three pure functions, shared by the local engine (:mod:`mammo_edge.engines.local`), the Ray
engine (:mod:`mammo_edge.engines.ray_engine`) and ``serve``, so all give the same records:

1. :func:`load_input`: read -> decode -> preprocess one input into a :class:`LoadedImage`.
   It never raises for a bad input: the failure is carried in the item (``error_code``,
   ``error_message``), so a damaged file becomes an error record, never a failed batch.
2. :func:`score_loaded`: run a scoring function (onnxruntime) on the scorable items of a
   batch; a batch that onnxruntime rejects marks its items ``INFERENCE_FAILED``.
3. :func:`~mammo_edge.records.record.build_record`: one
   :class:`~mammo_edge.records.record.PredictionResult` from a scored item and the model's
   :class:`~mammo_edge.records.record.RecordContext` (the record's own module).

Everything crossing a process boundary here (``LoadedImage``, ``RecordContext``) holds
plain values (numpy arrays, strings, tuples), so it pickles for Ray tasks and actors.

Inputs may be local paths, numpy arrays, or URIs (``s3://bucket/a.dcm``, ``gs://``,
``file://``...) read through a pyarrow filesystem when pyarrow is installed (it comes with
the ``ray`` extra).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from mammo_edge.errors import ErrorCode, InputError
from mammo_edge.exams import View, dicom_view, mias_view
from mammo_edge.images.calcifications import calcification_features
from mammo_edge.images.decode import (
    MAX_FILE_BYTES,
    MAX_PIXELS,
    decode_image_bytes,
    image_from_array,
    load_image,
)
from mammo_edge.images.guard import check_mammogram
from mammo_edge.images.inputs import is_uri
from mammo_edge.images.preprocess import Geometry, NoBreastFoundError, PreprocessConfig, prepare
from mammo_edge.model.heads import PAIR_FEATURE, Head, logit

#: One thing to score: a file path, a URI, or an image array (see ``image_from_array``).
ImageInput = str | os.PathLike | np.ndarray


@dataclass(frozen=True)
class LoadedImage:
    """One input after read -> decode -> preprocess, or the reason it failed.

    Attributes:
        path: the label of the input in results (the path as given, or ``<array N>``).
        model_input: ``(height, width, 1)`` float32 on success; ``None`` on error.
        geometry: where the model input came from in the original image
            (:class:`~mammo_edge.images.preprocess.Geometry`); ``None`` on error.
        image_format: the format found in the content; ``None`` when not decoded.
        warnings: notes that did not stop scoring.
        error_code: a stable :class:`~mammo_edge.errors.ErrorCode` value, or ``None``.
        error_message: what failed and what to do, or ``None``.
        probability: set by :func:`score_loaded`; ``None`` before scoring or on error.
        pixels: the decoded ``(H, W)`` uint8 image when :func:`load_input` was asked to
            keep it (``keep_pixels=True``, for drawing heatmaps on it); else ``None``.
        view: the exam and breast the image belongs to (:mod:`mammo_edge.exams`).
        evidence: named full-resolution features for a stacking head
            (:mod:`mammo_edge.images.calcifications`), when :func:`load_input` was asked for them.
        network_probability: the network's own probability when a head made
            ``probability``; else ``None``.
    """

    path: str
    model_input: np.ndarray | None
    geometry: Geometry | None = None
    image_format: str | None = None
    warnings: tuple[str, ...] = ()
    error_code: str | None = None
    error_message: str | None = None
    probability: float | None = None
    pixels: np.ndarray | None = None
    view: View | None = None
    evidence: tuple[tuple[str, float], ...] = ()
    network_probability: float | None = None

    @property
    def ok(self) -> bool:
        """True when the input decoded and preprocessed (and, after scoring, scored)."""
        return self.error_code is None

    def failed(self, code: ErrorCode, message: str) -> LoadedImage:
        """A copy of this item marked as failed with ``code``."""
        return replace(
            self,
            model_input=None,
            error_code=code.value,
            error_message=message,
            probability=None,
            pixels=None,
        )


def input_label(source: str | os.PathLike | np.ndarray, index: int) -> str:
    """The ``path`` a record shows for the ``index``-th input: the path, or ``<array N>``."""
    return f"<array {index}>" if isinstance(source, np.ndarray) else str(source)


def load_input(
    source: str | os.PathLike | np.ndarray,
    config: PreprocessConfig,
    *,
    label: str | None = None,
    max_pixels: int = MAX_PIXELS,
    keep_pixels: bool = False,
    evidence: bool = False,
) -> LoadedImage:
    """Read, decode and preprocess one input; never raises for a bad input.

    Args:
        source: a local path, a URI (``s3://...``, read with pyarrow), or an image array
            (see :func:`~mammo_edge.images.decode.image_from_array`).
        config: the model's preprocessing contract (``ModelMetadata.preprocess``).
        label: the record's ``path``; defaults to ``str(source)`` (``<array>`` for arrays).
        max_pixels: the decompression-bomb limit.
        keep_pixels: keep the decoded 8-bit image in ``LoadedImage.pixels``.
        evidence: also measure the full-resolution calcification features a stacking
            head needs (:func:`~mammo_edge.images.calcifications.calcification_features`).

    Returns:
        A :class:`LoadedImage` holding ``model_input`` and ``geometry``, or an error code
        and message (``NOT_FOUND``, ``CORRUPT``, ``NO_BREAST_FOUND``...). An image that
        decoded but failed later keeps its format and the decoder's warnings.
    """
    if label is None:
        label = "<array>" if isinstance(source, np.ndarray) else str(source)
    decoded = None
    try:
        if isinstance(source, np.ndarray):
            decoded = image_from_array(source)
        elif is_uri(str(source)):
            decoded = _load_uri(str(source), max_pixels)
        else:
            decoded = load_image(Path(source), max_pixels=max_pixels)
        # Every model, before it runs: a blank frame or a page of text is not scored.
        mask = check_mammogram(decoded.pixels, decoded.colourfulness)
        prepared = prepare(decoded.pixels, config, chest_wall=decoded.chest_wall, mask=mask)
        features = ()
        if evidence:
            measured = calcification_features(
                decoded.pixels, getattr(decoded, "mm_per_pixel", None), mask=mask
            )
            features = tuple(measured.as_dict().items())
        return LoadedImage(
            path=label,
            model_input=prepared.model_input,
            geometry=prepared.geometry,
            image_format=decoded.image_format,
            warnings=tuple(decoded.warnings),
            pixels=decoded.pixels if keep_pixels else None,
            view=_view_of(label, decoded),
            evidence=features,
        )
    except InputError as error:
        code, message = error.code, error.message
    except NoBreastFoundError as error:
        code, message = ErrorCode.NO_BREAST_FOUND, f"no breast found in the image: {error}"
    except MemoryError:
        code, message = ErrorCode.TOO_LARGE, "not enough memory to decode the image"
    except Exception as error:  # one strange file must not stop a study
        code = ErrorCode.CORRUPT
        message = f"decoding failed unexpectedly ({type(error).__name__}: {error})"
    return LoadedImage(
        path=label,
        model_input=None,
        image_format=decoded.image_format if decoded is not None else None,
        warnings=tuple(decoded.warnings) if decoded is not None else (),
        error_code=code.value,
        error_message=message,
    )


def score_loaded(
    items: Sequence[LoadedImage],
    score_batch: Callable[[np.ndarray], np.ndarray],
    head: Head | None = None,
) -> list[LoadedImage]:
    """Score the items that loaded, in one call of ``score_batch``.

    Args:
        items: loaded items, some possibly failed (they pass through unchanged).
        score_batch: maps an ``(N, height, width, 1)`` float32 batch to ``(N,)``
            probabilities (e.g. :meth:`Predictor.score_batch`).
        head: the model's stacking head (:mod:`mammo_edge.model.heads`): it turns the
            network's probability and the item's ``evidence`` into ``probability``.

    Returns:
        The items in the same order, each with ``probability`` set, or marked
        ``INFERENCE_FAILED`` when the scoring call raised or returned a non-finite value.
    """
    scorable = [index for index, item in enumerate(items) if item.ok]
    scored = list(items)
    if not scorable:
        return scored
    batch = np.stack([items[index].model_input for index in scorable])
    try:
        probabilities = np.asarray(score_batch(batch), dtype=np.float64).reshape(-1)
        if len(probabilities) != len(scorable):
            raise ValueError(f"{len(probabilities)} outputs for {len(scorable)} images")
    except Exception as error:  # onnxruntime errors are untyped
        for index in scorable:
            scored[index] = items[index].failed(
                ErrorCode.INFERENCE_FAILED, f"onnxruntime failed on this batch: {error}"
            )
        return scored
    for index, probability in zip(scorable, probabilities, strict=True):
        if np.isfinite(probability) and head is not None:
            values = {
                "cnn_logit": logit(float(probability)),
                PAIR_FEATURE: 0.0,  # alone; grouping adds the other breast's
                **dict(items[index].evidence),
            }
            scored[index] = replace(
                items[index],
                probability=head.probability(values),
                network_probability=float(probability),
            )
        elif np.isfinite(probability):
            scored[index] = replace(items[index], probability=float(probability))
        else:
            scored[index] = items[index].failed(
                ErrorCode.INFERENCE_FAILED, f"the model returned {probability}"
            )
    return scored


def _view_of(label: str, decoded) -> View | None:
    """The exam of an input: DICOM tags first, else a mini-MIAS file name."""
    tags = getattr(decoded, "exam_tags", None)
    if tags:
        view = dicom_view(*tags)
        if view is not None:
            return view
    return mias_view(label)


def _load_uri(uri: str, max_pixels: int):
    """Read a ``scheme://`` input with a pyarrow filesystem, then decode its bytes."""
    try:
        from pyarrow import fs as pyarrow_fs
    except ImportError as error:
        raise InputError(
            ErrorCode.UNREADABLE,
            "reading URIs needs pyarrow: pip install 'mammo-edge[ray]' (or pyarrow)",
        ) from error
    try:
        filesystem, path = pyarrow_fs.FileSystem.from_uri(uri)
        info = filesystem.get_file_info(path)
    except Exception as error:  # pyarrow raises ArrowInvalid / OSError for bad URIs
        raise InputError(ErrorCode.UNREADABLE, f"cannot open the URI: {error}") from error
    if info.type == pyarrow_fs.FileType.NotFound:
        raise InputError(ErrorCode.NOT_FOUND, "no such object")
    if info.type == pyarrow_fs.FileType.Directory:
        raise InputError(ErrorCode.UNREADABLE, "this is a folder, not a file")
    if info.size is not None and info.size > MAX_FILE_BYTES:
        raise InputError(
            ErrorCode.TOO_LARGE,
            f"the object has {info.size:,} bytes, above the {MAX_FILE_BYTES:,}-byte limit",
        )
    try:
        with filesystem.open_input_stream(path) as stream:
            data = stream.read()
    except Exception as error:
        raise InputError(ErrorCode.UNREADABLE, f"cannot read the object: {error}") from error
    return decode_image_bytes(data, suffix=Path(path).suffix.lower(), max_pixels=max_pixels)
