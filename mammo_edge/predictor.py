"""The Predictor: a :class:`~mammo_edge.model.onnx_model.Model` and the settings of one scoring run.

The model object owns the file, the session and the contract; the Predictor adds what a
run chooses (threshold or operating point, batch size, decoding threads, exam grouping)
and scores through an engine (:mod:`mammo_edge.engines`; the local one unless told).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator

import numpy as np

from mammo_edge.errors import ModelError
from mammo_edge.exams import GROUP_BY_CHOICES, ExamScoring, exam_fields, group_records
from mammo_edge.images.decode import MAX_PIXELS
from mammo_edge.images.pipeline import ImageInput, LoadedImage
from mammo_edge.model.metadata import MetadataError
from mammo_edge.model.onnx_model import Model
from mammo_edge.model.providers import CPU_PROVIDER, on_gpu
from mammo_edge.records.record import (  # noqa: F401  (PredictionResult and its fields were defined here)
    RESULT_FIELDS,
    STATUS_ERROR,
    STATUS_OK,
    PredictionResult,
    RecordContext,
    build_record,
)

#: The default batch holds about this many input pixels: 16 images of the seed's 128x128,
#: 2 of lite0's 512x256 (measured end to end on 2 cores: lite0 at batch 16 was slower and
#: peaked at 823 MB, against 206 MB at batch 1; reports/benchmarks).
DEFAULT_BATCH_PIXELS = 16 * 128 * 128


#: Inference calls in flight at once on a multi-core CPU, each on ``cores // 2`` threads.
#: On 2 cores, one thread per call and two calls at once beat one call on two threads,
#: most of all beside decoding, which stalls a two-thread call on its slower thread
#: (lite0-pair FP32 end to end in-process: 29-36 images/s one call on 2 threads, 37-39 two
#: calls on 1 thread each; INT8 57-69 and 71-72). reports/benchmarks/overlap-*.
CPU_STREAMS = 2


#: On a GPU one call at a time scores a large batch: 16 of lite0's 512x256 inputs, 64 (the
#: cap) of the seed's 128x128. Not measured on a GPU yet: `mammo-edge bench --device cuda`
#: searches the batch on the device and reports the best.
GPU_BATCH_PIXELS = 16 * 512 * 256
GPU_MAX_BATCH = 64


#: The settings of :meth:`Predictor.from_model_bytes` that open the model's bytes.
BYTES_OPENING = frozenset({"source", "device", "threads"})


def default_batch_size(preprocess, streams: int = 1, provider: str = CPU_PROVIDER) -> int:
    """Images per inference call when none is asked for, for the provider that runs it.

    On CPU, sized from the model's input and shared among the ``streams`` calls in flight,
    so memory stays that of one batch; on a GPU provider
    (:func:`~mammo_edge.model.providers.on_gpu`)
    :data:`GPU_BATCH_PIXELS`, at most :data:`GPU_MAX_BATCH` images.
    """
    image_pixels = preprocess.height * preprocess.width
    if on_gpu(provider):
        return max(1, min(GPU_MAX_BATCH, GPU_BATCH_PIXELS // image_pixels))
    return max(1, min(16, DEFAULT_BATCH_PIXELS // streams // image_pixels))


def default_streams(device: str, threads: int | None) -> int:
    """Calls in flight when none is asked for: :data:`CPU_STREAMS` on a multi-core CPU when
    the threads are left to mammo-edge; one on a GPU or with ``threads`` given."""
    from mammo_edge.model.providers import available_providers

    cores = os.cpu_count() or 1
    on_gpu = device == "cuda" or (
        device == "auto" and "CUDAExecutionProvider" in available_providers()
    )
    return CPU_STREAMS if threads is None and cores >= 2 and not on_gpu else 1


class Predictor:
    """Score mammograms with a verified mammo-edge ONNX model.

    Args:
        model: ``None`` for ``$MAMMO_EDGE_MODEL`` or the shipped default, an installed model
            name (``seed``, ``seed-int8``, ...), a folder with a ``manifest.json``, an
            ``.onnx`` path, or a :class:`~mammo_edge.model.onnx_model.Model` already open.
        device: ``auto`` (CUDA when onnxruntime offers it), ``cpu`` or ``cuda``.
        threads: onnxruntime intra-op threads; ``None`` for one per core.
        threshold: decision threshold in [0, 1]; ``None`` uses the model's own.
        batch_size: images per inference call.
        workers: decoding threads; ``None`` for ``min(4, cpu_count)``.
        max_pixels: the decompression-bomb limit per image.
        group_by: ``auto`` adds each record's exam fields (both breasts, per-breast and
            per-exam probability; :mod:`mammo_edge.exams`), ``none`` leaves them empty.
        operating_point: a named threshold of the model (``triage``, ``balanced``; see
            ``mammo-edge info``); ``None`` uses the model's default. Not with ``threshold``.
        streams: inference calls the local engine keeps in flight, each with
            ``cores // streams`` onnxruntime threads when ``threads`` is ``None``;
            ``None`` for :func:`default_streams`. Give 1 when calling :meth:`score_batch`
            from one thread yourself (``explain`` and ``serve`` do).

    Raises:
        ModelError: the model is missing, altered, not a mammo-edge model, the device
            cannot be used (:class:`~mammo_edge.errors.ProviderError`), or a setting is
            out of range.

    Example::

        predictor = Predictor()
        result = predictor.predict("examples/mdb003.pgm")
        results = predictor.predict(["a.png", "b.dcm"])
        for result in predictor.iter_predict_paths(["scans/", "*.dcm", "@todo.txt"]):
            print(result.path, result.probability)
    """

    def __init__(
        self,
        model: str | os.PathLike | Model | None = None,
        *,
        device: str = "auto",
        threads: int | None = None,
        threshold: float | None = None,
        batch_size: int | None = None,
        workers: int | None = None,
        max_pixels: int = MAX_PIXELS,
        group_by: str = "auto",
        operating_point: str | None = None,
        streams: int | None = None,
    ) -> None:
        _check_settings(group_by, batch_size, workers, threshold, operating_point)
        if streams is not None and streams < 1:
            raise ModelError(f"streams must be at least 1, got {streams}")
        if isinstance(model, Model):  # opened already: its threads are what they are
            self.streams = streams or (1 if model.threads is not None else CPU_STREAMS)
        else:
            self.streams = streams or default_streams(device, threads)
            if threads is None and self.streams > 1:
                threads = max(1, (os.cpu_count() or 1) // self.streams)
            model = Model(model, device=device, threads=threads)
        self.model = model
        self.group_by = group_by
        #: The run's choice as given, for a copy of this predictor elsewhere (a Ray actor).
        self.threshold_setting = {"threshold": threshold, "operating_point": operating_point}
        self.threshold, self.operating_point = self._threshold(threshold, operating_point)
        #: An image scored alone is labelled at the model's single-view point of that name.
        self.single_view_threshold, _ = self._threshold(
            threshold, operating_point, single_view=True
        )
        preprocess = model.metadata.preprocess
        self.batch_size = (
            1
            if model.fixed_batch
            else batch_size or default_batch_size(preprocess, self.streams, model.provider)
        )
        self.workers = workers or min(4, os.cpu_count() or 1)
        self.max_pixels = max_pixels

    @classmethod
    def from_model_bytes(cls, model_bytes: bytes, *, sha256: str, **settings) -> Predictor:
        """A Predictor over model bytes already in memory (e.g. shipped to a Ray actor).

        Args:
            model_bytes: the ONNX file content.
            sha256: the SHA-256 (hex) the bytes must have; they are refused otherwise.
            settings: ``source`` (where the bytes came from, for messages and
                ``model_file.path``), ``device`` and ``threads`` as for
                :meth:`Model.from_bytes <mammo_edge.model.onnx_model.Model.from_bytes>`; the rest
                as for
                the constructor.

        Raises:
            ModelError: the bytes' SHA-256 differs from ``sha256``, or as for the constructor.
        """
        opening = {key: settings.pop(key) for key in BYTES_OPENING & settings.keys()}
        return cls(Model.from_bytes(model_bytes, sha256=sha256, **opening), **settings)

    def _threshold(
        self, threshold: float | None, operating_point: str | None, single_view: bool = False
    ):
        """The run's threshold and what it is called (a named point or a custom value)."""
        if threshold is not None:
            return float(threshold), "custom threshold"
        try:
            threshold, name = self.model.metadata.operating_point(
                operating_point, single_view=single_view
            )
        except MetadataError as error:
            raise ModelError(str(error)) from error
        if not 0.0 <= threshold <= 1.0:
            raise ModelError(f"threshold must lie in [0, 1], got {threshold}")
        return float(threshold), name

    # --- the model's facts, under the names the Predictor has always had ---------------

    @property
    def model_file(self):
        return self.model.file

    @property
    def model_sha256(self) -> str:
        return self.model.sha256

    @property
    def sha256_verified(self) -> bool:
        return self.model.verified

    @property
    def session(self):
        return self.model.session

    @property
    def provider(self) -> str:
        return self.model.provider

    @property
    def device(self) -> str:
        return self.model.device

    @property
    def threads(self) -> int | None:
        return self.model.threads

    @property
    def metadata(self):
        return self.model.metadata

    @property
    def head(self):
        return self.model.head

    @property
    def pair_head(self):
        return self.model.pair_head

    @property
    def model_name(self) -> str:
        return self.model.name

    @property
    def model_version(self) -> str:
        return self.model.version

    @property
    def output_names(self) -> list[str]:
        return self.model.output_names

    def read_model_bytes(self) -> bytes:
        """The model file's bytes, checked to be the ones loaded (:meth:`Model.read_bytes`)."""
        return self.model.read_bytes()

    def score_batch(self, batch: np.ndarray) -> np.ndarray:
        """``(N,)`` float64 probabilities of ``(N, height, width, 1)`` float32 model input."""
        return self.model.score(batch)

    def score_batch_with(self, batch: np.ndarray, output: str) -> tuple[np.ndarray, np.ndarray]:
        """Probabilities as :meth:`score_batch`, and the output ``output`` of the same run."""
        return self.model.score(batch, (output,))

    def load(self, item: ImageInput, label: str, keep_pixels: bool = False) -> LoadedImage:
        """Decode and preprocess one input for this model (thread-safe; never raises)."""
        return self.model.load(item, label, max_pixels=self.max_pixels, keep_pixels=keep_pixels)

    # --- the run ---------------------------------------------------------------------------

    @property
    def record_context(self) -> RecordContext:
        """What every record of this predictor carries (threshold, model identity, provider)."""
        negative, positive = self.metadata.class_names
        # Every image is scored alone first; grouping weighs it against the other breast.
        return RecordContext(
            threshold=self.single_view_threshold,
            class_names=(negative, positive),
            model_name=self.model_name,
            model_version=self.model_version,
            model_sha256=self.model_sha256,
            provider=self.provider,
            operating_point=self.operating_point,
        )

    @property
    def exam_scoring(self) -> ExamScoring:
        """How this run scores an image with and without the other breast: the model's
        heads and the run's paired and single-view thresholds (:mod:`mammo_edge.exams`)."""
        return ExamScoring(
            pair_head=self.pair_head,
            single_head=self.head,
            paired_threshold=self.threshold,
            paired_point=self.operating_point,
            single_threshold=self.single_view_threshold,
            single_point=self.operating_point,
            class_names=self.metadata.class_names,
        )

    def record_alone(self, item: LoadedImage) -> PredictionResult:
        """The record of one image scored on its own (an HTTP upload): single-view head,
        point and ``view_group`` (:func:`~mammo_edge.exams.exam_fields` of one image)."""
        return exam_fields([build_record(item, self.record_context)], self.exam_scoring)[0]

    def group(self, records: Iterable[PredictionResult]) -> Iterator[PredictionResult]:
        """The records with their exam fields (:func:`~mammo_edge.exams.group_records`
        with :attr:`exam_scoring`); with ``group_by="none"`` each image stands alone."""
        if self.group_by == "none":
            return (exam_fields([record], self.exam_scoring)[0] for record in records)
        return group_records(records, self.exam_scoring)

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
                :func:`mammo_edge.images.inputs.iter_inputs` (folders recursively, globs sorted,
                ``@list.txt`` files line by line; a missing path becomes a NOT_FOUND record).

        Yields:
            One :class:`PredictionResult` per expanded file, in expansion order, streamed:
            folders are walked lazily, so the first results arrive before a large archive
            has been listed.
        """
        from mammo_edge.images.inputs import iter_inputs

        if isinstance(arguments, (str, os.PathLike)):
            arguments = [arguments]
        return self.iter_predict(iter_inputs(arguments))

    def iter_predict(self, inputs: Iterable[ImageInput]) -> Iterator[PredictionResult]:
        """Score inputs lazily with the local engine: one result per input, in input order.

        Each input is an exact file path (or URI) or an image array; to expand folders,
        globs and list files use :meth:`iter_predict_paths`. With ``group_by="auto"`` a
        record may wait (at most :data:`~mammo_edge.exams.GROUP_WINDOW` inputs) for the
        other images of its exam, so that it carries their per-breast/per-exam values.
        """
        from mammo_edge.engines.local import LocalEngine

        return LocalEngine(self).iter_score(inputs)


def _check_settings(
    group_by: str,
    batch_size: int | None,
    workers: int | None,
    threshold: float | None,
    operating_point: str | None,
) -> None:
    """Refuse settings out of range before the model is opened."""
    if group_by not in GROUP_BY_CHOICES:
        raise ModelError(f"group_by must be one of {GROUP_BY_CHOICES}, got {group_by!r}")
    if batch_size is not None and batch_size < 1:
        raise ModelError(f"batch_size must be at least 1, got {batch_size}")
    if workers is not None and workers < 1:
        raise ModelError(f"workers must be at least 1, got {workers}")
    if threshold is not None and operating_point is not None:
        raise ModelError("give a threshold or an operating point, not both")
    if threshold is not None and not 0.0 <= threshold <= 1.0:
        raise ModelError(f"threshold must lie in [0, 1], got {threshold}")
