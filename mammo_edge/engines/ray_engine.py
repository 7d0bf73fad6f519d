"""Score many inputs with Ray Data: on a local Ray instance or across a cluster.

The dataflow (``mammo-edge predict ... --engine ray``; docs/ray.md)::

    paths ──► load tasks ─────────────────────► scoring actor pool ──► records, input order
              read (local path or URI through     one onnxruntime session per actor,
              a pyarrow filesystem), decode,      threads = the actor's CPUs, built from
              preprocess: pipeline.load_input     model bytes shipped with ray.put and
                                                  checked by SHA-256 in the actor

Both stages run :mod:`mammo_edge.images.pipeline`'s functions, the ones the local engine runs, so
the records are the same (same fields, error codes and order; probabilities equal up to
onnxruntime's batch-dependent rounding, below 1e-5).

Why the files are not read with ``ray.data.read_binary_files``: it drops missing paths or
fails the whole dataset on one unreadable file, and mammo-edge owes one record per input.
Here each load task reads its own files and turns any failure into an error record, so a bad
file is never a failed task or a lost batch. Local paths must be visible on every node (a
shared filesystem) when joining a cluster; object-store URIs (``s3://``, ``gs://``...) are
read by each task through pyarrow.

Without ``address`` a local Ray instance is started (``num_cpus`` of them) and shut down at
the end; with one, the engine joins that cluster. When Ray is already initialised in this
process (a notebook, tests), that instance is used and left running.
"""

from __future__ import annotations

import heapq
import logging
import math
import signal
import socket
import threading
import warnings
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from mammo_edge.engines import EngineBase
from mammo_edge.engines.ray_tasks import ScoringActor, load_batch
from mammo_edge.errors import ModelError
from mammo_edge.records.record import PredictionResult, record_from_json

# A run of fewer batches than actors leaves some of the pool idle, which Ray warns about on
# stderr; for a small run that is expected, not a problem to report.
warnings.filterwarnings(
    "ignore", message="The minimum number of concurrent actors", category=UserWarning
)

#: Logical CPUs a load task asks for: decoding a batch takes milliseconds and mostly waits
#: on the disk, so loads share the CPU left beside the actors.
LOAD_TASK_CPUS = 0.25


class RayEngineError(ModelError):
    """Ray cannot be used: not installed, cluster unreachable, or it failed to start.

    A :class:`~mammo_edge.errors.ModelError`, as a missing device is: nothing can be scored,
    so ``mammo-edge predict`` exits 1 with the message.
    """


def require_ray():
    """Import Ray Data, or raise ImportError saying how to install it."""
    try:
        import ray
        import ray.data  # noqa: F401
    except ImportError as error:
        raise ImportError(
            "--engine ray needs Ray Data: pip install 'mammo-edge[ray]' "
            f"(or pip install 'ray[data]'); {error}"
        ) from None
    return ray


@dataclass(frozen=True)
class ActorPlan:
    """How the CPUs of the Ray cluster are split between loading and scoring.

    Attributes:
        actors: scoring actors in the pool.
        actor_cpus: logical CPUs each actor reserves.
        threads: onnxruntime intra-op threads per actor (its whole CPUs, at least 1).
        load_cpus: logical CPUs each load task asks for.
    """

    actors: int
    actor_cpus: float
    threads: int
    load_cpus: float = LOAD_TASK_CPUS


def plan_actors(total_cpus: float, cpus_per_actor: int = 1) -> ActorPlan:
    """One actor per ``cpus_per_actor`` CPUs, leaving room for one load task to run.

    With 2 CPUs: two actors of 1 thread; with 1 CPU: one actor. Actors reserve slightly
    less than their threads (``(total - load_cpus) / actors``), so a load task can always be
    scheduled: a pool that took every CPU would starve the loads that feed it.
    """
    if total_cpus <= LOAD_TASK_CPUS:
        raise ModelError(f"the Ray cluster has {total_cpus} CPUs; the Ray engine needs at least 1")
    actors = max(1, math.floor(total_cpus / cpus_per_actor))
    actor_cpus = (total_cpus - LOAD_TASK_CPUS) / actors
    return ActorPlan(actors=actors, actor_cpus=actor_cpus, threads=cpus_per_actor)


