"""HTTP requests gathered into model batches, with a bounded queue.

Each request's image is decoded and preprocessed in a thread pool
(:func:`mammo_edge.images.pipeline.load_input`, as ``predict`` does); one scoring thread takes
what has loaded, up to the predictor's batch size, scores it in one onnxruntime call
(:func:`~mammo_edge.images.pipeline.score_loaded`) and answers each request with its
:class:`~mammo_edge.predictor.PredictionResult`. Concurrent clients therefore share
batches the way ``predict``'s images do.

At most ``max_queue`` requests are admitted at once (decoding, waiting or being scored);
the next is refused at once (the HTTP layer answers 503) instead of piling up memory.
"""

from __future__ import annotations

import queue
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

from mammo_edge.images.pipeline import LoadedImage, score_loaded

#: How long the scoring thread waits for more loaded images to fill a batch, in seconds.
GATHER_SECONDS = 0.002


class Admission:
    """At most ``max_queue`` requests admitted at once; the HTTP layer answers 503 beyond.

    The base of both scorers the app can use (:class:`Batcher`, and
    :class:`~mammo_edge.serve.ray_scorer.RayBatcher`).
    """

    def __init__(self, max_queue: int) -> None:
        self.max_queue = max_queue
        self._admitted = 0
        self._lock = threading.Lock()

    @property
    def depth(self) -> int:
        """Requests admitted and not yet answered."""
        with self._lock:
            return self._admitted

    def try_admit(self) -> bool:
        """Take a place in the queue; False when it is full."""
        with self._lock:
            if self._admitted >= self.max_queue:
                return False
            self._admitted += 1
            return True

    def release(self) -> None:
        """Give back a place taken by :meth:`try_admit`."""
        with self._lock:
            self._admitted -= 1


class Batcher(Admission):
    """Decode in a pool, score in batches, answer through futures.

    Args:
        predictor: a :class:`~mammo_edge.predictor.Predictor` (its session, preprocessing,
            batch size, workers and threshold are used).
        max_queue: requests admitted at once.
    """

    def __init__(self, predictor, max_queue: int) -> None:
        super().__init__(max_queue)
        self.predictor = predictor
        self._loaded: queue.Queue[tuple[LoadedImage, Future] | None] = queue.Queue()
        self._pool = ThreadPoolExecutor(
            max_workers=predictor.workers, thread_name_prefix="mammo-http-decode"
        )
        self._thread = threading.Thread(
            target=self._score_loop, name="mammo-http-score", daemon=True
        )
        self._thread.start()

    def submit(self, path: Path, label: str) -> Future:
        """Score the image file at ``path`` (its record's ``path`` is ``label``).

        Returns:
            a future of the :class:`~mammo_edge.predictor.PredictionResult`; an unusable
            image resolves to an error record, never to an exception.
        """
        answer: Future = Future()

        def load() -> None:
            try:
                item = self.predictor.load(path, label)
            except BaseException as error:  # load_input never raises for bad input
                answer.set_exception(error)
                return
            if item.ok:
                self._loaded.put((item, answer))
            else:
                answer.set_result(self.predictor.record_alone(item))

        self._pool.submit(load)
        return answer

    def close(self) -> None:
        """Finish what was admitted, then stop the threads."""
        self._pool.shutdown(wait=True)
        self._loaded.put(None)
        self._thread.join(10)

    def _score_loop(self) -> None:
        batch_size = self.predictor.batch_size
        while True:
            first = self._loaded.get()
            if first is None:
                return
            batch = [first]
            while len(batch) < batch_size:
                try:
                    entry = self._loaded.get(timeout=GATHER_SECONDS)
                except queue.Empty:
                    break
                if entry is None:
                    self._loaded.put(None)  # stop after this batch
                    break
                batch.append(entry)
            try:
                scored = score_loaded(
                    [item for item, _ in batch], self.predictor.score_batch, self.predictor.head
                )
                for item, (_, answer) in zip(scored, batch, strict=True):
                    answer.set_result(self.predictor.record_alone(item))
            except BaseException as error:  # never leave a request waiting forever
                for _, answer in batch:
                    if not answer.done():
                        answer.set_exception(error)
