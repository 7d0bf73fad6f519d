"""The export step end to end: Keras file -> verified, self-describing ONNX (+ INT8, + ship).

``run_export`` is what ``python -m export onnx`` calls; ``export_fp32`` and
:func:`export.model_metadata.build_metadata` are the pieces tests use on tiny models
without MIAS. The model's architecture and preprocessing come from its training contract
(``model_contract.json`` beside the model, or ``--contract``); without one the export
refuses, rather than guess.
"""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

import keras
import numpy as np
import onnx

import mammo_edge
from mammo_edge.model.metadata import ModelMetadata
from train.contract import ContractError, ModelContract, contract_path, read_contract

from .card import card_text
from .contract import DEFAULT_OPSET
from .convert import Conversion, keras_to_onnx, model_input_shape
from .errors import ExportError
from .images import LabelledBatch, load_mias_batch
from .keras_source import exported_model, load_keras
from .model_metadata import (
    build_metadata,
    metadata_outputs,
    output_tensor_names,
    recorded_threshold,
    threshold_warnings,
    with_shipped_head,
)
from .parity import ParityReport, check_heatmap_parity, check_parity
from .provenance import attach_metadata, file_sha256, package_versions
from .quantize import Int8Agreement, compare_int8, quantize_int8, recipe_for
from .ship import (
    DEFAULT_DATA,
    int8_name,
    manifest_entry,
    merge_manifest,
    model_card_name,
    verify_shipped,
)
from .threshold import (
    ThresholdChoice,
    choose_threshold,
    read_metrics,
    read_predictions,
)
from .transposes import ort_optimized_op_counts

KERAS_SUFFIXES = (".keras", ".h5", ".hdf5")


@dataclass(frozen=True)
class ExportOptions:
    """What ``python -m export onnx`` was asked to do (paths as given on the command line)."""

    model_path: Path
    out_path: Path
    data_path: Path = DEFAULT_DATA
    opset: int = DEFAULT_OPSET
    predictions_path: Path | None = None
    metrics_path: Path | None = None
    int8: bool = False
    calibration_path: Path | None = None
    ship: bool = False
    #: None: the contract's architecture name.
    model_name: str | None = None
    model_version: str = mammo_edge.__version__
    protocol: str = "patient"
    #: None: ``model_contract.json`` beside the model.
    contract_path: Path | None = None
    #: With ``ship``: make this model the manifest's default.
    make_default: bool = False
    #: Markdown about the model, put into its card.
    card_notes_path: Path | None = None
    #: The command line, recorded in the card for regeneration.
    command: str = ""
    #: How the threshold is chosen on the out-of-fold predictions: ``youden`` or
    #: ``sensitivity:0.90`` (the highest threshold reaching that sensitivity: triage).
    threshold_rule: str = "youden"
    #: ``head.json`` of ``python -m train repeated``: stacking head and operating points.
    head_path: Path | None = None


@dataclass(frozen=True)
class ExportResult:
    """Files written and the report saved beside them as ``<out>.export.json``."""

    onnx_path: Path
    int8_path: Path | None
    report_path: Path
    report: dict


def export_fp32(
    keras_model: keras.Model,
    metadata: ModelMetadata,
    parity_batch: np.ndarray,
    image_source: str,
    opset: int = DEFAULT_OPSET,
) -> tuple[onnx.ModelProto, Conversion, ParityReport]:
    """Convert, attach ``metadata`` and prove parity on ``parity_batch``.

    ``parity_batch`` must be made with ``metadata.preprocess``: its shape is how the
    preprocessing is checked against the model's input.

    Raises:
        ExportError: conversion or parity failed, or the preprocessing disagrees with the
            model's input.
    """
    conversion = keras_to_onnx(keras_model, opset, output_tensor_names(metadata.outputs))
    _check_input_shape(parity_batch, conversion.input_shape, "the parity images")
    model = conversion.model
    attach_metadata(model, metadata)
    parity = check_parity(keras_model, model.SerializeToString(), parity_batch, image_source)
    return model, conversion, parity


