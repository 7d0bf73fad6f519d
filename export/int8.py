"""``python -m export int8``: an exported FP32 ONNX model -> ``<name>-int8`` through the gate.

For a model already exported (and shipped) whose INT8 twin was refused or never made: the
FP32 file is read as it is (its bytes never change), quantised with its architecture's
recipe (``export.quantize.RECIPES``: lite0 keeps its first convolution and its head in
FP32, with entropy ranges), and both are scored on the gate's images: the out-of-fold
images of ``--predictions`` (else every image of ``--data``). The INT8 file is written only
when |ΔAUC| ≤ ``AUC_TOLERANCE``; with ``--ship`` it joins the models folder's manifest as
``<name>-int8`` and the model card and ``<name>.export.json`` say what was kept in FP32.

Example (how ``lite0-int8`` was made)::

    python -m export int8 --onnx mammo_edge/models/lite0.onnx \\
        --predictions reports/lesion/predictions.csv --ship \\
        --card-notes reports/lesion/card_notes.md --report reports/int8/lite0-int8.json
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import shlex
import sys
from dataclasses import asdict
from pathlib import Path

from .errors import ExportError
from .ship import DEFAULT_DATA

NOTE = (
    "FP32 and INT8 are the same trained model, scored on the gate's image set; the "
    "calibration images are among them. Only the difference of the AUCs is meaningful."
)


def build_parser() -> argparse.ArgumentParser:
    """The command-line interface of ``python -m export int8``."""
    parser = argparse.ArgumentParser(
        prog="python -m export int8",
        description="Quantise an exported FP32 model to <name>-int8 and keep it only if its "
        "AUC stays within the export's limit of FP32's.",
        epilog=__doc__.split("Example", 1)[1],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--onnx", type=Path, required=True, help="the exported FP32 .onnx file")
    parser.add_argument(
        "--name", help="the model's name (default: the file's stem); the twin is NAME-int8"
    )
    parser.add_argument(
        "--data",
        type=Path,
        default=DEFAULT_DATA,
        help="MIAS folder or all-mias.tar.gz: calibration and gate images (default: %(default)s)",
    )
    parser.add_argument(
        "--predictions",
        type=Path,
        help="out-of-fold predictions.csv: the gate scores its images (default: all of --data)",
    )
    parser.add_argument(
        "--recipe", help="quantisation recipe (default: the model's architecture's; seed, lite0)"
    )
    parser.add_argument(
        "--ship",
        action="store_true",
        help="add NAME-int8 to the manifest.json beside --onnx, update NAME.export.json and "
        "re-render MODEL_CARD.NAME.md",
    )
    parser.add_argument("--card-notes", type=Path, help="with --ship: the card's notes")
    parser.add_argument("--report", type=Path, help="also write the gate's report (JSON) here")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run it; exit code 0 when the INT8 model was written, 1 when refused or failed."""
    argv = sys.argv[1:] if argv is None else list(argv)
    arguments = build_parser().parse_args(argv)
    try:
        report = quantize_exported(
            onnx_path=arguments.onnx,
            name=arguments.name or arguments.onnx.stem,
            data_path=arguments.data,
            predictions_path=arguments.predictions,
            recipe_name=arguments.recipe,
            ship=arguments.ship,
            card_notes_path=arguments.card_notes,
            command="python -m export int8 " + shlex.join(argv),
        )
    except ExportError as error:
        print(f"int8 failed: {error}", file=sys.stderr)
        return 1
    if arguments.report:
        arguments.report.parent.mkdir(parents=True, exist_ok=True)
        arguments.report.write_text(json.dumps(report, indent=2) + "\n")
    verdict = f"wrote {report['file']}" if report["accepted"] else "REFUSED, nothing written"
    print(
        f"{report['name']}: {verdict}; ΔAUC {report['delta_auc']:+.4f} "
        f"(limit ±{report['auc_tolerance']}), max |Δp| {report['max_abs_difference']:.3g}, "
        f"mean |Δp| {report['mean_abs_difference']:.3g}, labels agree on "
        f"{100 * report['label_agreement']:.1f}% on {report['image_source']}; recipe "
        f"{report['recipe']['name']} ({len(report['fp32_nodes'])} nodes kept in FP32)"
    )
    return 0 if report["accepted"] else 1


