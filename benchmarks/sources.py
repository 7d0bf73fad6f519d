"""Which models are measured: the shipped ONNX pair and the Keras file they came from.

Resolution, in order:

* ONNX: ``--model`` (an .onnx file, or a folder with ``manifest.json``), else the shipped
  ``mammo_edge/models/manifest.json``: its default model and, if listed, its INT8 twin
  (``NAME-int8``), read through ``mammo_edge.registry``.
* Keras: ``--keras`` (default ``reports/patient/model.keras``, with the
  ``model_contract.json`` training wrote beside it). When the file is missing the Keras rows
  say so instead of failing.
* When there is no ONNX model, it is exported here from the Keras source into a temporary
  folder with ``export``'s own functions (FP32, then static QDQ INT8), so the speed of the
  real architecture is still measured. When neither exists (or with ``--seed-cnn``), the
  seed CNN is built with random weights: the architecture, not the weights, sets speed,
  and every output row says that the weights are random.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .errors import BenchmarkError

REPOSITORY = Path(__file__).resolve().parent.parent
SHIPPED_MODELS = REPOSITORY / "mammo_edge" / "models"
DEFAULT_KERAS = REPOSITORY / "reports" / "patient" / "model.keras"
MIAS_ARCHIVE = REPOSITORY.parent / "shared" / "mias" / "all-mias.tar.gz"


@dataclass
class ModelSources:
    """The models one benchmark run measures.

    Attributes:
        fp32_path, int8_path: ONNX files (``int8_path`` None when none exists).
        keras_path: the Keras file measured, or None.
        keras_model: the loaded Keras model (None when absent).
        origin: how the ONNX models were obtained (shipped / --model / exported here).
        keras_absent_reason: why Keras rows are absent, or None.
        random_weights: True when the seed CNN was built with random weights.
        notes: lines for the report.
    """

    fp32_path: Path
    int8_path: Path | None
    keras_path: Path | None
    keras_model: object | None
    origin: str
    keras_absent_reason: str | None
    random_weights: bool
    uses_shipped_default: bool
    notes: list[str] = field(default_factory=list)
    temporary: tempfile.TemporaryDirectory | None = None

    def close(self) -> None:
        """Remove the temporary export folder, if one was made."""
        if self.temporary is not None:
            self.temporary.cleanup()
            self.temporary = None


def shipped_pair(folder: Path, name: str | None = None) -> tuple[Path, Path | None] | None:
    """``(model, its INT8 twin or None)`` from ``folder/manifest.json``; None without one.

    Args:
        name: the model (default: the manifest's default); its twin is ``NAME-int8``.
    """
    from mammo_edge.errors import ModelError
    from mammo_edge.registry import MANIFEST_NAME, manifest_model, read_manifest

    manifest_path = folder / MANIFEST_NAME
    if not manifest_path.is_file():
        return None
    try:
        manifest = read_manifest(folder)
        chosen = manifest_model(folder, name)
        twin = f"{chosen.name}-int8"
        int8_file = manifest_model(folder, twin) if twin in manifest["models"] else None
    except ModelError as error:
        raise BenchmarkError(f"{error}; re-run the export") from None
    fp32 = chosen.path
    int8 = int8_file.path if int8_file is not None else None
    for path in (fp32, int8):
        if path is not None and not path.is_file():
            raise BenchmarkError(f"{path}: listed in {manifest_path} but missing")
    return fp32, int8


def resolve_sources(
    model: Path | None,
    keras: Path | None,
    seed_cnn: bool,
    calibration_images: int = 32,
) -> ModelSources:
    """Find or make the models to measure (see the module docstring for the order).

    Raises:
        BenchmarkError: a path given on the command line does not exist or is unusable.
    """
    notes: list[str] = []
    keras_model = None
    keras_reason = None
    keras_path = None
    random_weights = False
    keras_preprocess = None
    if seed_cnn:
        keras_model, keras_preprocess = _random_seed_cnn()
        random_weights = True
        notes.append("Keras and ONNX: seed CNN architecture with RANDOM weights (--seed-cnn)")
    elif keras is not None and keras.is_file():
        keras_model = _load_keras(keras)
        keras_path = keras
        keras_preprocess = _contract_preprocess(keras)
    else:
        keras_reason = f"absent: no Keras source at {keras}"

    pair, origin, uses_shipped = None, "", False
    if model is not None and not seed_cnn:
        if model.is_dir():
            pair = shipped_pair(model)
            if pair is None:
                raise BenchmarkError(f"{model}: a model folder needs a manifest.json")
        elif model.is_file():
            pair = (model, None)
        else:
            raise BenchmarkError(f"--model {model}: no such file or folder")
        origin = f"--model {model}"
    elif not seed_cnn:
        pair = shipped_pair(SHIPPED_MODELS)
        origin, uses_shipped = f"shipped ({SHIPPED_MODELS / 'manifest.json'})", True
    if pair is not None:
        return ModelSources(
            fp32_path=pair[0],
            int8_path=pair[1],
            keras_path=keras_path,
            keras_model=keras_model,
            origin=origin,
            keras_absent_reason=keras_reason,
            random_weights=False,
            uses_shipped_default=uses_shipped,
            notes=notes,
        )

    if keras_model is None:
        keras_model, keras_preprocess = _random_seed_cnn()
        random_weights = True
        keras_reason = None
        notes.append(
            f"no shipped model and no Keras file at {keras}: measuring the seed CNN "
            "architecture with RANDOM weights (speed only)"
        )
    temporary = tempfile.TemporaryDirectory(prefix="mammo-edge-bench-")
    fp32_path, int8_path = _export_here(
        keras_model, keras_preprocess, Path(temporary.name), calibration_images
    )
    notes.append(f"ONNX exported here from the Keras source into {temporary.name}")
    return ModelSources(
        fp32_path=fp32_path,
        int8_path=int8_path,
        keras_path=keras_path,
        keras_model=keras_model,
        origin="exported by the benchmark from the Keras source",
        keras_absent_reason=keras_reason,
        random_weights=random_weights,
        uses_shipped_default=False,
        notes=notes,
        temporary=temporary,
    )


def calibration_batch(
    count: int, preprocess, input_shape: tuple[int, int]
) -> tuple[np.ndarray, str]:
    """INT8 calibration images: MIAS through the model's own preprocessing, else noise.

    Args:
        count: images wanted.
        preprocess: the model's ``PreprocessConfig``.
        input_shape: the model's ``(H, W)``, for the noise fallback without the archive.
    """
    if MIAS_ARCHIVE.is_file():
        from mammo_edge.preprocess import to_model_batch
        from train.mias import open_mias

        dataset = open_mias(MIAS_ARCHIVE)
        records = dataset.records[:count]
        images = [dataset.read_image(record.reference) for record in records]
        return to_model_batch(images, preprocess), f"{len(images)} MIAS images"
    from .inference import random_batch

    noise = random_batch(count, input_shape)
    return noise, f"{count} uniform-noise images (no MIAS archive)"


def _random_seed_cnn():
    """The seed architecture with random weights, and its preprocessing."""
    from train import architectures

    seed = architectures.get("seed")
    preprocess = seed.default_preprocess()
    return seed.build(preprocess, 0), preprocess


def _contract_preprocess(keras_path: Path):
    """The preprocessing training recorded beside ``keras_path``, or None without one."""
    from train.contract import ContractError, contract_path, read_contract

    try:
        return read_contract(contract_path(keras_path)).preprocess
    except ContractError:
        return None


def _load_keras(path: Path):
    import keras

    try:
        return keras.models.load_model(path, compile=False)
    except Exception as error:  # keras raises many kinds for a bad file
        raise BenchmarkError(f"--keras {path}: cannot load it as a Keras model ({error})") from None


def _export_here(
    keras_model, preprocess, folder: Path, calibration_images: int
) -> tuple[Path, Path]:
    import onnx

    from export.convert import keras_to_onnx
    from export.provenance import attach_metadata
    from export.quantize import quantize_int8
    from mammo_edge.metadata import ModelMetadata

    if preprocess is None:
        raise BenchmarkError(
            "the Keras source has no model_contract.json beside it, so its preprocessing is "
            "unknown; pass --model with an exported ONNX file, or --seed-cnn"
        )
    conversion = keras_to_onnx(keras_model)
    metadata = ModelMetadata(
        model_name="benchmark-temporary",
        model_version="0",
        preprocess=preprocess,
        threshold_method="fixed 0.5 (benchmark export, not for predictions)",
        training_protocol="none (benchmark export)",
        dataset_sha256="none",
        code_revision="benchmark",
        created="1970-01-01T00:00:00+00:00",
    )
    fp32 = conversion.model
    attach_metadata(fp32, metadata)
    fp32_path = folder / "fp32.onnx"
    onnx.save(fp32, str(fp32_path))
    batch, _ = calibration_batch(calibration_images, preprocess, conversion.input_shape)
    int8 = quantize_int8(fp32, batch, metadata)
    int8_path = folder / "int8.onnx"
    onnx.save(int8, str(int8_path))
    return fp32_path, int8_path
