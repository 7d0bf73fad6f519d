"""The ``calibration`` block a calibrated model carries, and how it reads.

:class:`Calibration` is written once, by ``mammo-edge calibrate``, into the model's
``metadata_props`` under :data:`CALIBRATION_KEY` (JSON; ``nan``
stored as ``null``), and read back by :func:`calibration_of` for ``mammo-edge info``. Its
words (:func:`figures_table`, :func:`info_lines`) are the same on the terminal, in the
model card and in ``info``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass

from mammo_edge.calibration.figures import ModeFigures
from mammo_edge.calibration.fitting import MODE_TITLES

#: The metadata_props key of the :class:`Calibration` record (JSON).
CALIBRATION_KEY = "mammo_edge.calibration"


@dataclass(frozen=True)
class Calibration:
    """What a calibration used and measured.

    Attributes:
        labels_file: the labels file as given; ``labels_sha256`` its bytes' SHA-256.
        images, patients, abnormal_images, normal_images, paired_images: the labelled,
            scored images used (paired: the other breast scored too).
        folds: patient folds of the cross-fitting; ``fold_rule`` how patients were dealt.
        base_model: the base model's name as chosen (manifest name or file stem), with its
            metadata name and version and the SHA-256 of its file.
        created: UTC time, ISO 8601; ``mammo_edge_version`` the version that calibrated.
        refitted: heads refitted (``pair``, ``single``); ``kept``: modes left as shipped.
        before, after: figures per scoring mode (:mod:`mammo_edge.calibration_figures`).
    """

    labels_file: str
    labels_sha256: str
    images: int
    patients: int
    abnormal_images: int
    normal_images: int
    paired_images: int
    folds: int
    fold_rule: str
    base_model: str
    base_model_name: str
    base_model_version: str
    base_sha256: str
    created: str
    mammo_edge_version: str
    refitted: tuple[str, ...]
    kept: tuple[str, ...]
    before: dict[str, ModeFigures]
    after: dict[str, ModeFigures]

    def as_dict(self) -> dict:
        """Plain JSON-ready values (``nan`` as ``None``)."""
        return _json_safe(asdict(self))

    def to_prop(self) -> str:
        return json.dumps(self.as_dict(), sort_keys=True, allow_nan=False)

    @classmethod
    def from_dict(cls, values: Mapping) -> Calibration:
        data = dict(values)
        data["refitted"] = tuple(data.get("refitted", ()))
        data["kept"] = tuple(data.get("kept", ()))
        for side in ("before", "after"):
            data[side] = {mode: ModeFigures.from_dict(f) for mode, f in data[side].items()}
        return cls(**data)


def calibration_of(props: Mapping[str, str]) -> Calibration | None:
    """The model's calibration block, or ``None`` for a model never calibrated.

    Raises:
        ValueError: the block is there but malformed.
    """
    text = props.get(CALIBRATION_KEY)
    if not text:
        return None
    try:
        return Calibration.from_dict(json.loads(text))
    except (KeyError, TypeError, ValueError) as error:
        raise ValueError(f"the model's calibration block is malformed: {error!r}") from None


def figures_table(calibration: Calibration) -> str:
    """The before/after figures as a Markdown table (terminal, card)."""
    lines = [
        "| scoring | point | model | threshold | AUC (95% CI) | sensitivity (95% CI) "
        "| specificity (95% CI) | balanced accuracy (95% CI) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    sides = (
        ("before", f"before: {calibration.base_model} as shipped"),
        ("after", "after: calibrated, cross-fitted"),
    )
    for mode, after in calibration.after.items():
        before = calibration.before[mode]
        names = list(after.points) + [n for n in before.points if n not in after.points]
        for name in names:  # each point before, then after
            for side, words in sides:
                figures = before if side == "before" else after
                point = figures.points.get(name)
                if point is None:
                    continue
                lines.append(
                    f"| {mode} ({figures.images} images) | {name} | {words} "
                    f"| {point.threshold:.4f} | {_with_interval(figures.auc, figures.auc_ci95)} "
                    f"| {_with_interval(point.sensitivity, point.sensitivity_ci95)} "
                    f"| {_with_interval(point.specificity, point.specificity_ci95)} "
                    f"| {_with_interval(point.balanced_accuracy, point.balanced_accuracy_ci95)} |"
                )
    return "\n".join(lines)


def summary_line(calibration: Calibration) -> str:
    """One sentence: what the figures are measured on and how."""
    return (
        f"Site figures on {calibration.images} labelled images of {calibration.patients} "
        f"patients ({calibration.abnormal_images} abnormal, {calibration.paired_images} with "
        f"the other breast) from {calibration.labels_file} (sha256 "
        f"{calibration.labels_sha256[:12]}...). Before: the base model's shipped heads and "
        f"points, nothing fitted. After: heads and thresholds refitted inside "
        f"{calibration.folds} patient folds, each fold judged by what the others chose "
        "(out of sample). Intervals: 95% patient bootstrap."
    )


def calibration_block(props: Mapping[str, str]) -> dict | None:
    """The calibration block as plain values for ``info --json`` (``None``: never
    calibrated; ``{"error": ...}`` when malformed, so ``info`` still describes the model)."""
    try:
        calibration = calibration_of(props)
    except ValueError as error:
        return {"error": str(error)}
    return None if calibration is None else calibration.as_dict()


def info_lines(block: dict | None) -> list[str]:
    """What ``mammo-edge info --model DIR`` prints about :func:`calibration_block`."""
    if not block:
        return []
    if "error" in block:
        return [f"calibration:      ERROR: {block['error']}"]
    calibration = Calibration.from_dict(block)
    refitted = ", ".join(f"{name} head" for name in calibration.refitted) or "no head"
    lines = [
        f"calibration:      {calibration.created} by mammo-edge {calibration.mammo_edge_version}"
        f" on {calibration.images} images, {calibration.patients} patients, "
        f"{calibration.abnormal_images} abnormal",
        f"  labels:         {calibration.labels_file} (sha256 {calibration.labels_sha256})",
        f"  base model:     {calibration.base_model} ({calibration.base_model_name} "
        f"{calibration.base_model_version}, sha256 {calibration.base_sha256})",
        f"  refitted:       {refitted}; operating points cross-fitted by patient, "
        f"{calibration.folds} folds"
        + (f"; kept as shipped: {', '.join(calibration.kept)}" if calibration.kept else ""),
    ]
    for mode, after in calibration.after.items():
        before = calibration.before[mode]
        lines.append(f"  {MODE_TITLES.get(mode, mode)}: AUC {before.auc:.3f} -> {after.auc:.3f}")
        for name, point in after.points.items():
            was = before.points.get(name)
            old = f"{was.balanced_accuracy:.3f}" if was else "-"
            lines.append(
                f"    {name:<9} balanced accuracy {old} -> {point.balanced_accuracy:.3f} "
                f"(sensitivity {point.sensitivity:.3f}, specificity {point.specificity:.3f})"
            )
    return lines


def _with_interval(value: float, interval: tuple[float, float]) -> str:
    if value is None or math.isnan(value):
        return "n/a"
    low, high = interval
    if low is None or math.isnan(low):
        return f"{value:.3f}"
    return f"{value:.3f} ({low:.3f}–{high:.3f})"


def _json_safe(value):
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {key: _json_safe(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(item) for item in value]
    return value
