"""Which models are measured: every shipped model, its INT8 twin, and its Keras source.

Resolution, in order:

* ONNX: ``--model`` (an .onnx file, or a folder with ``manifest.json``), else the shipped
  ``mammo_edge/models/manifest.json``, read through ``mammo_edge.model.registry``. Every model
  the manifest lists is measured, grouped into *families*: a model and, when listed, its
  INT8 twin ``NAME-int8``. ``--models NAME,...`` keeps only some families; ``--quick``
  keeps the default model's and the seed CNN's.
* Keras: the file each family was exported from (:data:`KERAS_SOURCES`, overridden with
  ``--keras NAME=PATH``), with the ``model_contract.json`` training wrote beside it. It is
  loaded with the export's own loader and cut to the outputs the export ships, so both
  engines run the same graph. A missing source makes the Keras rows say so.
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
SHARED = REPOSITORY.parent / "shared"
MIAS_ARCHIVE = SHARED / "mias" / "all-mias.tar.gz"
INT8_SUFFIX = "-int8"


@dataclass(frozen=True)
class KerasSource:
    """Where a shipped model's Keras file is, and its contract (default: beside it)."""

    path: Path
    contract: Path | None = None

    def contract_location(self) -> Path:
        from train.contract import contract_path

        return self.contract or contract_path(self.path)


#: The Keras file each shipped model was exported from, first existing candidate wins
#: (the commands that wrote them: reports/patient/README.md, reports/lesion/,
#: reports/published/README.md).
KERAS_SOURCES: dict[str, tuple[KerasSource, ...]] = {
    "seed": (KerasSource(REPOSITORY / "reports" / "patient" / "model.keras"),),
    "lite0": (
        KerasSource(REPOSITORY / "reports" / "lesion" / "model.keras"),
        KerasSource(REPOSITORY / "runs" / "lesion" / "full" / "model.keras"),
    ),
    "seed-published": (
        KerasSource(
            SHARED / "seed" / "pretrained_model.h5",
            REPOSITORY / "reports" / "published" / "model_contract.json",
        ),
    ),
}
#: The family ``--quick`` measures beside the default model.
QUICK_COMPANION = "seed"


@dataclass
class ModelFamily:
    """One model, its INT8 twin (if any) and its Keras source (if any).

    Attributes:
        name: the model's name (``lite0``); ``int8_name`` its twin's (``lite0-int8``).
        fp32_path, int8_path: ONNX files (``int8_path`` None when no twin exists).
        default: True for the manifest's default model.
        cli_fp32, cli_int8: the ``mammo-edge predict`` arguments that select each model
            (empty for the default model, as a user runs it; a name for shipped models;
            a path otherwise).
        keras: the Keras source, or None; ``keras_absent_reason`` why not.
        random_weights: True when the seed CNN was built with random weights.
    """

    name: str
    fp32_path: Path
    int8_path: Path | None
    int8_name: str | None = None
    default: bool = False
    cli_fp32: list[str] = field(default_factory=list)
    cli_int8: list[str] = field(default_factory=list)
    keras: KerasSource | None = None
    keras_absent_reason: str | None = None
    random_weights: bool = False
    keras_model: object | None = None

    def load_keras(self):
        """The Keras model with the shipped outputs, loaded on first use; None without one.

        Raises:
            BenchmarkError: the file exists but cannot be loaded.
        """
        if self.keras_model is None and self.keras is not None:
            self.keras_model = load_keras_source(self.keras)
        return self.keras_model

    def release_keras(self) -> None:
        """Drop the loaded Keras model (its memory is not needed once it has been timed)."""
        self.keras_model = None


@dataclass
class ModelSources:
    """Every family one run measures, how they were found, and notes for the report."""

    families: list[ModelFamily]
    origin: str
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
    families = shipped_families(folder)
    if families is None:
        return None
    if name is None:
        chosen = next(family for family in families if family.default)
    else:
        matching = [family for family in families if family.name == name]
        if not matching:
            raise BenchmarkError(f"{folder}: no model named {name!r}")
        chosen = matching[0]
    return chosen.fp32_path, chosen.int8_path


