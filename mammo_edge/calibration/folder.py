"""A calibrated model written as a model folder that ``--model DIR`` loads in every verb:
``manifest.json`` (:mod:`mammo_edge.model.registry` writes it), ``NAME.onnx`` and ``MODEL_CARD.md``.

Nothing is written next to shipped models or over anything: the folder must be new (or
empty), it is built beside its place and renamed into it whole.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from mammo_edge.calibration.record import figures_table, summary_line
from mammo_edge.calibration.run import CalibratedModel
from mammo_edge.calibration.site import CalibrationError
from mammo_edge.model.registry import MODEL_CARD_NAME, MODELS_DIR, add_to_manifest


def check_out_folder(out: Path, base_path: Path) -> None:
    """Refuse an output folder that holds anything, or is where shipped models live.

    Raises:
        CalibrationError: naming the folder and what to do.
    """
    out = Path(out)
    resolved = out.resolve()
    protected = {MODELS_DIR.resolve(), Path(base_path).resolve().parent}
    if resolved in protected or MODELS_DIR.resolve() in resolved.parents:
        raise CalibrationError(
            f"{out} holds shipped or base model files; calibrate never writes there. "
            "Give a new folder with --out."
        )
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise CalibrationError(f"{out} exists and is not an empty folder; give a new --out")


def write_model_folder(
    out: Path, calibrated: CalibratedModel, base_card: Path | None = None
) -> list[Path]:
    """Write ``out/`` (manifest.json, NAME.onnx, MODEL_CARD.md) all at once: it is built
    beside ``out`` and renamed into place, so a failure leaves nothing behind.

    Returns:
        The files written.
    """
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = out.parent / f".{out.name}.calibrating-{os.getpid()}"
    file_name = f"{calibrated.name}.onnx"
    try:
        staging.mkdir()
        (staging / file_name).write_bytes(calibrated.model_bytes)
        card = base_card.read_text(encoding="utf-8") if base_card else ""
        (staging / MODEL_CARD_NAME).write_text(model_card(calibrated, card), encoding="utf-8")
        calibration = calibrated.calibration
        description = (
            f"{calibration.base_model} calibrated on {calibration.images} site images "
            f"({calibration.created[:10]}); threshold {calibrated.metadata.threshold:.4f}"
        )
        entry = {
            "file": file_name,
            "sha256": calibrated.sha256,
            "model_name": calibrated.metadata.model_name,
            "model_version": calibrated.metadata.model_version,
            "description": description,
            "model_card": MODEL_CARD_NAME,
        }
        add_to_manifest(staging, {calibrated.name: entry}, make_default=True)
        if out.exists():
            out.rmdir()  # empty (check_out_folder); replaced by the finished folder
        os.replace(staging, out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return [out / "manifest.json", out / file_name, out / MODEL_CARD_NAME]


def model_card(calibrated: CalibratedModel, base_card: str = "") -> str:
    """The calibrated model's card: what changed, the site's figures, then the base's card."""
    calibration = calibrated.calibration
    kept = (
        f" Kept as shipped (too few paired images): {', '.join(calibration.kept)}."
        if calibration.kept
        else ""
    )
    refitted = ", ".join(f"the {name} head" for name in calibration.refitted)
    lines = [
        f"# Model card: {calibrated.name} ({calibration.base_model} calibrated to a site)",
        "",
        f"`{calibration.base_model}`'s network, byte for byte, with {refitted or 'no head'} "
        f"and the `triage` and `balanced` operating points refitted on "
        f"{calibration.images} labelled images of one site by `mammo-edge calibrate` "
        f"({calibration.created}, mammo-edge {calibration.mammo_edge_version}).{kept} "
        "**Research use only. Not a medical device.**",
        "",
        "## Site figures, before and after",
        "",
        summary_line(calibration),
        "",
        figures_table(calibration),
        "",
        "## What changed",
        "",
        f"- Network: unchanged; the file is `{calibration.base_model}`'s (sha256 "
        f"{calibration.base_sha256}) with new metadata only, so its own SHA-256 is "
        f"{calibrated.sha256}.",
        f"- Labels: `{calibration.labels_file}` (sha256 {calibration.labels_sha256}).",
        f"- Folds: {calibration.folds}, {calibration.fold_rule}.",
        "- The figures describe images like these, from this site; with few images their "
        "intervals are wide. Calibrate again when scanners or protocols change.",
        "",
    ]
    if base_card:
        demoted = [
            ("#" + line) if line.startswith("#") else line for line in base_card.splitlines()
        ]
        lines += [f"## The base model's card ({calibration.base_model})", "", *demoted, ""]
    return "\n".join(lines)