def run_export(options: ExportOptions) -> ExportResult:
    """Do everything ``python -m export onnx`` promises; ``export.onnx_command`` has the options.

    Raises:
        ExportError: with a message for the person running the export.
    """
    _check_options(options)
    contract = _read_contract(options)
    model_name = options.model_name or contract.arch
    _check_name(options, model_name)
    keras_model, loaded_with = load_keras(options.model_path, contract)
    keras_model = exported_model(keras_model, contract)
    metrics = read_metrics(options.metrics_path) if options.metrics_path else {}
    data = load_mias_batch(options.data_path, contract.preprocess)
    _check_input_shape(data.batch, model_input_shape(keras_model), str(options.data_path))
    predictions = read_predictions(options.predictions_path) if options.predictions_path else None
    threshold = (
        choose_threshold(predictions, options.threshold_rule)
        if predictions
        else recorded_threshold(metrics)
    )
    metadata = _metadata(options, contract, model_name, threshold, metrics, data)
    fp32_model, conversion, parity = export_fp32(
        keras_model,
        metadata,
        data.batch,
        f"{data.source} (all {len(data.batch)} images)",
        options.opset,
    )
    save_atomically(fp32_model, options.out_path)

    report: dict = {
        "model": str(options.model_path),
        "loaded_with": loaded_with,
        "contract": {"path": str(_contract_location(options)), **contract.as_dict()},
        "parameters": int(keras_model.count_params()),
        "onnx": str(options.out_path),
        "onnx_sha256": file_sha256(options.out_path),
        "opset": conversion.opset,
        "versions": package_versions(),
        "metadata": metadata.to_props(),
        "transposes": {
            "before_tf2onnx_optimizer": conversion.transposes_before_optimizer,
            "after_tf2onnx_optimizer": conversion.transposes_after_optimizer,
            "remaining": [asdict(node) for node in conversion.remaining_transposes],
            "onnxruntime_optimized_op_counts": ort_optimized_op_counts(fp32_model),
        },
        "op_counts": conversion.op_counts,
        "parity": asdict(parity),
        "heatmap_parity": check_heatmap_parity(keras_model, fp32_model, data.batch),
        "threshold": _threshold_entry(options, metadata, threshold),
        "warnings": threshold_warnings(threshold, metrics),
    }

    int8_path = None
    int8_metadata = dataclasses.replace(metadata, model_name=f"{metadata.model_name}-int8")
    if options.int8:
        agreement, int8_path = _export_int8(options, fp32_model, int8_metadata, data, predictions)
        report["int8"] = _int8_entry(agreement, metadata.arch, int8_path)
    if options.ship:
        _ship(options, contract, metadata, int8_metadata, int8_path, parity, report, data)

    report_path = options.out_path.with_name(options.out_path.stem + ".export.json")
    report_path.write_text(json.dumps(report, indent=2, default=_json_default) + "\n")
    return ExportResult(options.out_path, int8_path, report_path, report)


def _metadata(
    options: ExportOptions,
    contract: ModelContract,
    model_name: str,
    threshold: ThresholdChoice | None,
    metrics: dict,
    data: LabelledBatch,
) -> ModelMetadata:
    """The exported model's metadata, with the shipped head when ``--head`` names one."""
    metadata = build_metadata(
        model_name=model_name,
        model_version=options.model_version,
        threshold=threshold,
        training_protocol=str(metrics.get("protocol", options.protocol)),
        cv_metrics=metrics,
        dataset_sha256=data.dataset_sha256,
        preprocess=contract.preprocess,
        arch=contract.arch,
        outputs=metadata_outputs(contract),
    )
    if options.head_path is not None:
        metadata = with_shipped_head(metadata, options.head_path)
    return metadata


def _threshold_entry(
    options: ExportOptions, metadata: ModelMetadata, threshold: ThresholdChoice | None
) -> dict | None:
    """The report's ``threshold``: the head's default point, the chosen one, or None."""
    if options.head_path is not None:
        return {"threshold": metadata.threshold, "method": metadata.threshold_method}
    return None if threshold is None else asdict(threshold)


def _int8_entry(agreement: Int8Agreement, arch: str, int8_path: Path | None) -> dict:
    """The report's ``int8``: the gate's figures, the recipe and the file (None: refused)."""
    return {
        **asdict(agreement),
        "accepted": agreement.accepted,
        "recipe": asdict(recipe_for(arch)),
        "file": None if int8_path is None else str(int8_path),
        "sha256": None if int8_path is None else file_sha256(int8_path),
        "note": (
            "FP32 and INT8 are both the exported model (trained on all images), scored "
            "on the out-of-fold image set, so the AUCs are in-sample; only their "
            "difference is meaningful."
        ),
    }