def shipped_families(folder: Path, installed: bool = False) -> list[ModelFamily] | None:
    """Every model of ``folder/manifest.json`` grouped with its ``NAME-int8`` twin, the
    default first; None when the folder has no manifest.

    A twin whose model is not listed is a family of its own (measured as FP32).

    Args:
        installed: True for the installed models folder, whose models the CLI selects by
            name; otherwise the CLI is given each file's path.
    """
    from mammo_edge.errors import ModelError
    from mammo_edge.model.registry import MANIFEST_NAME, read_manifest, shipped_models

    manifest_path = folder / MANIFEST_NAME
    if not manifest_path.is_file():
        return None
    try:
        default = read_manifest(folder)["default"]
        models = {model.name: model for model in shipped_models(folder)}
    except ModelError as error:
        raise BenchmarkError(f"{error}; re-run the export") from None
    for model in models.values():
        if not model.path.is_file():
            raise BenchmarkError(f"{model.path}: listed in {manifest_path} but missing")
    families = []
    for name, model in models.items():
        base = name[: -len(INT8_SUFFIX)] if name.endswith(INT8_SUFFIX) else None
        if base is not None and base in models:
            continue  # measured with its FP32 model
        twin = models.get(f"{name}{INT8_SUFFIX}")

        def arguments(model_name: str, path: Path) -> list[str]:
            if installed and model_name == default:
                return []
            return ["--model", model_name if installed else str(path)]

        families.append(
            ModelFamily(
                name=name,
                fp32_path=model.path,
                int8_path=twin.path if twin else None,
                int8_name=twin.name if twin else None,
                default=name == default,
                cli_fp32=arguments(name, model.path),
                cli_int8=arguments(twin.name, twin.path) if twin else [],
            )
        )
    families.sort(key=lambda family: not family.default)
    return families


def parse_keras_overrides(values: tuple[str, ...]) -> dict[str | None, Path]:
    """``NAME=PATH`` pairs (a bare ``PATH`` is the default model's) from ``--keras``."""
    overrides: dict[str | None, Path] = {}
    for value in values:
        name, separator, path = value.partition("=")
        if separator and name and "/" not in name:
            overrides[name] = Path(path)
        else:
            overrides[None] = Path(value)
    return overrides


def resolve_sources(
    model: Path | None = None,
    keras: dict[str | None, Path] | None = None,
    seed_cnn: bool = False,
    names: tuple[str, ...] | None = None,
    skip_keras: bool = False,
    calibration_images: int = 32,
) -> ModelSources:
    """Find or make the models to measure (see the module docstring for the order).

    Args:
        model: ``--model``: an ONNX file or a folder with a manifest (None: the shipped).
        keras: ``--keras`` overrides, model name (None: the default model) -> path.
        names: families to keep, by model name (None: all).
        skip_keras: no Keras sources at all.

    Raises:
        BenchmarkError: a path given on the command line does not exist or is unusable,
            or ``names`` names a model that is not there.
    """
    keras = dict(keras or {})
    notes: list[str] = []
    if seed_cnn:
        return _exported_here(None, notes, calibration_images)
    if model is not None:
        if model.is_dir():
            families = shipped_families(model)
            if families is None:
                raise BenchmarkError(f"{model}: a model folder needs a manifest.json")
        elif model.is_file():
            families = [
                ModelFamily(
                    name=model.stem,
                    fp32_path=model,
                    int8_path=None,
                    default=True,  # the model under test: the default targets apply
                    cli_fp32=["--model", str(model)],
                )
            ]
        else:
            raise BenchmarkError(f"--model {model}: no such file or folder")
        origin = f"--model {model}"
    else:
        families = shipped_families(SHIPPED_MODELS, installed=True)
        origin = f"shipped ({SHIPPED_MODELS / 'manifest.json'})"
    if families is None:
        default_keras = keras.get(None)
        if default_keras is not None and not default_keras.is_file():
            default_keras = None
        return _exported_here(default_keras, notes, calibration_images)
    families = _select(families, names)
    for family in families:
        _attach_keras(family, keras, skip_keras, explicit_only=model is not None)
    return ModelSources(families=families, origin=origin, notes=notes)


def _select(families: list[ModelFamily], names: tuple[str, ...] | None) -> list[ModelFamily]:
    if not names:
        return families
    known = {family.name for family in families}
    unknown = [name for name in names if name not in known]
    if unknown:
        raise BenchmarkError(
            f"--models: no model family named {', '.join(unknown)}; "
            f"available: {', '.join(sorted(known))}"
        )
    return [family for family in families if family.name in names]


