"""The export step end to end: Keras file -> verified, self-describing ONNX (+ INT8, + ship).

``run_export`` is what ``python -m export`` calls; ``export_fp32`` and ``build_metadata``
are the pieces tests use on tiny models without MIAS.
"""

from __future__ import annotations

import dataclasses
import importlib.metadata
import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

import keras
import numpy as np
import onnx

import mammo_edge
from mammo_edge.metadata import ModelMetadata
from mammo_edge.preprocess import SEED_PREPROCESS, PreprocessConfig

from .contract import DEFAULT_OPSET
from .convert import Conversion, keras_to_onnx, model_image_size
from .errors import ExportError
from .images import LabelledBatch, load_mias_batch
from .parity import ParityReport, check_parity
from .provenance import attach_metadata, code_revision, created_utc, file_sha256
from .quantize import Int8Agreement, compare_int8, quantize_int8
from .ship import (
    DEFAULT_DATA,
    DEFAULT_MODEL_NAME,
    MODEL_CARD_NAME,
    REPOSITORY,
    SHIPPED_FILES,
    manifest_entry,
    render_model_card,
    verify_shipped,
    write_manifest,
)
from .threshold import ThresholdChoice, read_metrics, read_predictions, youden_threshold
from .transposes import ort_optimized_op_counts

VERSIONED_PACKAGES = ("tensorflow-cpu", "keras", "tf2onnx", "onnx", "onnxruntime", "numpy")


@dataclass(frozen=True)
class ExportOptions:
    """What ``python -m export`` was asked to do (paths as given on the command line)."""

    model_path: Path
    out_path: Path
    data_path: Path = DEFAULT_DATA
    opset: int = DEFAULT_OPSET
    predictions_path: Path | None = None
    metrics_path: Path | None = None
    int8: bool = False
    calibration_path: Path | None = None
    ship: bool = False
    model_name: str = DEFAULT_MODEL_NAME
    model_version: str = mammo_edge.__version__
    protocol: str = "patient"


@dataclass(frozen=True)
class ExportResult:
    """Files written and the report saved beside them as ``<out>.export.json``."""

    onnx_path: Path
    int8_path: Path | None
    report_path: Path
    report: dict


def build_metadata(
    image_size: int,
    model_name: str,
    model_version: str,
    threshold: ThresholdChoice | None,
    training_protocol: str,
    cv_metrics: dict,
    dataset_sha256: str,
    preprocess: PreprocessConfig = SEED_PREPROCESS,
) -> ModelMetadata:
    """Assemble the metadata an exported model carries (code revision and date filled in).

    Without out-of-fold predictions the threshold is a documented fixed 0.5.
    """
    return ModelMetadata(
        model_name=model_name,
        model_version=model_version,
        preprocess=dataclasses.replace(preprocess, input_size=image_size),
        threshold=0.5 if threshold is None else threshold.threshold,
        threshold_method=(
            "fixed 0.5 (no out-of-fold predictions given to the export)"
            if threshold is None
            else threshold.method
        ),
        training_protocol=training_protocol,
        cv_metrics=cv_metrics,
        dataset_sha256=dataset_sha256,
        code_revision=code_revision(REPOSITORY),
        created=created_utc(),
    )


def export_fp32(
    keras_model: keras.Model,
    metadata: ModelMetadata,
    parity_batch: np.ndarray,
    image_source: str,
    opset: int = DEFAULT_OPSET,
) -> tuple[onnx.ModelProto, Conversion, ParityReport]:
    """Convert, attach ``metadata`` and prove parity on ``parity_batch``.

    Raises:
        ExportError: conversion or parity failed, or metadata disagrees with the model.
    """
    conversion = keras_to_onnx(keras_model, opset)
    if metadata.preprocess.input_size != conversion.image_size:
        raise ExportError(
            f"metadata says input_size {metadata.preprocess.input_size} but the model takes "
            f"{conversion.image_size}x{conversion.image_size}"
        )
    model = conversion.model
    attach_metadata(model, metadata)
    parity = check_parity(keras_model, model.SerializeToString(), parity_batch, image_source)
    return model, conversion, parity


