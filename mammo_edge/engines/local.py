"""The local engine: decode ahead in a thread pool, score in batches, in this process.

:func:`iter_loaded_batches` is the one batching loop of mammo-edge: ``predict``,
``evaluate``, ``explain`` and ``report`` all read their inputs through it. Decoding and
resizing run in a thread pool (OpenCV, numpy and file reads release the GIL) that stays a
bounded number of images ahead of inference, so a folder of large PGMs keeps every core
busy while results come back in input order.
"""

from __future__ import annotations

import contextlib
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor

from mammo_edge.engines import EngineBase
from mammo_edge.images.pipeline import ImageInput, LoadedImage, input_label, score_loaded
from mammo_edge.records.record import PredictionResult, build_record

#: ``(position in the input, loaded item)``: what the batching loop hands on.
Numbered = tuple[int, LoadedImage]


def iter_loaded_batches(
    inputs: Iterable[ImageInput],
    load: Callable[[ImageInput, str], LoadedImage],
    *,
    batch_size: int,
    workers: int,
) -> Iterator[list[Numbered]]:
    """Load inputs ahead in ``workers`` threads; hand them on in input order, in batches.

    Args:
        inputs: paths, URIs or image arrays, consumed lazily.
        load: turns one input and its record label into a :class:`LoadedImage` (never
            raises for a bad input), e.g. :meth:`~mammo_edge.model.onnx_model.Model.load`.
        batch_size: loaded items per batch.
        workers: decoding threads; at most ``2 * batch_size + workers`` inputs are held.

    Yields:
        Lists of ``(index, item)`` in input order. Each holds at most ``batch_size`` items
        that loaded, with the failed ones between them; a failed item with nothing waiting
        before it comes alone at once, so its error record need not wait for a batch.
    """
    labelled = ((index, input_label(item, index), item) for index, item in enumerate(inputs))
    read_ahead = 2 * batch_size + workers
    pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="mammo-decode")
    pending: deque[tuple[int, Future[LoadedImage]]] = deque()

    def refill() -> None:
        while len(pending) < read_ahead:
            next_item = next(labelled, None)
            if next_item is None:
                return
            index, label, item = next_item
            pending.append((index, pool.submit(load, item, label)))

    chunk: list[Numbered] = []
    scorable = 0
    try:
        refill()
        while pending:
            index, future = pending.popleft()
            loaded = future.result()
            refill()
            if not loaded.ok and scorable == 0:
                yield [(index, loaded)]  # nothing waits before it: its record goes out now
                continue
            chunk.append((index, loaded))
            scorable += loaded.ok
            if scorable == batch_size:
                yield chunk
                chunk, scorable = [], 0
        if chunk:
            yield chunk
    finally:
        for _, future in pending:
            future.cancel()
        pool.shutdown(wait=True, cancel_futures=True)


class LocalEngine(EngineBase):
    """Score in this process: :func:`iter_loaded_batches`, then onnxruntime, batch by batch.

    Args:
        predictor: the model and the run's settings.
        streams: batches scored at once on the predictor's session (onnxruntime sessions
            are thread-safe); ``None`` for the predictor's ``streams``. Records come out in
            input order whatever the number.

    Example::

        predictor = Predictor()
        with LocalEngine(predictor) as engine:
            for record in engine.iter_score(["a.dcm", "b.dcm"]):
                print(record.path, record.probability)
    """

    name = "local"
    options = ("streams",)

    def __init__(self, predictor, *, streams: int | None = None) -> None:
        super().__init__(predictor)
        if streams is not None and streams < 1:
            raise ValueError(f"streams must be at least 1, got {streams}")
        self.streams = streams or getattr(predictor, "streams", 1)

    def iter_records(self, inputs: Iterable[ImageInput]) -> Iterator[PredictionResult]:
        predictor = self.predictor
        context = predictor.record_context
        batches = iter_loaded_batches(
            inputs, predictor.load, batch_size=predictor.batch_size, workers=predictor.workers
        )
        scorers = ThreadPoolExecutor(self.streams, thread_name_prefix="mammo-score")
        scoring: deque[Future[list[LoadedImage]]] = deque()
        try:
            with _opencv_threads(1 if predictor.workers > 1 else None):
                for batch in batches:
                    items = [item for _, item in batch]
                    scoring.append(
                        scorers.submit(score_loaded, items, predictor.score_batch, predictor.head)
                    )
                    while scoring and (len(scoring) >= self.streams or scoring[0].done()):
                        for scored in scoring.popleft().result():
                            yield build_record(scored, context)
                while scoring:
                    for scored in scoring.popleft().result():
                        yield build_record(scored, context)
        finally:
            batches.close()
            for future in scoring:
                future.cancel()
            scorers.shutdown(wait=True, cancel_futures=True)


@contextlib.contextmanager
def _opencv_threads(count: int | None):
    """OpenCV's own thread pool set to ``count`` for the run, then restored.

    Decoding already runs in several worker threads beside onnxruntime's; OpenCV threads
    inside each would only compete for the same cores (measured: 0.25 s less CPU per 128
    MIAS images with identical records; reports/benchmarks/preprocess_speed.md).
    """
    if count is None:
        yield
        return
    import cv2

    previous = cv2.getNumThreads()
    cv2.setNumThreads(count)
    try:
        yield
    finally:
        cv2.setNumThreads(previous)


ENGINE = LocalEngine
