"""What an exported model carries: its metadata, threshold, head and operating points.

:func:`build_metadata` assembles the :class:`mammo_edge.model.metadata.ModelMetadata` written into
the ONNX file (code revision and date filled in); :func:`with_shipped_head` adds the head and
operating points of ``python -m train repeated``'s ``head.json``; the threshold comes from
the out-of-fold predictions (:mod:`export.threshold`) or, without them, from what
``metrics.json`` recorded (:func:`recorded_threshold`).
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from mammo_edge.images.preprocess import PreprocessConfig
from mammo_edge.model.metadata import ModelMetadata
from train.contract import ModelContract

from .contract import OUTPUT_NAME, TENSOR_OUTPUT_ROLES
from .errors import ExportError
from .provenance import code_revision, created_utc
from .ship import REPOSITORY
from .threshold import ThresholdChoice


def build_metadata(
    model_name: str,
    model_version: str,
    threshold: ThresholdChoice | None,
    training_protocol: str,
    cv_metrics: dict,
    dataset_sha256: str,
    preprocess: PreprocessConfig,
    arch: str = "",
    outputs: dict | None = None,
) -> ModelMetadata:
    """Assemble the metadata an exported model carries (code revision and date filled in).

    Without out-of-fold predictions the threshold is a documented fixed 0.5.
    """
    return ModelMetadata(
        model_name=model_name,
        model_version=model_version,
        preprocess=preprocess,
        arch=arch,
        outputs=dict(outputs) if outputs else {"probability": OUTPUT_NAME},
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


def with_shipped_head(metadata: ModelMetadata, path: Path) -> ModelMetadata:
    """``metadata`` carrying the head and operating points of ``head.json``.

    The model's threshold becomes the default operating point's; both points, with the
    out-of-sample figures measured for them, travel in ``mammo_edge.operating_points``.

    Raises:
        ExportError: the file is missing, malformed, or its head unusable by the runtime.
    """
    from mammo_edge.model.heads import HeadError, single_head
    from mammo_edge.model.metadata import MetadataError, check_operating_points

    try:
        shipped = json.loads(Path(path).read_text())
        points = check_operating_points(shipped["operating_points"], str(path))
        single_head(shipped.get("head", {}))
        default = points["points"][points["default"]]
    except (OSError, ValueError, KeyError, TypeError, MetadataError, HeadError) as error:
        raise ExportError(f"{path}: not a usable head.json ({error})") from None
    return dataclasses.replace(
        metadata,
        threshold=float(default["threshold"]),
        threshold_method=f"operating point {points['default']!r}: {default['rule']} "
        f"({default['source']})",
        operating_points=points,
        head=shipped.get("head", {}),
    )


def output_tensor_names(outputs: dict) -> tuple[str, ...]:
    """ONNX output names from a metadata ``outputs`` map: probability first, then heatmap."""
    return tuple(
        str(outputs[role]) if role != "probability" else OUTPUT_NAME
        for role in TENSOR_OUTPUT_ROLES
        if role in outputs
    )


def metadata_outputs(contract: ModelContract) -> dict:
    """The contract's outputs as the ONNX model names them (the heatmap grid kept as is)."""
    outputs = {"probability": OUTPUT_NAME}
    if "heatmap" in contract.outputs:
        outputs["heatmap"] = "heatmap"
        outputs.update(
            {key: value for key, value in contract.outputs.items() if key.startswith("heatmap_")}
        )
    return outputs


def recorded_threshold(metrics: dict) -> ThresholdChoice | None:
    """Without out-of-fold predictions: the fixed threshold the evaluation itself used.

    Taken only when metrics.json states both the threshold and how it was chosen.
    """
    threshold, method = metrics.get("threshold"), metrics.get("threshold_method")
    if not isinstance(threshold, (int, float)) or not isinstance(method, str):
        return None
    if not 0.0 <= threshold <= 1.0:
        raise ExportError(f"metrics.json threshold {threshold} is not in [0, 1]")
    return ThresholdChoice(
        threshold=float(threshold),
        method=f"{method} (from metrics.json)",
        sensitivity=float(metrics.get("sensitivity", float("nan"))),
        specificity=float(metrics.get("specificity", float("nan"))),
    )


def threshold_warnings(threshold: ThresholdChoice | None, metrics: dict) -> list[str]:
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