class RayEngine(EngineBase):
    """Score paths with Ray Data, giving the records the local engine gives.

    Args:
        predictor: the loaded, verified model (its bytes, SHA-256, threshold, batch size,
            device and preprocessing are what the actors use).
        address: a Ray cluster to join (``auto``, ``ray://host:10001``); ``None`` starts a
            local instance (or uses the one already initialised in this process).
        num_cpus: CPUs of a local instance (``None``: all cores). Not with ``address``.
        cpus_per_actor: onnxruntime threads (and CPUs) of each scoring actor.

    Example::

        predictor = Predictor()  # the shipped default; any name or path works
        for result in RayEngine(predictor, num_cpus=4).iter_predict(expand_inputs(["scans/"])):
            print(result.path, result.probability)
    """

    name = "ray"
    options = ("address", "num_cpus", "cpus_per_actor")

    def __init__(
        self,
        predictor,
        *,
        address: str | None = None,
        num_cpus: int | None = None,
        cpus_per_actor: int = 1,
    ) -> None:
        if address is not None and num_cpus is not None:
            raise ValueError("num_cpus sizes a local Ray instance; a cluster has its own")
        if cpus_per_actor < 1:
            raise ValueError(f"cpus_per_actor must be at least 1, got {cpus_per_actor}")
        super().__init__(predictor)
        self.address = address
        self.num_cpus = num_cpus
        self.cpus_per_actor = cpus_per_actor
        self.plan: ActorPlan | None = None
        self._started_here = False

    @classmethod
    def unavailable(cls) -> str | None:
        try:
            require_ray()
        except ImportError as error:
            return str(error)
        return None

    def start(self) -> None:
        """Start the local Ray instance or join ``address``, unless Ray is already running.

        Called by :meth:`iter_predict` when needed; call it first to fail before anything
        is written (``mammo-edge predict`` does).

        Raises:
            RayEngineError: Ray is not installed, the cluster cannot be reached, or Ray
                could not start.
        """
        try:
            ray = require_ray()
        except ImportError as error:
            raise RayEngineError(str(error)) from None
        if ray.is_initialized():
            return
        if self.address is not None:
            _check_reachable(self.address)
        try:
            start_ray(ray, self.address, self.num_cpus)
        except Exception as error:  # Ray raises ConnectionError, RuntimeError, ValueError...
            where = f"join the Ray cluster at {self.address}" if self.address else "start Ray"
            raise RayEngineError(f"could not {where}: {error}") from None
        self._started_here = True

    def stop(self) -> None:
        """Shut down the Ray instance :meth:`start` started or joined (no-op otherwise)."""
        if self._started_here:
            import ray

            ray.shutdown()
            self._started_here = False

    def iter_records(self, inputs: Iterable[str]) -> Iterator[PredictionResult]:
        """Score file paths or URIs; one ungrouped record per input, in input order, streamed.

        Starts (and at the end stops) Ray when nothing has started it yet.

        Raises:
            RayEngineError: Ray cannot be started or joined.
            ModelError: the model bytes were changed since load, or an actor refused them.
        """
        paths = [str(path) for path in inputs]
        if not paths:
            return
        model_bytes = self.predictor.read_model_bytes()
        owns = not self._started_here
        self.start()
        owns = owns and self._started_here
        import ray

        try:
            yield from self._run(ray, paths, model_bytes)
        finally:
            if owns:
                self.stop()

    def iter_predict(self, paths: Iterable[str]) -> Iterator[PredictionResult]:
        """The records of ``paths`` with their exam fields (:meth:`iter_score`)."""
        return self.iter_score(paths)

    def _run(self, ray, paths: list[str], model_bytes: bytes) -> Iterator[PredictionResult]:
        import ray.data

        predictor = self.predictor
        self.plan = plan_actors(ray.cluster_resources().get("CPU", 0.0), self.cpus_per_actor)
        context = ray.data.DataContext.get_current()
        context.execution_options.preserve_order = True
        context.enable_progress_bars = False
        batch_size = predictor.batch_size
        items = [{"index": index, "path": path} for index, path in enumerate(paths)]
        # One block per batch, at most 4096 (the driver keeps a handle per block).
        blocks = max(1, min(math.ceil(len(items) / batch_size), 4096))
        dataset = ray.data.from_items(items, override_num_blocks=blocks)
        dataset = dataset.map_batches(
            load_batch,
            fn_kwargs={
                "config": predictor.metadata.preprocess,
                "max_pixels": predictor.max_pixels,
                "evidence": predictor.head is not None and predictor.head.needs_calcifications,
            },
            batch_size=batch_size,
            batch_format="numpy",
            num_cpus=self.plan.load_cpus,
        )
        model_ref = ray.put(model_bytes)
        actors = min(self.plan.actors, math.ceil(len(items) / batch_size))
        scoring = {
            "fn_constructor_kwargs": {
                "model_refs": [model_ref],  # in a list, so the actor gets the ref, not a copy
                "sha256": predictor.model_sha256,
                "source": str(predictor.model_file.path),
                "device": predictor.device,
                "threads": self.plan.threads,
                "threshold_setting": predictor.threshold_setting,
                "batch_size": batch_size,
            },
            "batch_size": batch_size,
            "batch_format": "numpy",
            "compute": ray.data.ActorPoolStrategy(size=actors),
            "num_cpus": self.plan.actor_cpus,
        }
        with warnings.catch_warnings():
            # An actor that refused the model must fail the run, not be restarted forever;
            # Ray 2.60 deprecates this way of saying so and offers no other yet.
            warnings.simplefilter("ignore", DeprecationWarning)
            try:
                dataset = dataset.map_batches(
                    ScoringActor, ray_remote_args_fn=_no_restarts, **scoring
                )
            except TypeError:  # a Ray without ray_remote_args_fn
                dataset = dataset.map_batches(ScoringActor, **scoring)
        # preserve_order keeps input order; the heap only guards it, holding nothing then.
        waiting: list[tuple[int, str]] = []
        expected = 0
        try:
            for batch in dataset.iter_batches(batch_size=None, batch_format="numpy"):
                for index, record in zip(batch["index"], batch["record"], strict=True):
                    heapq.heappush(waiting, (int(index), str(record)))
                while waiting and waiting[0][0] == expected:
                    _, record = heapq.heappop(waiting)
                    yield record_from_json(record)
                    expected += 1
        except Exception as error:
            if _is_model_refusal(error):
                raise ModelError(f"a Ray scoring actor refused the model: {error}") from None
            raise
        if expected != len(paths):
            raise RuntimeError(f"Ray returned {expected} records for {len(paths)} inputs")


