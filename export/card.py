"""A shipped model's card: written by the export, re-rendered by ``python -m export card``.

``python -m export card NAME [--card-notes NOTES.md]`` re-renders a shipped model's card.

The card's notes (intended use, ablation table, limits) can grow after a model is shipped
(e.g. when more ablation runs finish). Re-exporting would change the ONNX file's creation
date and so its SHA-256; this re-renders ``MODEL_CARD.<NAME>.md`` from the shipped file's
metadata and its export report instead, leaving the model's bytes untouched.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from mammo_edge.model.metadata import ModelMetadata
from mammo_edge.model.registry import MODELS_DIR

from .errors import ExportError
from .provenance import read_metadata_props
from .ship import model_card_name, render_model_card


def card_text(metadata: ModelMetadata, arch: str, report: dict, notes: str) -> str:
    """The model card of an export, from its metadata and its export report."""
    int8 = report.get("int8")
    twin = f"{metadata.model_name}-int8"
    if int8 is not None and int8.get("file"):
        int8_summary = (
            f"shipped as `{twin}`. On {int8['image_source']}: max |Δp| "
            f"{int8['max_abs_difference']:.3g}, mean |Δp| {int8['mean_abs_difference']:.3g}, "
            f"labels agree on {100 * int8['label_agreement']:.1f}% at the threshold, "
            f"ΔAUC {int8['delta_auc']:+.4f} (limit ±{int8['auc_tolerance']}). "
            "Both are the same trained model, so only the difference of the AUCs matters."
            + _recipe_summary(int8)
        )
    else:
        int8_summary = "not shipped: " + (
            "not requested."
            if int8 is None
            else f"ΔAUC {int8['delta_auc']:+.4f} exceeds ±{int8['auc_tolerance']}."
        )
    parity = report["parity"]
    parity_summary = (
        f"Keras and onnxruntime agree to max |Δp| {parity['max_abs_difference']:.2g} "
        f"(limit {parity['tolerance']:g}) on {parity['image_source']}."
    )
    return render_model_card(
        metadata,
        arch=arch,
        parameter_count=report["parameters"],
        int8_summary=int8_summary,
        parity_summary=parity_summary,
        dataset_images=report["card"]["dataset_images"],
        export_command=report["card"]["export_command"],
        notes=notes,
    )


_ACTIVATIONS = {"QInt8": "signed int8", "QUInt8": "unsigned int8"}


def _recipe_summary(int8: dict) -> str:
    """What the INT8 recipe calibrated on and kept in FP32, for the card ('' for none)."""
    recipe = int8.get("recipe")
    if not recipe:
        return ""
    images = recipe.get("calibration_images") or "all"
    activations = _ACTIVATIONS.get(recipe.get("activation_type"), "int8")
    text = (
        f" Recipe `{recipe['name']}`: QDQ, {activations} activations, "
        f"{recipe['calibration']} ranges calibrated on {images} preprocessed MIAS images; "
        "signed int8 per-channel symmetric weights."
    )
    parts = recipe.get("keep_fp32") or []
    if parts:
        text += (
            f" Kept in FP32: {' and '.join(part.replace('_', ' ') for part in parts)} "
            f"({len(int8.get('fp32_nodes', []))} nodes), because {recipe['why_fp32']}."
        )
    if int8.get("command"):
        text += f" Made by `{int8['command']}`."
    return text


def refresh_model_card(folder: Path, name: str, notes_path: Path | None) -> Path:
    """Re-render ``MODEL_CARD.<name>.md`` from the shipped file's metadata and export report.

    The ONNX file (and so its SHA-256) is untouched: only the card's notes change.
    """
    import onnx

    report_path = folder / f"{name}.export.json"
    report = json.loads(report_path.read_text())
    if "card" not in report:
        raise ExportError(f"{report_path} predates card refreshing; export the model again")
    model = onnx.load(str(folder / f"{name}.onnx"), load_external_data=False)
    metadata = ModelMetadata.from_props(read_metadata_props(model), source=f"{name}.onnx")
    notes = notes_path.read_text() if notes_path else ""
    card = folder / model_card_name(name)
    card.write_text(card_text(metadata, report["contract"]["arch"], report, notes))
    return card


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m export card", description=__doc__)
    parser.add_argument("name", help="shipped model name, e.g. lite0")
    parser.add_argument("--card-notes", type=Path, help="Markdown about the model")
    parser.add_argument("--folder", type=Path, default=MODELS_DIR, help="models folder")
    arguments = parser.parse_args(argv)
    try:
        card = refresh_model_card(arguments.folder, arguments.name, arguments.card_notes)
    except (ExportError, OSError, KeyError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(f"wrote {card}")
    return 0