def run_export(options: ExportOptions) -> ExportResult:
    """Do everything ``python -m export`` promises; see ``export.cli`` for the options.

    Raises:
        ExportError: with a message for the person running the export.
    """
    _check_options(options)
    keras_model = _load_keras(options.model_path)
    image_size = model_image_size(keras_model)
    metrics = read_metrics(options.metrics_path) if options.metrics_path else {}
    preprocess = _preprocess_of(metrics, image_size)
    data = load_mias_batch(options.data_path, preprocess)
    predictions = read_predictions(options.predictions_path) if options.predictions_path else None
    threshold = youden_threshold(predictions) if predictions else None
    metadata = build_metadata(
        image_size=image_size,
        model_name=options.model_name,
        model_version=options.model_version,
        threshold=threshold,
        training_protocol=str(metrics.get("protocol", options.protocol)),
        cv_metrics=metrics,
        dataset_sha256=data.dataset_sha256,
        preprocess=preprocess,
    )
    fp32_model, conversion, parity = export_fp32(
        keras_model,
        metadata,
        data.batch,
        f"{data.source} (all {len(data.batch)} images)",
        options.opset,
    )
    _save_atomically(fp32_model, options.out_path)

    report: dict = {
        "model": str(options.model_path),
        "onnx": str(options.out_path),
        "onnx_sha256": file_sha256(options.out_path),
        "opset": conversion.opset,
        "versions": _versions(),
        "metadata": metadata.to_props(),
        "transposes": {
            "before_tf2onnx_optimizer": conversion.transposes_before_optimizer,
            "after_tf2onnx_optimizer": conversion.transposes_after_optimizer,
            "remaining": [asdict(node) for node in conversion.remaining_transposes],
            "onnxruntime_optimized_op_counts": ort_optimized_op_counts(fp32_model),
        },
        "op_counts": conversion.op_counts,
        "parity": asdict(parity),
        "threshold": None if threshold is None else asdict(threshold),
        "warnings": _threshold_warnings(threshold, metrics),
    }

    int8_path = None
    int8_metadata = dataclasses.replace(metadata, model_name=f"{metadata.model_name}-int8")
    if options.int8:
        agreement, int8_path = _export_int8(options, fp32_model, int8_metadata, data, predictions)
        report["int8"] = {
            **asdict(agreement),
            "accepted": agreement.accepted,
            "file": None if int8_path is None else str(int8_path),
            "sha256": None if int8_path is None else file_sha256(int8_path),
            "note": (
                "FP32 and INT8 are both the exported model (trained on all images), scored "
                "on the out-of-fold image set, so the AUCs are in-sample; only their "
                "difference is meaningful."
            ),
        }
    if options.ship:
        _ship(options, metadata, int8_metadata, int8_path, parity, report, len(data.batch))

    report_path = options.out_path.with_name(options.out_path.stem + ".export.json")
    report_path.write_text(json.dumps(report, indent=2, default=_json_default) + "\n")
    return ExportResult(options.out_path, int8_path, report_path, report)


def _check_options(options: ExportOptions) -> None:
    if options.out_path.suffix != ".onnx":
        raise ExportError(f"--out must name a .onnx file, got {options.out_path}")
    if options.ship:
        if options.out_path.name != SHIPPED_FILES["fp32"]:
            raise ExportError(
                f"--ship writes the package's model folder: --out must end in "
                f"{SHIPPED_FILES['fp32']}, e.g. mammo_edge/models/fp32.onnx"
            )
        if options.predictions_path is None or options.metrics_path is None:
            raise ExportError(
                "--ship needs --predictions and --metrics from the patient-protocol training "
                "run, so the shipped model carries its threshold and CV metrics"
            )


def _load_keras(path: Path) -> keras.Model:
    if not Path(path).is_file():
        raise ExportError(f"{path}: no such file; pass the model.keras of a training run")
    try:
        return keras.models.load_model(path, compile=False)
    except (ValueError, OSError) as error:
        raise ExportError(f"{path}: not a loadable Keras model ({error})") from None


def _preprocess_of(metrics: dict, image_size: int) -> PreprocessConfig:
    # A training run may record the preprocessing it used; otherwise it is the seed recipe.
    recorded = metrics.get("preprocess")
    if isinstance(recorded, dict):
        try:
            config = PreprocessConfig(**recorded)
        except (TypeError, ValueError) as error:
            raise ExportError(f"metrics.json 'preprocess' is not usable: {error}") from None
        if config.input_size != image_size:
            raise ExportError(
                f"metrics.json says input_size {config.input_size}, the model takes {image_size}"
            )
        return config
    return dataclasses.replace(SEED_PREPROCESS, input_size=image_size)


