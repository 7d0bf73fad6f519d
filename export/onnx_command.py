"""``python -m export onnx``: a trained Keras model -> verified, self-describing ONNX file(s).

The default command: ``python -m export --model ...`` (first argument an option) runs it.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

from .contract import DEFAULT_OPSET, MINIMUM_OPSET
from .errors import ExportError
from .ship import DEFAULT_DATA

USAGE_EXAMPLE = """\
The model's architecture and preprocessing are read from model_contract.json beside
--model (written by `python -m train`), or from --contract; the export refuses without one.

example (ship the seed CNN beside the other shipped models, as `seed` and `seed-int8`):
  python -m export onnx --model runs/patient/model.keras --out mammo_edge/models/seed.onnx \\
      --name seed --version 0.1.0 --data ../shared/mias/all-mias.tar.gz \\
      --predictions runs/patient/predictions.csv --metrics runs/patient/metrics.json \\
      --int8 --calibration ../shared/mias/all-mias.tar.gz --ship
"""


def build_parser() -> argparse.ArgumentParser:
    """The command-line interface of the export step."""
    parser = argparse.ArgumentParser(
        prog="python -m export onnx",
        description=(
            "Convert a Keras model to ONNX with its metadata, prove parity with Keras on "
            "real MIAS images, optionally quantise to INT8 and ship into mammo_edge/models."
        ),
        epilog=USAGE_EXAMPLE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--model",
        type=Path,
        required=True,
        help="trained model.keras, or a Keras 2 HDF5 file (.h5) with --contract",
    )
    parser.add_argument(
        "--contract",
        type=Path,
        help="model_contract.json (architecture, preprocessing); default: beside --model",
    )
    parser.add_argument("--out", type=Path, required=True, help="ONNX file to write")
    parser.add_argument(
        "--opset", type=int, default=DEFAULT_OPSET, help=f"ONNX opset (>= {MINIMUM_OPSET})"
    )
    parser.add_argument(
        "--data",
        type=Path,
        default=DEFAULT_DATA,
        help="MIAS folder or all-mias.tar.gz, or the dataset manifest (.csv) the model was "
        "trained on: parity images and dataset SHA-256 "
        "(default: %(default)s)",
    )
    parser.add_argument(
        "--predictions", type=Path, help="predictions.csv (out-of-fold) -> decision threshold"
    )
    parser.add_argument(
        "--threshold-rule",
        default="youden",
        help="how --predictions sets the threshold: 'youden' (default) or 'sensitivity:0.90' "
        "(the highest threshold reaching that out-of-fold sensitivity; for triage)",
    )
    _add_shipping_options(parser)
    return parser


def _add_shipping_options(parser: argparse.ArgumentParser) -> None:
    """Metrics, INT8, shipping, the model's name and version, the stacking head."""
    parser.add_argument("--metrics", type=Path, help="metrics.json of the training run")
    parser.add_argument("--int8", action="store_true", help="also write a static INT8 model")
    parser.add_argument(
        "--calibration",
        type=Path,
        help="MIAS training images for INT8 calibration (default: --data)",
    )
    parser.add_argument(
        "--ship",
        action="store_true",
        help="--out is mammo_edge/models/NAME.onnx: add the model (and NAME-int8) to that "
        "folder's manifest.json beside the models already there, and write MODEL_CARD.NAME.md",
    )
    parser.add_argument(
        "--default",
        dest="make_default",
        action="store_true",
        help="with --ship: make this model the manifest's default",
    )
    parser.add_argument(
        "--card-notes", type=Path, help="Markdown about the model, put into its model card"
    )
    parser.add_argument(
        "--name",
        "--model-name",
        dest="model_name",
        metavar="NAME",
        default=None,
        help="model name in the metadata and manifest (default: the contract's architecture)",
    )
    parser.add_argument(
        "--version",
        "--model-version",
        dest="model_version",
        metavar="VERSION",
        default=None,
        help="model version (default: mammo-edge's version)",
    )
    parser.add_argument("--protocol", default="patient", help="used if metrics.json lacks one")
    parser.add_argument(
        "--head",
        type=Path,
        default=None,
        help="head.json of `python -m train` or `python -m train repeated`: the stacking "
        "head(s) and the named "
        "operating points (triage, balanced) the model carries; its default point's "
        "threshold becomes the model's threshold",
    )


def main(argv: list[str] | None = None) -> int:
    """Run the export; returns the process exit code (0 ok, 1 export failed)."""
    argv = sys.argv[1:] if argv is None else list(argv)
    arguments = build_parser().parse_args(argv)
    if arguments.calibration and not arguments.int8:
        print("error: --calibration only makes sense with --int8", file=sys.stderr)
        return 1
    # Imported here so that `--help` answers without loading TensorFlow.
    import mammo_edge

    from .pipeline import ExportOptions, run_export

    options = ExportOptions(
        model_path=arguments.model,
        out_path=arguments.out,
        data_path=arguments.data,
        opset=arguments.opset,
        predictions_path=arguments.predictions,
        threshold_rule=arguments.threshold_rule,
        metrics_path=arguments.metrics,
        int8=arguments.int8,
        calibration_path=arguments.calibration,
        ship=arguments.ship,
        model_name=arguments.model_name,
        model_version=arguments.model_version or mammo_edge.__version__,
        protocol=arguments.protocol,
        contract_path=arguments.contract,
        make_default=arguments.make_default,
        card_notes_path=arguments.card_notes,
        head_path=arguments.head,
        command="python -m export onnx " + shlex.join(argv),
    )
    try:
        result = run_export(options)
    except ExportError as error:
        print(f"export failed: {error}", file=sys.stderr)
        return 1
    _print_summary(result)
    return 0


def _print_summary(result) -> None:
    report = result.report
    transposes = report["transposes"]
    parity = report["parity"]
    print(f"wrote {result.onnx_path} (sha256 {report['onnx_sha256'][:16]}...)")
    print(
        f"  Transpose nodes: {transposes['before_tf2onnx_optimizer']} before tf2onnx's "
        f"optimiser, {transposes['after_tf2onnx_optimizer']} after"
    )
    print(
        f"  parity: max |Δp| {parity['max_abs_difference']:.3g} "
        f"(unoptimised {parity['max_abs_difference_unoptimized']:.3g}, "
        f"limit {parity['tolerance']:g}) on {parity['images']} images"
    )
    threshold = report.get("threshold")
    if threshold:
        print(f"  threshold {threshold['threshold']:.6g}: {threshold['method']}")
    for warning in report["warnings"]:
        print(f"  warning: {warning}")
    int8 = report.get("int8")
    if int8:
        verdict = f"wrote {int8['file']}" if int8["accepted"] else "NOT written (ΔAUC too large)"
        print(
            f"  INT8 {verdict}: ΔAUC {int8['delta_auc']:+.4f} (limit ±{int8['auc_tolerance']}), "
            f"max |Δp| {int8['max_abs_difference']:.3g}, label agreement "
            f"{100 * int8['label_agreement']:.1f}% on {int8['image_source']}"
        )
    if "shipped" in report:
        print(f"  shipped: {', '.join(report['shipped'])} (manifest.json, {report['model_card']})")
    print(f"  report: {result.report_path}")
