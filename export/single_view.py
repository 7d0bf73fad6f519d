"""Give a shipped pair-head model (and its INT8 twin) its single-view head and points.

``python -m export single-view NAME --from reports/single-view/single_view.json`` writes
into the shipped ONNX files' metadata what ``python -m train single-view`` fitted: the
``single`` head beside the ``pair`` head, the ``single_view`` operating points beside the
paired ones, and the single-view figures in ``cv_metrics.single_view`` (what ``mammo-edge
info`` and the card show). The graph is untouched (the network's bytes are the same); the
metadata is new, so each file's SHA-256 is new: the manifest and the export reports are
updated, and the card is rendered again from the new metadata.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from dataclasses import replace
from pathlib import Path

from mammo_edge.model.metadata import ModelMetadata
from mammo_edge.model.registry import MODELS_DIR

from .card import refresh_model_card
from .errors import ExportError
from .provenance import attach_metadata, file_sha256, read_metadata_props
from .ship import int8_name, manifest_entry, merge_manifest


def with_single_view(metadata: ModelMetadata, fitted: dict) -> ModelMetadata:
    """``metadata`` with the fitted single-view head, points and figures added.

    Raises:
        ExportError: the model has no pair head (a single-view head is then its only head).
    """
    if "pair" not in metadata.head:
        raise ExportError(f"{metadata.model_name} has no pair head: it scores one image already")
    single = fitted["single_view"]
    figures = {
        "auc": single["auc"],
        "auc_ci95": single["auc_ci95"],
        "per_repeat_auc": single["per_repeat_auc"],
        "operating_points_out_of_sample": single["operating_points_out_of_sample"],
        "protocol": fitted["source"] + "; each image scored alone",
    }
    return replace(
        metadata,
        head={**metadata.head, "single": fitted["head"]["single"]},
        operating_points={
            **metadata.operating_points,
            "single_view": fitted["operating_points"]["single_view"],
        },
        cv_metrics={
            **metadata.cv_metrics,
            "single_view": figures,
            "both_breasts_abnormal": fitted["both_breasts_abnormal"],
        },
    )


def rewrite(folder: Path, name: str, fitted: dict) -> str:
    """Rewrite ``folder/NAME.onnx``'s metadata; returns the new SHA-256."""
    import onnx

    path = folder / f"{name}.onnx"
    model = onnx.load(str(path), load_external_data=False)
    metadata = ModelMetadata.from_props(read_metadata_props(model), source=str(path))
    attach_metadata(model, with_single_view(metadata, fitted))
    onnx.save(model, str(path))
    return file_sha256(path)


def _update_reports(folder: Path, name: str, sha256: str, command: str) -> None:
    """The export report (``NAME.export.json``) of a model or the twin entry in its base's."""
    report_path = folder / f"{name}.export.json"
    if not report_path.exists():
        return
    report = json.loads(report_path.read_text())
    report["onnx_sha256"] = sha256
    report["single_view"] = {"command": command, "onnx_sha256": sha256}
    report_path.write_text(json.dumps(report, indent=2) + "\n")


def add_single_view(
    folder: Path, name: str, fitted: dict, notes: Path | None, command: str = ""
) -> list[str]:
    """Give ``name`` and its INT8 twin (when shipped) the single-view head; the names done.

    ``command`` is recorded in each model's export report (how the head got there).
    """
    manifest = json.loads((folder / "manifest.json").read_text())["models"]
    done = []
    for model_name in (name, int8_name(name)):
        if model_name not in manifest:
            continue
        sha256 = rewrite(folder, model_name, fitted)
        entry = manifest[model_name]
        path = folder / entry["file"]
        metadata = ModelMetadata.from_props(_props(path), source=str(path))
        merge_manifest(
            folder,
            {model_name: manifest_entry(path, metadata, entry["description"], entry["model_card"])},
        )
        _update_reports(folder, model_name, sha256, command)
        done.append(model_name)
    refresh_model_card(folder, name, notes)
    return done


def _props(path: Path) -> dict[str, str]:
    import onnx

    return read_metadata_props(onnx.load(str(path), load_external_data=False))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m export single-view", description=__doc__)
    parser.add_argument("name", help="shipped pair-head model, e.g. lite0-pair")
    parser.add_argument(
        "--from",
        dest="fitted",
        type=Path,
        default=Path("reports/single-view/single_view.json"),
        help="`python -m train single-view`'s output",
    )
    parser.add_argument("--card-notes", type=Path, help="the card's notes, rendered again")
    parser.add_argument("--folder", type=Path, default=MODELS_DIR, help="models folder")
    argv = sys.argv[1:] if argv is None else list(argv)
    arguments = parser.parse_args(argv)
    try:
        fitted = json.loads(arguments.fitted.read_text())
        command = shlex.join(["python", "-m", "export", "single-view", *argv])
        done = add_single_view(
            arguments.folder, arguments.name, fitted, arguments.card_notes, command
        )
    except (ExportError, OSError, KeyError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(f"single-view head and points written into: {', '.join(done)}")
    return 0
