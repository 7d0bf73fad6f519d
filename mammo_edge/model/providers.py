"""Choose onnxruntime execution providers and build the inference session.

``device`` is ``auto`` (CUDA when this onnxruntime offers it, else CPU), ``cpu``, ``cuda``
or ``tensorrt``. A requested provider that this onnxruntime lacks is an error listing what
it has, and a GPU session that silently fell back to CPU is an error for ``cuda`` and
``tensorrt`` and a logged warning for ``auto``: the provider actually running is what
results report. Before a GPU session, the CUDA and cuDNN libraries that onnxruntime-gpu's
``[cuda,cudnn]`` extras install as pip packages are loaded (``onnxruntime.preload_dlls``),
so no ``LD_LIBRARY_PATH`` is needed (docs/benchmarks.md, "The GPU install").

Every onnxruntime wheel (``onnxruntime``, ``onnxruntime-gpu``, ``onnxruntime-openvino``...)
installs the same ``onnxruntime`` import package, so two of them side by side overwrite
each other's files: which providers load is then an accident of install order (typically
CUDA silently missing). :func:`onnxruntime_clash` finds that from the installed
distributions' metadata; a session refuses ``cuda`` and warns otherwise.
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import logging
import sys

import onnxruntime as ort

from mammo_edge.errors import ModelError, ProviderError

DEVICES = ("auto", "cpu", "cuda", "tensorrt")
CPU_PROVIDER = "CPUExecutionProvider"
CUDA_PROVIDER = "CUDAExecutionProvider"
TENSORRT_PROVIDER = "TensorrtExecutionProvider"
#: Providers that run the model on a GPU; a session on one scores one large batch at a time.
GPU_PROVIDERS = (TENSORRT_PROVIDER, CUDA_PROVIDER)
#: The one command that puts onnxruntime-gpu in place of onnxruntime (docs/benchmarks.md).
GPU_INSTALL = 'pip uninstall -y onnxruntime && pip install "onnxruntime-gpu[cuda,cudnn]>=1.31"'

logger = logging.getLogger("mammo_edge")

#: Distributions that each install the ``onnxruntime`` import package; at most one may be
#: installed in an environment.
ONNXRUNTIME_DISTRIBUTIONS = (
    "onnxruntime",
    "onnxruntime-gpu",
    "onnxruntime-openvino",
    "onnxruntime-directml",
    "onnxruntime-qnn",
    "onnxruntime-silicon",
    "onnxruntime-training",
)


def installed_onnxruntime_distributions(search_path: list[str] | None = None) -> list[str]:
    """Names of the onnxruntime distributions installed, from their metadata (dist-info).

    Args:
        search_path: folders to look in; ``None`` for ``sys.path`` (what ``import`` sees).
    """
    path = sys.path if search_path is None else search_path
    # Looked up by name (a directory listing per path entry, ~0.1 ms each), not by
    # walking every installed distribution (~0.1 s): this runs at every session start.
    return [
        name
        for name in ONNXRUNTIME_DISTRIBUTIONS
        if next(iter(importlib.metadata.distributions(name=name, path=path)), None) is not None
    ]


def onnxruntime_clash(search_path: list[str] | None = None) -> str | None:
    """A message explaining the clash when two onnxruntime distributions are installed.

    Returns:
        ``None`` when at most one is installed; else what is wrong and the commands that fix
        it (keep ``onnxruntime-gpu`` for a GPU, ``onnxruntime`` otherwise).
    """
    found = installed_onnxruntime_distributions(search_path)
    if len(found) < 2:
        return None
    keep = "onnxruntime-gpu" if "onnxruntime-gpu" in found else found[-1]
    return (
        f"{' and '.join(found)} are installed side by side. They share the onnxruntime "
        "import package and overwrite each other's files, so which execution providers "
        "load depends on install order (CUDA is typically missing). Keep exactly one: "
        f"pip uninstall -y {' '.join(found)} && pip install {keep}"
    )


def available_providers() -> list[str]:
    """Execution providers compiled into the installed onnxruntime, best first."""
    return list(ort.get_available_providers())


def on_gpu(provider: str) -> bool:
    """True when ``provider`` (as a session reports it) runs the model on a GPU."""
    return provider in GPU_PROVIDERS


def providers_for(device: str) -> list[str]:
    """The provider list to request for ``device``.

    Raises:
        ProviderError: for an unknown device, or ``cuda``/``tensorrt`` when onnxruntime
            lacks that provider; the message lists the providers it has.
    """
    if device not in DEVICES:
        raise ProviderError(f"device must be one of {', '.join(DEVICES)}; got {device!r}")
    available = available_providers()
    if device == "cpu":
        return [CPU_PROVIDER]
    wanted = TENSORRT_PROVIDER if device == "tensorrt" else CUDA_PROVIDER
    if wanted in available:
        _preload_gpu_libraries()
        # TensorRT hands the nodes it cannot build to CUDA, and CUDA its own to the CPU.
        fallbacks = [CUDA_PROVIDER, CPU_PROVIDER] if wanted == TENSORRT_PROVIDER else [CPU_PROVIDER]
        return [wanted, *fallbacks]
    if device in ("cuda", "tensorrt"):
        clash = onnxruntime_clash()
        raise ProviderError(
            f"device {device!r} needs {wanted}, but this onnxruntime offers only "
            f"{', '.join(available)}. "
            + (clash if clash else f"Install onnxruntime-gpu in its place: {GPU_INSTALL}")
            + ", or use --device cpu."
        )
    return [CPU_PROVIDER]


def _preload_gpu_libraries() -> None:
    """Load the CUDA/cuDNN libraries of the nvidia-* pip packages, once, if onnxruntime can.

    onnxruntime-gpu's ``[cuda,cudnn]`` extras install them under site-packages, where the
    dynamic loader does not look; ``onnxruntime.preload_dlls`` (1.21+) loads them first.
    Without it (older onnxruntime, system CUDA) the loader's own search path applies.
    """
    global _GPU_LIBRARIES_LOADED
    if _GPU_LIBRARIES_LOADED or not hasattr(ort, "preload_dlls"):
        return
    _GPU_LIBRARIES_LOADED = True
    try:
        with contextlib.redirect_stdout(sys.stderr):  # it prints its warnings; keep stdout clean
            ort.preload_dlls()
    except OSError as error:  # a missing library shows as a CPU fallback, reported there
        logger.warning("could not preload the CUDA libraries: %s", error)


_GPU_LIBRARIES_LOADED = False


def create_session(
    model_bytes: bytes, device: str = "auto", threads: int | None = None, source: str = "model"
) -> ort.InferenceSession:
    """Build an inference session on the chosen device.

    Args:
        model_bytes: the verified ONNX file content.
        device: ``auto``, ``cpu``, ``cuda`` or ``tensorrt``.
        threads: onnxruntime intra-op threads; ``None`` lets onnxruntime use one per core.
        source: the model path, for messages.

    Raises:
        ProviderError: the device cannot be used.
        ModelError: the bytes are not a loadable ONNX model.
    """
    providers = providers_for(device)
    clash = onnxruntime_clash()
    if clash:
        logger.warning("%s", clash)
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.log_severity_level = 3  # errors only: provider notices would drown the results
    # Idle intra-op threads sleep instead of spinning: a spinning thread takes the core the
    # decoding pool (or another program on a workstation) needs. lite0 at batch 2 on
    # 2 threads, same run on a busy 2-core machine, CPU per image: FP32 49.2 -> 29.8 ms,
    # INT8 21.0 -> 14.9 ms; wall 2.8x and 2.5x faster (reports/benchmarks/spinning.txt).
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    if threads is not None:
        if threads < 1:
            raise ModelError(f"threads must be at least 1, got {threads}")
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
    try:
        session = ort.InferenceSession(model_bytes, sess_options=options, providers=providers)
    except Exception as error:  # onnxruntime raises its own untyped errors
        raise ModelError(f"{source} is not a loadable ONNX model: {error}") from error
    running = session.get_providers()[0]
    if on_gpu(providers[0]) and running != providers[0]:
        message = (
            f"{providers[0]} was requested but onnxruntime fell back to {running} "
            "(CUDA, cuDNN or TensorRT libraries missing or mismatched)."
        )
        if device in ("cuda", "tensorrt"):
            raise ProviderError(message + " Fix the GPU install or use --device cpu.")
        logger.warning("%s Running on CPU.", message)
    return session