def start_ray(ray, address: str | None, num_cpus: int | None) -> None:
    """Join ``address``, or start a quiet local instance of ``num_cpus`` CPUs.

    ``ray.init`` replaces the process's SIGTERM handler with one that calls ``sys.exit``;
    the one in force before (``mammo-edge predict``'s, which keeps every result and closes
    the output) is put back.
    """
    # Ray's notices (start-up, progress, execution plans) would drown the results on stderr.
    for name in ("ray", "ray.data", "ray.serve"):
        logging.getLogger(name).setLevel(logging.ERROR)
    in_main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.getsignal(signal.SIGTERM) if in_main_thread else None
    try:
        if address is not None:
            ray.init(address=address, logging_level=logging.ERROR, log_to_driver=False)
        else:
            ray.init(
                num_cpus=num_cpus,
                include_dashboard=False,
                logging_level=logging.ERROR,
                log_to_driver=False,
            )
    finally:
        if in_main_thread and previous is not None:
            signal.signal(signal.SIGTERM, previous)


def _check_reachable(address: str) -> None:
    """Fail fast on ``host:port`` (or ``ray://host:port``) that nothing listens on.

    ``ray.init`` would retry an unreachable address for minutes; ``auto`` and other forms
    are left to Ray.
    """
    target = address.split("://", 1)[-1]
    host, _, port = target.rpartition(":")
    if not host or not port.isdigit():
        return
    try:
        socket.create_connection((host, int(port)), timeout=5).close()
    except OSError as error:
        raise RayEngineError(
            f"cannot reach the Ray cluster at {address} ({error.strerror or error}); check "
            "that `ray start --head` runs there and that the port is open"
        ) from None


def _no_restarts() -> dict:
    return {"max_restarts": 0}


def _is_model_refusal(error: BaseException) -> bool:
    text = str(error)
    return "failed their integrity check" in text or "ModelError" in text


ENGINE = RayEngine