def _export_int8(
    options: ExportOptions,
    fp32_model: onnx.ModelProto,
    metadata: ModelMetadata,
    data: LabelledBatch,
    predictions,
) -> tuple[Int8Agreement, Path | None]:
    calibration_path = options.calibration_path or options.data_path
    calibration = (
        data
        if Path(calibration_path).resolve() == Path(options.data_path).resolve()
        else load_mias_batch(calibration_path, metadata.preprocess)
    )
    int8_model = quantize_int8(fp32_model, calibration.batch, metadata)
    if predictions is not None:
        evaluation = data.subset(predictions.images)
        if not np.array_equal(evaluation.labels, predictions.labels):
            raise ExportError(
                f"labels in {predictions.source} disagree with {data.source}; "
                "were the predictions made on another dataset?"
            )
        source = f"the {len(evaluation.batch)} out-of-fold images of {predictions.source}"
    else:
        evaluation = data
        source = f"all {len(data.batch)} images of {data.source}"
    agreement = compare_int8(
        fp32_model, int8_model, evaluation.batch, evaluation.labels, metadata.threshold, source
    )
    if options.ship:
        int8_path = options.out_path.with_name(SHIPPED_FILES["int8"])
    else:
        int8_path = options.out_path.with_name(options.out_path.stem + ".int8.onnx")
    if not agreement.accepted:
        int8_path.unlink(missing_ok=True)
        return agreement, None
    _save_atomically(int8_model, int8_path)
    return agreement, int8_path


def _ship(
    options: ExportOptions,
    metadata: ModelMetadata,
    int8_metadata: ModelMetadata,
    int8_path: Path | None,
    parity: ParityReport,
    report: dict,
    dataset_images: int,
) -> None:
    folder = options.out_path.parent
    entries = {
        "fp32": manifest_entry(
            options.out_path,
            metadata,
            f"FP32 seed CNN trained on all of mini-MIAS; threshold {metadata.threshold:.4g}",
        )
    }
    int8 = report.get("int8")
    if int8_path is not None:
        entries["int8"] = manifest_entry(
            int8_path,
            int8_metadata,
            f"INT8 (QDQ, per-channel) of fp32; ΔAUC {int8['delta_auc']:+.4f} vs FP32",
        )
        int8_summary = (
            f"shipped as `int8`. On {int8['image_source']}: max |Δp| "
            f"{int8['max_abs_difference']:.3g}, mean |Δp| {int8['mean_abs_difference']:.3g}, "
            f"labels agree on {100 * int8['label_agreement']:.1f}% at the threshold, "
            f"ΔAUC {int8['delta_auc']:+.4f} (limit ±{int8['auc_tolerance']}). "
            "Both models are the one trained on all images, so these AUCs are in-sample."
        )
    else:
        (folder / SHIPPED_FILES["int8"]).unlink(missing_ok=True)
        int8_summary = "not shipped: " + (
            "not requested."
            if int8 is None
            else f"ΔAUC {int8['delta_auc']:+.4f} exceeds ±{int8['auc_tolerance']}."
        )
    write_manifest(folder, entries)
    for name in entries:
        verify_shipped(folder, name)
    parity_summary = (
        f"Keras and onnxruntime agree to max |Δp| {parity.max_abs_difference:.2g} "
        f"(limit {parity.tolerance:g}) on {parity.image_source}."
    )
    (folder / MODEL_CARD_NAME).write_text(
        render_model_card(metadata, int8_summary, parity_summary, dataset_images)
    )
    report["shipped"] = {name: asdict(entry) for name, entry in entries.items()}


def _threshold_warnings(threshold: ThresholdChoice | None, metrics: dict) -> list[str]:
    # The training run reports its own Youden threshold under "youden_on_out_of_fold";
    # the export recomputes it from predictions.csv, and the two must agree.
    youden = metrics.get("youden_on_out_of_fold")
    recorded = youden.get("threshold") if isinstance(youden, dict) else None
    if threshold is None or not isinstance(recorded, (int, float)):
        return []
    if abs(recorded - threshold.threshold) <= 1e-6:
        return []
    return [
        f"metrics.json youden_on_out_of_fold.threshold {recorded} differs from the Youden "
        f"threshold {threshold.threshold} recomputed from predictions.csv; the model uses "
        "the latter. Were the two files written by the same run?"
    ]


def _save_atomically(model: onnx.ModelProto, path: Path) -> None:
    # Written under a temporary name first so a failed export never leaves a half file
    # where the runtime looks for a model.
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(path.name + ".partial")
    onnx.save(model, str(temporary))
    os.replace(temporary, path)


def _versions() -> dict[str, str]:
    versions = {}
    for package in VERSIONED_PACKAGES:
        try:
            versions[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            versions[package] = "not installed"
    return versions


def _json_default(value: object) -> object:
    if isinstance(value, (np.floating, np.integer)):
        return value.item()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")
