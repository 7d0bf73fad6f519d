"""``--engine ray``: HTTP predictions scored by Ray Serve replicas.

The HTTP app is the same (:mod:`.http_app`); only where the model runs changes. The
service's process decodes and preprocesses each upload
(:func:`mammo_edge.images.pipeline.load_input`)
and sends the model input to a Ray Serve deployment of ``replicas`` replicas, each holding one
onnxruntime session. A replica gathers concurrent requests into one batch with
``@serve.batch`` (up to the model's batch size, waiting at most :data:`BATCH_WAIT_SECONDS`).

The model reaches the replicas as the Ray Data engine ships it
(:mod:`mammo_edge.engines.ray_engine`): the service reads the verified bytes once, puts them
in Ray's object store, and every replica builds its session with
:meth:`~mammo_edge.predictor.Predictor.from_model_bytes`, which refuses bytes whose SHA-256
differs from the one the service verified.

Ray is started locally (``num_cpus`` CPUs) and stopped with the service. The DICOM node
scores with the local engine either way.
"""

from __future__ import annotations

from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

from mammo_edge.images.pipeline import score_loaded
from mammo_edge.serve.batcher import Admission

#: Longest wait of a replica for more requests to fill a batch, in seconds.
BATCH_WAIT_SECONDS = 0.005
DEPLOYMENT_NAME = "mammo-edge"


def _deployment(max_batch_size: int):
    """The Ray Serve deployment class, its batch size fixed by the model."""
    from ray import serve

    @serve.deployment(name="ModelReplica")
    class ModelReplica:
        """One onnxruntime session over model bytes from the object store."""

        def __init__(self, model_refs: list, sha256: str, source: str, threshold_setting: dict):
            import ray

            from mammo_edge.predictor import Predictor

            self.predictor = Predictor.from_model_bytes(
                ray.get(model_refs[0]),
                sha256=sha256,
                source=source,
                **threshold_setting,
                threads=1,
                workers=1,
            )

        @serve.batch(max_batch_size=max_batch_size, batch_wait_timeout_s=BATCH_WAIT_SECONDS)
        async def score(self, items: list) -> list:
            scored = score_loaded(items, self.predictor.score_batch, self.predictor.head)
            return [self.predictor.record_alone(item) for item in scored]

        async def __call__(self, item):
            return await self.score(item)

    return ModelReplica


class RayBatcher(Admission):
    """What :class:`~mammo_edge.serve.batcher.Batcher` does, over Ray Serve replicas.

    Args:
        predictor: the service's verified model (its bytes are shipped, its preprocessing
            runs here).
        max_queue: requests admitted at once.
        replicas: Ray Serve replicas (one CPU each).
        num_cpus: CPUs of the local Ray instance; ``None``: all.
    """

    def __init__(self, predictor, max_queue: int, replicas: int, num_cpus: int | None) -> None:
        from mammo_edge.engines.ray_engine import require_ray, start_ray

        ray = require_ray()
        from ray import serve

        super().__init__(max_queue)
        self.predictor = predictor
        if not ray.is_initialized():
            start_ray(ray, None, num_cpus)
        model_ref = ray.put(predictor.read_model_bytes())
        deployment = _deployment(predictor.batch_size).options(
            num_replicas=replicas, ray_actor_options={"num_cpus": 1}
        )
        application = deployment.bind(
            [model_ref],  # in a list, so each replica gets the reference, not a copy
            predictor.model_sha256,
            str(predictor.model_file.path),
            predictor.threshold_setting,
        )
        serve.start(proxy_location="Disabled")  # the service's own uvicorn answers HTTP
        self._handle = serve.run(application, name=DEPLOYMENT_NAME, route_prefix=None)
        self._pool = ThreadPoolExecutor(max_workers=max_queue or 1, thread_name_prefix="mammo-ray")

    def submit(self, path: Path, label: str) -> Future:
        """Decode here, score on a replica; a future of the ``PredictionResult``."""

        def run():
            item = self.predictor.load(path, label)
            if not item.ok:
                return self.predictor.record_alone(item)
            return self._handle.remote(item).result()

        return self._pool.submit(run)

    def close(self) -> None:
        import ray
        from ray import serve

        self._pool.shutdown(wait=True)
        serve.shutdown()
        ray.shutdown()
