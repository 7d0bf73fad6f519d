"""The Predictor: a verified model, its preprocessing, and a pipeline that scores images.

Decoding and resizing run in a thread pool (OpenCV, numpy and file reads release the
GIL) that stays a bounded number of images ahead of inference, so a folder of large
PGMs keeps every core busy while results come back in input order.
"""

from __future__ import annotations

import hashlib
import os
from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import numpy as np

from .errors import ModelError
from .grouping import GROUP_BY_CHOICES, group_records
from .imageio import MAX_PIXELS
from .metadata import MetadataError, ModelMetadata
from .pipeline import LoadedImage, input_label, load_input, score_loaded
from .providers import create_session
from .records import (  # noqa: F401  (PredictionResult and its fields were defined here)
    RESULT_FIELDS,
    STATUS_ERROR,
    STATUS_OK,
    PredictionResult,
    RecordContext,
    build_record,
)
from .registry import ModelFile, read_verified, resolve_model
from .stacking import HeadError, single_head

#: One thing to score: a file path or an image array (see ``image_from_array``).
ImageInput = str | os.PathLike | np.ndarray

#: The default batch holds about this many input pixels: 16 images of the seed's 128x128,
#: 2 of lite0's 512x256 (measured end to end on 2 cores: lite0 at batch 16 was slower and
#: peaked at 823 MB, against 206 MB at batch 1; reports/benchmarks).
DEFAULT_BATCH_PIXELS = 16 * 128 * 128


