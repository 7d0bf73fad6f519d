"""One bench run: for each model on each device, the model alone and end to end, same run.

For every (model, device) pair, :func:`bench_model` opens the model as ``mammo-edge
predict`` would (its threads, inference streams and default batch for that device),
screens the files, searches the batch over a few sizes on the model alone, then measures
in interleaved rounds: the model alone at that batch, end to end at that batch, batch-1
latency, and a cold start in a fresh process; then one fresh ``predict`` over the files
for peak RSS. Interleaving makes a busy machine slow both figures of a ratio alike.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path

from mammo_edge.bench.end_to_end import ScreenedInputs, end_to_end_rate, screen_inputs
from mammo_edge.bench.machine import MachineFacts, machine_facts
from mammo_edge.bench.model_alone import (
    batch1_latency,
    candidate_batches,
    search_best_batch,
    timed_pass,
)
from mammo_edge.bench.process import cold_start, peak_rss
from mammo_edge.bench.timing import Spread, spread
from mammo_edge.errors import ModelError

#: Images in one four-view screening study (left and right, CC and MLO).
VIEWS_PER_STUDY = 4
#: Byte strings of operators that only a quantised ONNX graph holds (QDQ or QOperator).
_QUANTISED_OPS = (b"QuantizeLinear", b"QLinearConv", b"MatMulInteger", b"ConvInteger")

#: Called with a short description of each step as it starts (progress bars, logs).
Progress = Callable[[str], None]


class BenchError(ModelError):
    """A bench run cannot measure what it was asked to (no file loads, a child failed)."""


@dataclass(frozen=True)
class BenchSettings:
    """How much a run measures.

    Attributes:
        rounds: interleaved rounds; each figure is the median over them.
        images: images of the built-in set, or at most this many files of the folder.
        folder: the user's images; ``None`` for the built-in synthetic set.
    """

    rounds: int = 3
    images: int = 48
    folder: Path | None = None

    def __post_init__(self) -> None:
        if self.rounds < 1 or self.images < 1:
            raise ValueError("rounds and images must be at least 1")


@dataclass(frozen=True)
class BenchRow:
    """One model on one device: the figures ``--json`` and ``--csv`` write, in this order.

    Attributes:
        model: the model as named (installed name or path); sha256 its file's digest.
        device: ``cpu``, ``cuda`` or ``tensorrt``; provider: the provider that ran.
        precision: ``INT8`` when the graph holds quantised operators, else ``FP32``.
        batch: images per call, chosen by the search (:func:`~.model_alone.choose_batch`);
            used end to end too.
        threads: onnxruntime intra-op threads per call (``None``: onnxruntime's default).
        streams: inference calls in flight at once.
        model_alone_images_per_s: ``session.run`` on preprocessed input at ``batch``.
        end_to_end_images_per_s: files in, records out, at ``batch`` (steady state).
        end_to_end_share: end to end / model alone, per round.
        latency_ms_p50, latency_ms_p95: one batch-1 call at a time.
        peak_rss_mb: a fresh ``mammo-edge predict`` over the timed files.
        cold_start_s: a fresh ``mammo-edge predict`` of one image, wall time.
        studies_per_hour: end to end x 3600 / 4 views.
    """

    model: str
    sha256: str
    device: str
    provider: str
    precision: str
    batch: int
    threads: int | None
    streams: int
    model_alone_images_per_s: float
    end_to_end_images_per_s: float
    end_to_end_share: float
    latency_ms_p50: float
    latency_ms_p95: float
    peak_rss_mb: float
    cold_start_s: float
    studies_per_hour: float


#: The row's field names, in order (the JSON keys and CSV columns).
ROW_FIELDS = tuple(item.name for item in fields(BenchRow))


@dataclass
class BenchResult:
    """A row and what the table says beside it.

    Attributes:
        row: the figures (medians over the rounds).
        spreads: row field -> :class:`Spread` over the rounds, for the measured figures.
        batch_rates: batch -> model-alone images/s in the search.
        predict_batch: the batch ``mammo-edge predict`` takes by default here.
        timed: files timed; errors: the files that failed, by error code.
    """

    row: BenchRow
    spreads: dict[str, Spread]
    batch_rates: dict[int, float]
    predict_batch: int
    timed: int
    errors: dict[str, int] = field(default_factory=dict)


@dataclass
class BenchReport:
    """Everything a run measured: the machine, one result per (model, device), the images."""

    machine: MachineFacts
    results: list[BenchResult]
    images: str
    settings: BenchSettings

    @property
    def rows(self) -> list[BenchRow]:
        return [result.row for result in self.results]


def default_models() -> list[str]:
    """The shipped default model and, when shipped, its INT8 twin ``NAME-int8``."""
    from mammo_edge.model.registry import default_model_name, installed_model_names

    default = default_model_name()
    twin = f"{default}-int8"
    return [default, twin] if twin in installed_model_names() else [default]


def all_models() -> list[str]:
    """Every shipped model, default first (:func:`mammo_edge.model.registry.shipped_models`)."""
    from mammo_edge.model.registry import shipped_models

    return [model_file.name for model_file in shipped_models()]


def default_devices() -> list[str]:
    """Every device this onnxruntime offers: ``cpu``, then ``cuda`` and ``tensorrt``."""
    from mammo_edge.model.providers import CUDA_PROVIDER, TENSORRT_PROVIDER, available_providers

    available = available_providers()
    offered = {"cuda": CUDA_PROVIDER, "tensorrt": TENSORRT_PROVIDER}
    return ["cpu", *(device for device, name in offered.items() if name in available)]


def check_devices(devices: Sequence[str]) -> None:
    """Refuse a device onnxruntime cannot run, before anything is measured.

    Raises:
        ProviderError: the message names the providers this onnxruntime has.
    """
    from mammo_edge.model.providers import providers_for

    for device in devices:
        providers_for(device)


def run_bench(
    models: Sequence[str],
    devices: Sequence[str],
    settings: BenchSettings = BenchSettings(),
    progress: Progress | None = None,
) -> BenchReport:
    """Measure every model on every device (see the module notes).

    Raises:
        ProviderError: a device is not offered here.
        BenchError: no file loads for a model, or a child ``predict`` failed.
        ModelError: a model is missing or altered.
    """
    check_devices(devices)
    say = progress or (lambda step: None)
    machine = machine_facts()
    with tempfile.TemporaryDirectory(prefix="mammo-edge-bench-") as work_name:
        work = Path(work_name)
        paths, images = _bench_inputs(settings, work)
        results = [
            bench_model(model, device, paths, settings.rounds, work, say)
            for model in models
            for device in devices
        ]
    return BenchReport(machine=machine, results=results, images=images, settings=settings)


def _bench_inputs(settings: BenchSettings, work: Path) -> tuple[list[str], str]:
    """The files to time and a line saying what they are."""
    from mammo_edge.bench.images import write_synthetic_set
    from mammo_edge.images.inputs import expand_inputs

    if settings.folder is None:
        paths = write_synthetic_set(work / "images", settings.images)
        return [str(path) for path in paths], f"{len(paths)} synthetic 1024x1024 PGMs (built in)"
    found = expand_inputs([settings.folder])
    if not found:
        raise BenchError(f"no image files found in {settings.folder}")
    kept = found[: settings.images]
    return kept, f"{len(kept)} of the {len(found)} files in {settings.folder}"


def bench_model(
    model: str, device: str, paths: list[str], rounds: int, work: Path, say: Progress
) -> BenchResult:
    """One :class:`BenchResult`: ``model`` on ``device`` over ``paths`` (see module notes)."""
    from mammo_edge.predictor import Predictor

    say(f"{model} on {device}: loading, screening {len(paths)} files")
    predictor = Predictor(model, device=device)
    screened = screen_inputs(predictor, paths)
    if not screened.paths:
        raise BenchError(
            f"none of the {len(paths)} files loads for {model} ({screened.errors_text()})"
        )
    streams, score = predictor.streams, predictor.score_batch
    say(f"{model} on {device}: searching the batch")
    batches = candidate_batches(predictor.provider, predictor.batch_size, len(screened.paths))
    best, rates = search_best_batch(
        score, screened.model_input, batches, streams, default=predictor.batch_size
    )
    runner = Predictor(predictor.model, batch_size=best, streams=streams)
    end_to_end_rate(runner, screened.paths[: 2 * best * streams + runner.workers])  # warm-up
    flags = ["--model", model, "--device", device, "--batch-size", str(best)]
    per_round: dict[str, list[float]] = {}
    for index in range(rounds):
        say(f"{model} on {device}: round {index + 1} of {rounds}")
        for name, value in _one_round(runner, screened, flags, work).items():
            per_round.setdefault(name, []).append(value)
    say(f"{model} on {device}: peak RSS of a fresh predict")
    spreads = {name: spread(values) for name, values in per_round.items()}
    spreads["peak_rss_mb"] = spread([peak_rss(screened.paths, flags, work).peak_rss_mb])
    row = _row(model, device, predictor, best, spreads)
    return BenchResult(
        row, spreads, rates, predictor.batch_size, len(screened.paths), dict(screened.errors)
    )


def _one_round(runner, screened: ScreenedInputs, flags: list[str], work: Path) -> dict:
    """One round's figures. End to end runs between two passes of the model alone over
    the same images, whose combined rate is the round's model alone, so a load that comes
    or goes during the round weighs on both sides of the share alike."""
    score, inputs = runner.score_batch, screened.model_input
    batch, streams = runner.batch_size, runner.streams
    before_images, before_s = timed_pass(score, inputs, batch, streams)
    through = end_to_end_rate(runner, screened.paths)
    after_images, after_s = timed_pass(score, inputs, batch, streams)
    alone = (before_images + after_images) / (before_s + after_s)
    latency = batch1_latency(score, inputs[:1])
    return {
        "model_alone_images_per_s": alone,
        "end_to_end_images_per_s": through,
        "end_to_end_share": through / alone,
        "latency_ms_p50": latency.median_ms,
        "latency_ms_p95": latency.p95_ms,
        "cold_start_s": cold_start(screened.paths[0], flags, work).wall_s,
    }


def _row(model: str, device: str, predictor, batch: int, spreads: dict[str, Spread]) -> BenchRow:
    medians = {name: figure.median for name, figure in spreads.items()}
    return BenchRow(
        model=model,
        sha256=predictor.model_sha256,
        device=device,
        provider=predictor.provider,
        precision=precision_of(predictor.read_model_bytes()),
        batch=batch,
        threads=predictor.threads,
        streams=predictor.streams,
        studies_per_hour=medians["end_to_end_images_per_s"] * 3600 / VIEWS_PER_STUDY,
        **medians,
    )


def precision_of(model_bytes: bytes) -> str:
    """``INT8`` when the ONNX file holds a quantised operator (QDQ, QLinear, integer
    MatMul/Conv), else ``FP32``; read from the bytes, as the runtime has no ``onnx``."""
    return "INT8" if any(op in model_bytes for op in _QUANTISED_OPS) else "FP32"