def quick_names(families: list[ModelFamily]) -> tuple[str, ...]:
    """The default model's family and the seed CNN's (when shipped)."""
    names = [family.name for family in families if family.default]
    names += [family.name for family in families if family.name == QUICK_COMPANION]
    return tuple(dict.fromkeys(names)) or tuple(family.name for family in families[:1])


def _attach_keras(
    family: ModelFamily, keras: dict[str | None, Path], skip_keras: bool, explicit_only: bool
) -> None:
    if skip_keras:
        family.keras_absent_reason = "absent: --skip-keras"
        return
    override = keras.get(family.name) or (keras.get(None) if family.default else None)
    if override is not None:
        candidates: tuple[KerasSource, ...] = (KerasSource(override),)
    elif explicit_only:
        candidates = ()
    else:
        candidates = KERAS_SOURCES.get(family.name, ())
    for candidate in candidates:
        if candidate.path.is_file():
            family.keras = candidate
            return
    if candidates:
        tried = ", ".join(str(candidate.path) for candidate in candidates)
        family.keras_absent_reason = f"absent: no Keras source at {tried}"
    else:
        family.keras_absent_reason = (
            f"absent: no known Keras source for {family.name} (pass --keras {family.name}=PATH)"
        )


def load_keras_source(source: KerasSource):
    """The Keras model at ``source``, cut to the outputs the export ships.

    Uses the export's own loader (Keras 3 files, and Keras 2 HDF5 weights rebuilt from the
    contract's architecture), so the Keras rows time the graph that was converted.

    Raises:
        BenchmarkError: no contract, or the file cannot be loaded.
    """
    from export.errors import ExportError
    from export.keras_source import exported_model, load_keras
    from train.contract import ContractError, read_contract

    try:
        contract = read_contract(source.contract_location())
        model, _ = load_keras(source.path, contract)
        return exported_model(model, contract)
    except (ContractError, ExportError) as error:
        raise BenchmarkError(f"Keras source {source.path}: {error}") from None


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
        from train.images import mias_batch
        from train.mias import open_mias

        dataset = open_mias(MIAS_ARCHIVE)
        references = [record.reference for record in dataset.records[:count]]
        return mias_batch(dataset, references, preprocess), f"{len(references)} MIAS images"
    from mammo_edge.bench.model_alone import random_batch

    noise = random_batch(count, input_shape)
    return noise, f"{count} uniform-noise images (no MIAS archive)"


def _exported_here(keras_path: Path | None, notes: list[str], calibration_images: int):
    """One family exported into a temporary folder from ``keras_path`` (or random seed)."""
    if keras_path is not None:
        source = KerasSource(keras_path)
        keras_model = load_keras_source(source)
        preprocess = _contract_preprocess(keras_path)
        random_weights = False
        name = keras_path.stem
    else:
        keras_model, preprocess = _random_seed_cnn()
        source = None
        random_weights = True
        name = "seed (random weights)"
        notes.append(
            "Keras and ONNX: seed CNN architecture with RANDOM weights (speed only: "
            "--seed-cnn, or no shipped model and no Keras file)"
        )
    temporary = tempfile.TemporaryDirectory(prefix="mammo-edge-bench-")
    fp32_path, int8_path = _export_here(
        keras_model, preprocess, Path(temporary.name), calibration_images
    )
    notes.append(f"ONNX exported here from the Keras source into {temporary.name}")
    family = ModelFamily(
        name=name,
        fp32_path=fp32_path,
        int8_path=int8_path,
        int8_name=f"{name}{INT8_SUFFIX}",
        default=True,
        cli_fp32=["--model", str(fp32_path)],
        cli_int8=["--model", str(int8_path)],
        keras=source,
        random_weights=random_weights,
        keras_model=keras_model,
    )
    return ModelSources(
        families=[family],
        origin="exported by the benchmark from the Keras source",
        notes=notes,
        temporary=temporary,
    )


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


def _export_here(
    keras_model, preprocess, folder: Path, calibration_images: int
) -> tuple[Path, Path]:
    import onnx

    from export.convert import keras_to_onnx
    from export.provenance import attach_metadata
    from export.quantize import quantize_int8
    from mammo_edge.model.metadata import ModelMetadata

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
