"""The Predictor: a verified model, its preprocessing, and a pipeline that scores images.

Decoding and resizing run in a thread pool (OpenCV, numpy and file reads release the
GIL) that stays a bounded number of images ahead of inference, so a folder of large
PGMs keeps every core busy while results come back in input order.
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import numpy as np

from .errors import ErrorCode, InputError, ModelError
from .imageio import MAX_PIXELS, image_from_array, load_image
from .metadata import MetadataError, ModelMetadata
from .preprocess import to_model_input
from .providers import create_session
from .registry import ModelFile, read_verified, resolve_model

#: One thing to score: a file path or an image array (see ``image_from_array``).
ImageInput = str | os.PathLike | np.ndarray

STATUS_OK = "ok"
STATUS_ERROR = "error"


@dataclass(frozen=True)
class PredictionResult:
    """The one record every input yields. Field meanings: docs/runtime.md.

    Attributes:
        path: the input path, or ``<array N>`` for the N-th array given.
        status: ``ok`` or ``error``.
        probability: probability of the positive class (``abnormal``); ``None`` on error.
        label: ``normal`` or ``abnormal`` (``probability >= threshold``); ``None`` on error.
        threshold: the decision threshold used.
        model_name, model_version: from the model's metadata.
        model_sha256: SHA-256 of the model file that scored it.
        provider: the onnxruntime execution provider that ran the model.
        image_format: the format found in the content; ``None`` when not decoded.
        warnings: notes such as colour converted to gray or a misleading file extension.
        error_code: a stable :class:`~mammo_edge.errors.ErrorCode` value on error.
        error_message: what failed and what to do, on error.
    """

    path: str
    status: str
    probability: float | None
    label: str | None
    threshold: float
    model_name: str
    model_version: str
    model_sha256: str
    provider: str
    image_format: str | None = None
    warnings: tuple[str, ...] = ()
    error_code: str | None = None
    error_message: str | None = None

    @property
    def ok(self) -> bool:
        """True when the input was scored."""
        return self.status == STATUS_OK

    def as_dict(self) -> dict:
        """The record as plain JSON-ready values, fields in schema order."""
        record = asdict(self)
        record["warnings"] = list(self.warnings)
        return record


#: Result fields in the order every output format writes them.
RESULT_FIELDS = tuple(field.name for field in fields(PredictionResult))


@dataclass
class _Prepared:
    label: str
    model_input: np.ndarray | None
    image_format: str | None = None
    warnings: tuple[str, ...] = ()
    error: InputError | None = None


class Predictor:
    """Score mammograms with a verified mammo-edge ONNX model.

    Args:
        model: ``None`` for ``$MAMMO_EDGE_MODEL`` or the shipped default, an installed model
            name (``fp32``, ``int8``), a folder with a ``manifest.json``, or an ``.onnx`` path.
        device: ``auto`` (CUDA when onnxruntime offers it), ``cpu`` or ``cuda``.
        threads: onnxruntime intra-op threads; ``None`` for one per core.
        threshold: decision threshold in [0, 1]; ``None`` uses the model's own.
        batch_size: images per inference call.
        workers: decoding threads; ``None`` for ``min(4, cpu_count)``.
        max_pixels: the decompression-bomb limit per image.

    Raises:
        ModelError: the model is missing, altered, not a mammo-edge model, or the device
            cannot be used (:class:`~mammo_edge.errors.ProviderError`).

    Example::

        predictor = Predictor()
        result = predictor.predict("examples/mdb003.pgm")
        results = predictor.predict(["a.png", "b.dcm"])
    """

    def __init__(
        self,
        model: str | os.PathLike | None = None,
        *,
        device: str = "auto",
        threads: int | None = None,
        threshold: float | None = None,
        batch_size: int = 16,
        workers: int | None = None,
        max_pixels: int = MAX_PIXELS,
    ) -> None:
        if batch_size < 1:
            raise ModelError(f"batch_size must be at least 1, got {batch_size}")
        if workers is not None and workers < 1:
            raise ModelError(f"workers must be at least 1, got {workers}")
        self.model_file: ModelFile = resolve_model(model)
        model_bytes, self.model_sha256 = read_verified(self.model_file)
        self.sha256_verified = self.model_file.expected_sha256 is not None
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
        if threshold is None:
            threshold = self.metadata.threshold
        if not 0.0 <= threshold <= 1.0:
            raise ModelError(f"threshold must lie in [0, 1], got {threshold}")
        self.threshold = float(threshold)
        self.batch_size = batch_size
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

    def iter_predict(self, inputs: Iterable[ImageInput]) -> Iterator[PredictionResult]:
        """Score inputs lazily, yielding one result per input, in input order.

        Images are decoded ahead by the worker pool (at most ``2 * batch_size + workers``
        at a time) while the model scores the previous batch; results come out batch by
        batch, so a caller writing them as they arrive keeps everything finished so far.
        """
        labelled = (
            (f"<array {index}>" if isinstance(item, np.ndarray) else str(item), item)
            for index, item in enumerate(inputs)
        )
        read_ahead = 2 * self.batch_size + self.workers
        pool = ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="mammo-decode")
        pending: deque[Future[_Prepared]] = deque()

        def refill() -> None:
            while len(pending) < read_ahead:
                next_item = next(labelled, None)
                if next_item is None:
                    return
                pending.append(pool.submit(self._prepare, *next_item))

        chunk: list[_Prepared] = []
        scorable = 0
        try:
            refill()
            while pending:
                prepared = pending.popleft().result()
                refill()
                if prepared.error is not None and scorable == 0:
                    yield self._error_result(prepared)  # nothing to wait for: write it now
                    continue
                chunk.append(prepared)
                scorable += prepared.error is None
                if scorable == self.batch_size:
                    yield from self._score_chunk(chunk)
                    chunk, scorable = [], 0
            if chunk:
                yield from self._score_chunk(chunk)
        finally:
            for future in pending:
                future.cancel()
            pool.shutdown(wait=True, cancel_futures=True)

    def _prepare(self, label: str, item: ImageInput) -> _Prepared:
        """Decode and resize one input (runs in a worker thread; never raises)."""
        try:
            if isinstance(item, np.ndarray):
                decoded = image_from_array(item)
            else:
                decoded = load_image(Path(item), max_pixels=self.max_pixels)
            model_input = to_model_input(decoded.pixels, self.metadata.preprocess)
            return _Prepared(label, model_input, decoded.image_format, decoded.warnings)
        except InputError as error:
            return _Prepared(label, None, error=error)
        except MemoryError:
            error = InputError(ErrorCode.TOO_LARGE, "not enough memory to decode the image")
            return _Prepared(label, None, error=error)
        except Exception as error:  # one strange file must not stop a study
            message = f"decoding failed unexpectedly ({type(error).__name__}: {error})"
            return _Prepared(label, None, error=InputError(ErrorCode.CORRUPT, message))

    def _score_chunk(self, chunk: list[_Prepared]) -> Iterator[PredictionResult]:
        scorable = [prepared for prepared in chunk if prepared.error is None]
        probabilities: dict[int, float] = {}
        if scorable:
            batch = np.stack([prepared.model_input for prepared in scorable])
            try:
                scores = self.score_batch(batch)
            except Exception as error:  # onnxruntime errors are untyped
                for prepared in scorable:
                    prepared.error = InputError(
                        ErrorCode.INFERENCE_FAILED, f"onnxruntime failed on this batch: {error}"
                    )
            else:
                for prepared, score in zip(scorable, scores, strict=True):
                    if np.isfinite(score):
                        probabilities[id(prepared)] = float(score)
                    else:
                        prepared.error = InputError(
                            ErrorCode.INFERENCE_FAILED, f"the model returned {score}"
                        )
        for prepared in chunk:
            if prepared.error is not None:
                yield self._error_result(prepared)
            else:
                yield self._ok_result(prepared, probabilities[id(prepared)])

    def _base(self, prepared: _Prepared) -> dict:
        return {
            "path": prepared.label,
            "threshold": self.threshold,
            "model_name": self.model_name,
            "model_version": self.model_version,
            "model_sha256": self.model_sha256,
            "provider": self.provider,
            "image_format": prepared.image_format,
            "warnings": prepared.warnings,
        }

    def _ok_result(self, prepared: _Prepared, probability: float) -> PredictionResult:
        negative, positive = self.metadata.class_names
        label = positive if probability >= self.threshold else negative
        return PredictionResult(
            status=STATUS_OK, probability=probability, label=label, **self._base(prepared)
        )

    def _error_result(self, prepared: _Prepared) -> PredictionResult:
        error = prepared.error
        assert error is not None
        return PredictionResult(
            status=STATUS_ERROR,
            probability=None,
            label=None,
            error_code=error.code.value,
            error_message=error.message,
            **self._base(prepared),
        )
