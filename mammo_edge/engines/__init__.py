"""Engines: what runs the per-image steps of :mod:`mammo_edge.images.pipeline` over many inputs.

Every verb that scores (``predict``, ``evaluate``, ``explain``, ``report``) picks an engine by
name from this registry; each engine is one module in this package that defines
``ENGINE``, a class following :class:`Engine`:

* ``local`` (:mod:`.local`): a decoding thread pool beside onnxruntime in this process; the
  one batching loop;
* ``ray`` (:mod:`.ray_engine`): Ray Data load tasks and a pool of scoring actors, on a
  local Ray instance or a cluster.

To add an engine, add one module here with ``ENGINE = YourEngine`` (subclass
:class:`EngineBase` and write ``iter_records``); ``--engine NAME`` finds it.
"""

from __future__ import annotations

import pkgutil
from collections.abc import Iterable, Iterator
from importlib import import_module
from typing import TYPE_CHECKING, ClassVar, Protocol

from mammo_edge.errors import ModelError

if TYPE_CHECKING:  # the predictor is passed in, never imported: predictor -> engines
    from mammo_edge.images.pipeline import ImageInput
    from mammo_edge.records.record import PredictionResult

#: The engine used when none is named.
DEFAULT_ENGINE = "local"


class Engine(Protocol):
    """What a verb needs of an engine: start, one record per input in input order, stop."""

    name: ClassVar[str]
    #: Keyword options the engine takes besides the predictor (e.g. ``address``).
    options: ClassVar[tuple[str, ...]]

    def start(self) -> None:
        """Acquire what the run needs (a cluster...); fail here, before outputs are opened."""

    def iter_score(self, inputs: Iterable[ImageInput]) -> Iterator[PredictionResult]:
        """One record per input, in input order, streamed (exam fields filled)."""

    def stop(self) -> None:
        """Release what :meth:`start` acquired."""


class EngineBase:
    """Shared behaviour: no-op start/stop, exam grouping, use as a context manager.

    Args:
        predictor: the loaded model and the run's settings (threshold, batch size,
            workers, grouping); see :class:`~mammo_edge.predictor.Predictor`.
    """

    name: ClassVar[str] = "base"
    options: ClassVar[tuple[str, ...]] = ()

    def __init__(self, predictor) -> None:
        self.predictor = predictor

    @classmethod
    def unavailable(cls) -> str | None:
        """Why this engine cannot run here (e.g. its package is missing), or ``None``."""
        return None

    def start(self) -> None:
        return None

    def stop(self) -> None:
        return None

    def iter_records(self, inputs: Iterable[ImageInput]) -> Iterator[PredictionResult]:
        """One ungrouped record per input, in input order: what each engine writes."""
        raise NotImplementedError

    def iter_score(self, inputs: Iterable[ImageInput]) -> Iterator[PredictionResult]:
        """:meth:`iter_records`, with the exam fields of the predictor's grouping added."""
        records = self.iter_records(inputs)
        return _closing(self.predictor.group(records), records)

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self.stop()


def engine_names() -> list[str]:
    """Names of the engines found in this package, the default first."""
    names = sorted(_engine_modules())
    return sorted(names, key=lambda name: name != DEFAULT_ENGINE)


def engine_class(name: str) -> type:
    """The engine class registered as ``name``.

    Raises:
        ModelError: no engine has that name (the message lists those that exist).
    """
    modules = _engine_modules()
    if name not in modules:
        raise ModelError(f"no engine named {name!r}; choose one of {', '.join(engine_names())}")
    return import_module(modules[name]).ENGINE


def create_engine(name: str, predictor, **options) -> Engine:
    """The engine ``name`` over ``predictor``; ``options`` the engine takes (``None`` = unset).

    Raises:
        ModelError: no such engine, or an option given that the engine does not take.
    """
    cls = engine_class(name)
    given = {key: value for key, value in options.items() if value is not None}
    foreign = sorted(set(given) - set(cls.options))
    if foreign:
        takers = [
            other for other in engine_names() if set(foreign) <= set(engine_class(other).options)
        ]
        hint = f"; they need --engine {' or '.join(takers)}" if takers else ""
        shown = ", ".join("--" + key.replace("_", "-") for key in foreign)
        raise ModelError(f"the {name} engine does not take {shown}{hint}")
    return cls(predictor, **given)


def _engine_modules() -> dict[str, str]:
    """``{engine name: module}`` for every module of this package that defines ``ENGINE``.

    Names are read from the module without importing heavy dependencies: an engine module
    imports its framework (Ray...) only when it runs.
    """
    found = {}
    for info in pkgutil.iter_modules(__path__):
        module_name = f"{__name__}.{info.name}"
        engine = getattr(import_module(module_name), "ENGINE", None)
        if engine is not None:
            found[engine.name] = module_name
    return found


def _closing(outer: Iterator, inner: Iterator) -> Iterator:
    """Iterate ``outer``; closing it (or finishing) closes ``inner`` (its workers)."""
    try:
        yield from outer
    finally:
        inner.close()