def _check_options(options: ExportOptions) -> None:
    if options.out_path.suffix != ".onnx":
        raise ExportError(f"--out must name a .onnx file, got {options.out_path}")
    if Path(options.model_path).suffix not in KERAS_SUFFIXES:
        raise ExportError(
            f"--model must be a Keras file ({', '.join(KERAS_SUFFIXES)}), got {options.model_path}"
        )
    if not Path(options.model_path).is_file():
        raise ExportError(
            f"{options.model_path}: no such file; pass the model.keras of a training run"
        )
    if options.ship and options.metrics_path is None:
        raise ExportError(
            "--ship needs --metrics (the evaluation of this model), so the shipped model "
            "carries its measured figures"
        )
    if options.make_default and not options.ship:
        raise ExportError("--default only makes sense with --ship")


def _check_name(options: ExportOptions, model_name: str) -> None:
    if not model_name or any(c.isspace() or c in "/\\" for c in model_name):
        raise ExportError(f"model name {model_name!r}: use a short name without spaces or slashes")
    if options.ship and options.out_path.stem != model_name:
        raise ExportError(
            f"--ship names files after the model: --out must be "
            f"{options.out_path.with_name(model_name + '.onnx')} for --name {model_name}"
        )


def _contract_location(options: ExportOptions) -> Path:
    return options.contract_path or contract_path(options.model_path)


def _read_contract(options: ExportOptions) -> ModelContract:
    try:
        return read_contract(_contract_location(options))
    except ContractError as error:
        raise ExportError(f"{options.model_path}: {error}") from None


def _check_input_shape(batch: np.ndarray, input_shape: tuple[int, int], source: str) -> None:
    if tuple(batch.shape[1:]) != (*input_shape, 1):
        raise ExportError(
            f"the contract's preprocessing makes {tuple(batch.shape[1:])} inputs from "
            f"{source} but the model takes {(*input_shape, 1)}; is model_contract.json "
            "the one written with this model?"
        )


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
    int8_model = quantize_int8(fp32_model, calibration.batch, metadata, recipe_for(metadata.arch))
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
        int8_path = options.out_path.with_name(int8_name(options.out_path.stem) + ".onnx")
    else:
        int8_path = options.out_path.with_name(options.out_path.stem + ".int8.onnx")
    if not agreement.accepted:
        int8_path.unlink(missing_ok=True)
        return agreement, None
    save_atomically(int8_model, int8_path)
    return agreement, int8_path


def _ship(
    options: ExportOptions,
    contract: ModelContract,
    metadata: ModelMetadata,
    int8_metadata: ModelMetadata,
    int8_path: Path | None,
    parity: ParityReport,
    report: dict,
    data: LabelledBatch,
) -> None:
    """Add the model (and its INT8 twin) to the folder's manifest, verify, write its card.

    Models already shipped in the folder stay; a stale INT8 twin of this model is removed.
    """
    folder = options.out_path.parent
    name = metadata.model_name
    twin = int8_name(name)
    card = model_card_name(name)
    entries = {
        name: manifest_entry(
            options.out_path,
            metadata,
            f"{contract.arch} architecture, FP32; threshold {metadata.threshold:.4g}",
            card,
        )
    }
    int8 = report.get("int8")
    removed: tuple[str, ...] = ()
    if int8_path is not None:
        entries[twin] = manifest_entry(
            int8_path,
            int8_metadata,
            f"INT8 (QDQ, per-channel) of {name}; ΔAUC {int8['delta_auc']:+.4f} vs FP32",
            card,
        )
    else:
        removed = (twin,)
        (folder / f"{twin}.onnx").unlink(missing_ok=True)
    merge_manifest(folder, entries, make_default=options.make_default, remove=removed)
    for entry_name in entries:
        verify_shipped(folder, entry_name)
    notes = options.card_notes_path.read_text() if options.card_notes_path else ""
    report["card"] = {
        "dataset_images": len(data.batch),
        "export_command": options.command or "(command not recorded)",
    }
    (folder / card).write_text(card_text(metadata, contract.arch, report, notes))
    report["shipped"] = {entry_name: asdict(entry) for entry_name, entry in entries.items()}
    report["model_card"] = str(folder / card)


def save_atomically(model: onnx.ModelProto, path: Path) -> None:
    """Write ``model`` to ``path`` through ``PATH.partial``, creating the folder."""
    # Written under a temporary name first so a failed export never leaves a half file
    # where the runtime looks for a model.
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(path.name + ".partial")
    onnx.save(model, str(temporary))
    os.replace(temporary, path)


def _json_default(value: object) -> object:
    if isinstance(value, (np.floating, np.integer)):
        return value.item()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")