def quantize_exported(
    onnx_path: Path,
    name: str,
    data_path: Path,
    predictions_path: Path | None = None,
    recipe_name: str | None = None,
    ship: bool = False,
    card_notes_path: Path | None = None,
    command: str = "",
) -> dict:
    """Quantise the FP32 model at ``onnx_path``, gate it, write (and ship) ``NAME-int8``.

    Returns:
        The gate's report: the :class:`~export.quantize.Int8Agreement` fields, ``accepted``,
        the recipe, the nodes kept in FP32, ``file`` and ``sha256`` (``None`` if refused).

    Raises:
        ExportError: unreadable model or data, unknown recipe, predictions from other data.
    """
    import onnx

    from mammo_edge.model.metadata import MetadataError, ModelMetadata

    from .images import load_mias_batch
    from .pipeline import save_atomically
    from .provenance import file_sha256, read_metadata_props
    from .quantize import RECIPES, compare_int8, quantize_with_recipe, recipe_for
    from .ship import int8_name
    from .threshold import read_predictions

    if not onnx_path.is_file():
        raise ExportError(f"{onnx_path}: no such file; pass an exported .onnx model")
    fp32_model = onnx.load(str(onnx_path))
    try:
        metadata = ModelMetadata.from_props(read_metadata_props(fp32_model), source=str(onnx_path))
    except MetadataError as error:
        raise ExportError(str(error)) from None
    if recipe_name is not None and recipe_name not in RECIPES:
        raise ExportError(f"unknown recipe {recipe_name!r}; known: {', '.join(RECIPES)}")
    recipe = RECIPES[recipe_name] if recipe_name else recipe_for(metadata.arch)
    twin = int8_name(name)
    int8_metadata = dataclasses.replace(metadata, model_name=int8_name(metadata.model_name))
    int8_path = onnx_path.with_name(f"{twin}.onnx")

    data = load_mias_batch(data_path, metadata.preprocess)
    evaluation, source = data, f"all {len(data.batch)} images of {data.source}"
    if predictions_path is not None:
        predictions = read_predictions(predictions_path)
        evaluation = data.subset(predictions.images)
        if not (evaluation.labels == predictions.labels).all():
            raise ExportError(f"labels in {predictions_path} disagree with {data.source}")
        source = f"the {len(evaluation.batch)} out-of-fold images of {predictions_path}"
    int8_model, fp32_nodes = quantize_with_recipe(fp32_model, data.batch, int8_metadata, recipe)
    agreement = compare_int8(
        fp32_model, int8_model, evaluation.batch, evaluation.labels, metadata.threshold, source
    )
    report = {
        "name": twin,
        **asdict(agreement),
        "accepted": agreement.accepted,
        "recipe": asdict(recipe),
        "fp32_nodes": fp32_nodes,
        "fp32_source": str(onnx_path),
        "fp32_sha256": file_sha256(onnx_path),
        "command": command or "(command not recorded)",
        "note": NOTE,
        "file": None,
        "sha256": None,
    }
    if not agreement.accepted:
        return report
    save_atomically(int8_model, int8_path)
    report.update(file=str(int8_path), sha256=file_sha256(int8_path))
    if ship:
        _ship_twin(onnx_path.parent, name, int8_path, int8_metadata, report, card_notes_path)
    return report


def _ship_twin(
    folder: Path,
    name: str,
    int8_path: Path,
    int8_metadata,
    report: dict,
    card_notes_path: Path | None,
) -> None:
    """Add the twin to the manifest, record it in ``NAME.export.json``, refresh the card."""
    from .card import refresh_model_card
    from .ship import manifest_entry, merge_manifest, model_card_name, verify_shipped

    entry = manifest_entry(
        int8_path,
        int8_metadata,
        f"INT8 (QDQ, per-channel, {report['recipe']['name']} recipe) of {name}; "
        f"ΔAUC {report['delta_auc']:+.4f} vs FP32",
        model_card_name(name),
    )
    merge_manifest(folder, {int8_path.stem: entry})
    verify_shipped(folder, int8_path.stem)
    export_report_path = folder / f"{name}.export.json"
    if export_report_path.exists():
        export_report = json.loads(export_report_path.read_text())
        export_report["int8"] = report
        export_report.setdefault("shipped", {})[int8_path.stem] = asdict(entry)
        export_report_path.write_text(json.dumps(export_report, indent=2) + "\n")
        refresh_model_card(folder, name, card_notes_path)