def default_batch_size(preprocess) -> int:
    """Images per inference call when none is asked for: sized from the model's input."""
    return max(1, min(16, DEFAULT_BATCH_PIXELS // (preprocess.height * preprocess.width)))


class Predictor:
    """Score mammograms with a verified mammo-edge ONNX model.

    Args:
        model: ``None`` for ``$MAMMO_EDGE_MODEL`` or the shipped default, an installed model
            name (``seed``, ``seed-int8``, ...), a folder with a ``manifest.json``, or an ``.onnx``
            path.
        device: ``auto`` (CUDA when onnxruntime offers it), ``cpu`` or ``cuda``.
        threads: onnxruntime intra-op threads; ``None`` for one per core.
        threshold: decision threshold in [0, 1]; ``None`` uses the model's own.
        batch_size: images per inference call.
        workers: decoding threads; ``None`` for ``min(4, cpu_count)``.
        max_pixels: the decompression-bomb limit per image.
        operating_point: a named threshold of the model (``triage``, ``balanced``; see
            ``mammo-edge info``); ``None`` uses the model's default. Not with ``threshold``.
        group_by: ``auto`` adds each record's exam fields (both breasts, per-breast and
            per-exam probability; :mod:`mammo_edge.grouping`), ``none`` leaves them empty.

    Raises:
        ModelError: the model is missing, altered, not a mammo-edge model, or the device
            cannot be used (:class:`~mammo_edge.errors.ProviderError`).

    Example::

        predictor = Predictor()
        result = predictor.predict("examples/mdb003.pgm")
        results = predictor.predict(["a.png", "b.dcm"])
        for result in predictor.iter_predict_paths(["scans/", "*.dcm", "@todo.txt"]):
            print(result.path, result.probability)
    """

    def __init__(
        self,
        model: str | os.PathLike | None = None,
        *,
        device: str = "auto",
        threads: int | None = None,
        threshold: float | None = None,
        batch_size: int | None = None,
        workers: int | None = None,
        max_pixels: int = MAX_PIXELS,
        group_by: str = "auto",
        operating_point: str | None = None,
    ) -> None:
        self.model_file: ModelFile = resolve_model(model)
        model_bytes, sha256 = read_verified(self.model_file)
        self._build(
            model_bytes,
            sha256,
            verified=self.model_file.expected_sha256 is not None,
            device=device,
            threads=threads,
            threshold=threshold,
            batch_size=batch_size,
            workers=workers,
            max_pixels=max_pixels,
            group_by=group_by,
            operating_point=operating_point,
        )

    @classmethod
    def from_model_bytes(
        cls,
        model_bytes: bytes,
        *,
        sha256: str,
        source: str = "model",
        device: str = "auto",
        threads: int | None = None,
        threshold: float | None = None,
        batch_size: int | None = None,
        workers: int | None = None,
        max_pixels: int = MAX_PIXELS,
        group_by: str = "auto",
        operating_point: str | None = None,
    ) -> Predictor:
        """A Predictor over model bytes already in memory (e.g. shipped to a Ray actor).

        Args:
            model_bytes: the ONNX file content.
            sha256: the SHA-256 (hex) the bytes must have; they are refused otherwise.
            source: where the bytes came from, for messages and ``model_file.path``.
            device, threads, threshold, batch_size, workers, max_pixels: as for the
                constructor.

        Raises:
            ModelError: the bytes' SHA-256 differs from ``sha256``, or as for the constructor.
        """
        digest = hashlib.sha256(model_bytes).hexdigest()
        if digest != sha256.lower():
            raise ModelError(
                f"Model bytes from {source} failed their integrity check: SHA-256 {digest} "
                f"differs from the expected {sha256.lower()}."
            )
        predictor = cls.__new__(cls)
        predictor.model_file = ModelFile(
            path=Path(source), name=Path(source).stem, expected_sha256=digest
        )
        predictor._build(
            model_bytes,
            digest,
            verified=True,
            device=device,
            threads=threads,
            threshold=threshold,
            batch_size=batch_size,
            workers=workers,
            max_pixels=max_pixels,
            group_by=group_by,
            operating_point=operating_point,
        )
        return predictor

    def read_model_bytes(self) -> bytes:
        """The model file's bytes, checked to be the ones this Predictor loaded.

        Raises:
            ModelError: the file is gone or changed since this Predictor loaded it.
        """
        model_bytes, digest = read_verified(self.model_file)
        if digest != self.model_sha256:
            raise ModelError(
                f"Model file {self.model_file.path} changed since it was loaded "
                f"(SHA-256 {digest}, loaded {self.model_sha256}); load it again."
            )
        return model_bytes

    def _build(
        self,
        model_bytes: bytes,
        sha256: str,
        *,
        verified: bool,
        device: str,
        threads: int | None,
        threshold: float | None,
        batch_size: int | None,
        workers: int | None,
        max_pixels: int,
        group_by: str = "auto",
        operating_point: str | None = None,
    ) -> None:
        """Create the session from verified bytes and check the model against its metadata."""
        if group_by not in GROUP_BY_CHOICES:
            raise ModelError(f"group_by must be one of {GROUP_BY_CHOICES}, got {group_by!r}")
        self.group_by = group_by
        if batch_size is not None and batch_size < 1:
            raise ModelError(f"batch_size must be at least 1, got {batch_size}")
        if workers is not None and workers < 1:
            raise ModelError(f"workers must be at least 1, got {workers}")
        self.model_sha256 = sha256
        self.sha256_verified = verified
        source = str(self.model_file.path)
        self.session = create_session(model_bytes, device=device, threads=threads, source=source)
        self.provider: str = self.session.get_providers()[0]
        self.device = device
        self.threads = threads
        props = self.session.get_modelmeta().custom_metadata_map
        try:
            self.metadata = ModelMetadata.from_props(props, source=source)
        except MetadataError as error:
            raise ModelError(str(error)) from error
        if threshold is not None and operating_point is not None:
            raise ModelError("give a threshold or an operating point, not both")
        self.operating_point = "custom threshold"
        if threshold is None:
            try:
                threshold, self.operating_point = self.metadata.operating_point(operating_point)
            except MetadataError as error:
                raise ModelError(str(error)) from error
        if not 0.0 <= threshold <= 1.0:
            raise ModelError(f"threshold must lie in [0, 1], got {threshold}")
        self.threshold = float(threshold)
        try:
            self.head = single_head(self.metadata.head)
        except HeadError as error:
            raise ModelError(f"{source}: {error}") from error
        self.batch_size = batch_size or default_batch_size(self.metadata.preprocess)
        self.workers = workers or min(4, os.cpu_count() or 1)
        self.max_pixels = max_pixels
        self._input_name, self._output_name = self._check_signature(source)

    @property
    def model_name(self) -> str:
        return self.metadata.model_name

    @property
    def model_version(self) -> str:
        return self.metadata.model_version

    def _check_signature(self, source: str) -> tuple[str, str]:
        """Read input and output names from the session and check the shape contract."""
        inputs, outputs = self.session.get_inputs(), self.session.get_outputs()
        if len(inputs) != 1 or not outputs:
            raise ModelError(f"{source}: expected one image input, found {len(inputs)} inputs")
        image_input = inputs[0]
        height, width = self.metadata.preprocess.height, self.metadata.preprocess.width
        shape = list(image_input.shape)
        expected = [None, height, width, 1]
        fits = len(shape) == 4 and all(
            not isinstance(found, int) or want is None or found == want
            for found, want in zip(shape, expected, strict=True)
        )
        if not fits or image_input.type != "tensor(float)":
            raise ModelError(
                f"{source}: input {image_input.name!r} is {image_input.type} {shape}; "
                f"the metadata promises float [N, {height}, {width}, 1]"
            )
        if isinstance(shape[0], int):
            if shape[0] != 1:
                raise ModelError(f"{source}: fixed batch size {shape[0]}; export a dynamic batch")
            self.batch_size = 1
        names = [output.name for output in outputs]
        output_name = "probability" if "probability" in names else names[0]
        return image_input.name, output_name

    def score_batch(self, batch: np.ndarray) -> np.ndarray:
        """Run the model on preprocessed input.

        Args:
            batch: ``(N, size, size, 1)`` float32, as made by ``preprocess.to_model_batch``.

        Returns:
            ``(N,)`` float64 probabilities of the positive class.
        """
        if self.batch_size == 1 and len(batch) > 1:
            return np.concatenate([self.score_batch(batch[i : i + 1]) for i in range(len(batch))])
        (output,) = self.session.run([self._output_name], {self._input_name: batch})
        return np.asarray(output, dtype=np.float64).reshape(len(batch), -1)[:, -1]

    @property
    def output_names(self) -> list[str]:
        """Names of the model's outputs, in graph order."""
        return [output.name for output in self.session.get_outputs()]

    def score_batch_with(self, batch: np.ndarray, output: str) -> tuple[np.ndarray, np.ndarray]:
        """Probabilities as :meth:`score_batch`, and another output of the same run.

        Args:
            batch: ``(N, height, width, 1)`` float32 model input.
            output: the name of the second output (e.g. the ``heatmap`` of the metadata's
                ``outputs``).

        Returns:
            ``(N,)`` float64 probabilities and the ``(N, ...)`` float32 second output.
        """
        if self.batch_size == 1 and len(batch) > 1:
            parts = [self.score_batch_with(batch[i : i + 1], output) for i in range(len(batch))]
            return (
                np.concatenate([part[0] for part in parts]),
                np.concatenate([part[1] for part in parts]),
            )
        probability, other = self.session.run(
            [self._output_name, output], {self._input_name: batch}
        )
        probabilities = np.asarray(probability, dtype=np.float64).reshape(len(batch), -1)[:, -1]
        return probabilities, np.asarray(other, dtype=np.float32)

    @property
    def record_context(self) -> RecordContext:
        """What every record of this predictor carries (threshold, model identity, provider)."""
        negative, positive = self.metadata.class_names
        return RecordContext(
            threshold=self.threshold,
            class_names=(negative, positive),
            model_name=self.model_name,
            model_version=self.model_version,
            model_sha256=self.model_sha256,
            provider=self.provider,
        )

    def predict(
        self, inputs: ImageInput | Iterable[ImageInput]
    ) -> PredictionResult | list[PredictionResult]:
        """Score one image (path or array) or an iterable of them.

        Returns:
            One :class:`PredictionResult` for a single path or array, else a list in input
            order. Unreadable inputs give error records; this never raises for one bad file.
        """
        if isinstance(inputs, (str, os.PathLike, np.ndarray)):
            return next(self.iter_predict([inputs]))
        return list(self.iter_predict(inputs))

    def iter_predict_paths(
        self, arguments: str | os.PathLike | Iterable[str | os.PathLike]
    ) -> Iterator[PredictionResult]:
        """Score files, folders, glob patterns and list files, as ``mammo-edge predict`` does.

        Args:
            arguments: one argument or an iterable of them, each expanded by
                :func:`mammo_edge.inputs.iter_inputs` (folders recursively, globs sorted,
                ``@list.txt`` files line by line; a missing path becomes a NOT_FOUND record).

        Yields:
            One :class:`PredictionResult` per expanded file, in expansion order, streamed:
            folders are walked lazily, so the first results arrive before a large archive
            has been listed.
        """
        from .inputs import iter_inputs

        if isinstance(arguments, (str, os.PathLike)):
            arguments = [arguments]
        return self.iter_predict(iter_inputs(arguments))

    def iter_predict(self, inputs: Iterable[ImageInput]) -> Iterator[PredictionResult]:
        """Score inputs lazily, yielding one result per input, in input order.

        Each input is an exact file path (or URI) or an image array; to expand folders,
        globs and list files use :meth:`iter_predict_paths`. With ``group_by="auto"`` a
        record may wait (at most :data:`~mammo_edge.grouping.GROUP_WINDOW` inputs) for the
        other images of its exam, so that it carries their per-breast/per-exam values.
        """
        records = self._iter_records(inputs)
        if self.group_by == "none":
            return records
        return _closing(self.group(records), records)

    def group(self, records: Iterable[PredictionResult]) -> Iterator[PredictionResult]:
        """:func:`~mammo_edge.grouping.group_records` with this model's pair head (if any)."""
        pair = self.head if self.head is not None and self.head.reads_other_breast else None
        return group_records(records, pair_head=pair, class_names=self.metadata.class_names)

    def _iter_records(self, inputs: Iterable[ImageInput]) -> Iterator[PredictionResult]:
        """Score inputs lazily, one ungrouped result per input, in input order.

        Images are decoded ahead by
        the worker pool (at most ``2 * batch_size + workers`` at a time) while the model
        scores the previous batch; results come out batch by batch, so a caller writing
        them as they arrive keeps everything finished so far.
        """
        labelled = ((input_label(item, index), item) for index, item in enumerate(inputs))
        read_ahead = 2 * self.batch_size + self.workers
        pool = ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="mammo-decode")
        pending: deque[Future[LoadedImage]] = deque()
        context = self.record_context

        def refill() -> None:
            while len(pending) < read_ahead:
                next_item = next(labelled, None)
                if next_item is None:
                    return
                label, item = next_item
                pending.append(pool.submit(self._load, item, label))

        chunk: list[LoadedImage] = []
        scorable = 0
        try:
            refill()
            while pending:
                loaded = pending.popleft().result()
                refill()
                if not loaded.ok and scorable == 0:
                    yield build_record(loaded, context)  # nothing to wait for: write it now
                    continue
                chunk.append(loaded)
                scorable += loaded.ok
                if scorable == self.batch_size:
                    yield from self._score_chunk(chunk, context)
                    chunk, scorable = [], 0
            if chunk:
                yield from self._score_chunk(chunk, context)
        finally:
            for future in pending:
                future.cancel()
            pool.shutdown(wait=True, cancel_futures=True)

    def load(self, item: ImageInput, label: str, keep_pixels: bool = False) -> LoadedImage:
        """Decode and preprocess one input for this model (thread-safe; never raises).

        Every engine and verb loads through here, so each gets what the model needs: its
        preprocessing contract, and the full-resolution evidence its head reads.
        """
        return load_input(
            item,
            self.metadata.preprocess,
            label=label,
            max_pixels=self.max_pixels,
            keep_pixels=keep_pixels,
            evidence=self.head is not None and self.head.needs_calcifications,
        )

    _load = load

    def _score_chunk(
        self, chunk: list[LoadedImage], context: RecordContext
    ) -> Iterator[PredictionResult]:
        for item in score_loaded(chunk, self.score_batch, self.head):
            yield build_record(item, context)


def _closing(outer: Iterator, inner: Iterator) -> Iterator:
    """Iterate ``outer``; closing it (or finishing) closes ``inner`` (its thread pool)."""
    try:
        yield from outer
    finally:
        inner.close()
