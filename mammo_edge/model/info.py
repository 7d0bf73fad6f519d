"""What ``mammo-edge info`` says about models: the shipped list, one model's details, as text.

:func:`list_models` and :func:`describe_model` gather the facts (manifest, metadata, the
model card's summary, providers); :func:`listing_as_text` and :func:`as_text` word them,
with each model's cross-validated figures by :func:`metrics_summary`.
"""

from __future__ import annotations

import json
from pathlib import Path

#: Longest model-card summary printed, in characters.
CARD_SUMMARY_CHARS = 1200


#: The metadata fields ``mammo-edge info`` lists for every shipped model.
LISTED_METADATA = (
    "model_name",
    "model_version",
    "arch",
    "threshold",
    "threshold_method",
    "training_protocol",
    "cv_metrics",
    "operating_points",
)


def list_models(directory: Path | None = None) -> dict:
    """Every model of the manifest in ``directory`` (the installed one by default).

    Each model is loaded on CPU and checked against its SHA-256; one that fails is listed
    with its error instead of stopping the listing.

    Raises:
        ModelError: there is no readable manifest.
    """
    import onnxruntime

    from mammo_edge import __version__
    from mammo_edge.errors import ModelError
    from mammo_edge.model.providers import available_providers, providers_for
    from mammo_edge.model.registry import MODELS_DIR, read_manifest, shipped_models
    from mammo_edge.predictor import Predictor

    directory = MODELS_DIR if directory is None else Path(directory)
    manifest = read_manifest(directory)
    models = []
    for model_file in shipped_models(directory):
        entry = {
            "name": model_file.name,
            "default": model_file.name == manifest["default"],
            "path": str(model_file.path),
            "description": model_file.description,
            "size_bytes": model_file.path.stat().st_size if model_file.path.is_file() else None,
            "model_card": str(model_file.model_card) if model_file.model_card else None,
        }
        try:
            predictor = Predictor(model_file.path, device="cpu")
        except ModelError as error:
            entry["error"] = str(error)
        else:
            entry.update(
                provider=predictor.provider,
                sha256=predictor.model_sha256,
                sha256_verified=predictor.sha256_verified,
                **{name: getattr(predictor.metadata, name) for name in LISTED_METADATA},
            )
        models.append(entry)
    aliases = manifest.get("aliases", {})
    return {
        "mammo_edge_version": __version__,
        "onnxruntime_version": onnxruntime.__version__,
        "models_dir": str(directory),
        "default": manifest["default"],
        "models": models,
        "aliases": aliases,
        "providers": {
            "available": available_providers(),
            "auto": providers_for("auto")[0],
            "ran": sorted({model["provider"] for model in models if "provider" in model}),
        },
    }


def describe_model(model: str | None = None) -> dict:
    """Load the model on CPU and collect everything ``info`` prints, as plain values."""
    import onnxruntime

    from mammo_edge import __version__
    from mammo_edge.calibration.record import calibration_block
    from mammo_edge.model.providers import available_providers, providers_for
    from mammo_edge.predictor import Predictor

    predictor = Predictor(model, device="cpu")
    session = predictor.session
    card = predictor.model_file.model_card
    return {
        "mammo_edge_version": __version__,
        "onnxruntime_version": onnxruntime.__version__,
        "model": {
            "name": predictor.model_file.name,
            "path": str(predictor.model_file.path),
            "sha256": predictor.model_sha256,
            "sha256_verified": predictor.sha256_verified,
            "description": predictor.model_file.description,
        },
        "metadata": predictor.metadata.as_dict(),
        "calibration": calibration_block(session.get_modelmeta().custom_metadata_map),
        "input": [{"name": i.name, "shape": i.shape, "type": i.type} for i in session.get_inputs()],
        "output": [
            {"name": o.name, "shape": o.shape, "type": o.type} for o in session.get_outputs()
        ],
        "model_card": {
            "path": str(card) if card else None,
            "summary": summarize_model_card(card) if card else None,
        },
        "providers": {
            "available": available_providers(),
            "auto": providers_for("auto")[0],
            "ran": predictor.provider,
        },
    }


def summarize_model_card(card: Path, limit: int = CARD_SUMMARY_CHARS) -> str:
    """The model card's opening: text after the title up to the second section heading."""
    lines = card.read_text(encoding="utf-8").splitlines()
    if lines and lines[0].startswith("# "):
        lines = lines[1:]
    kept: list[str] = []
    headings = 0
    for line in lines:
        if line.startswith("## "):
            headings += 1
            if headings == 2 or (headings == 1 and any(text.strip() for text in kept)):
                break
        kept.append(line)
    summary = "\n".join(kept).strip()
    if len(summary) > limit:
        summary = summary[:limit].rsplit(" ", 1)[0] + " ..."
    return summary


def metrics_summary(
    metrics: dict, model_threshold: float | None = None, training_protocol: str = ""
) -> str:
    """One line of the headline CV figures; the full dict is in ``--json``.

    Figures measured on images the model was fitted on are said to be in-sample before
    any number, and figures at a threshold other than the model's own say so.
    """
    if not metrics:
        return "none recorded"

    def number(key: str) -> str:
        value = metrics.get(key)
        return f"{value:.3f}" if isinstance(value, int | float) else "n/a"

    parts = []
    if "auc" in metrics:
        interval = metrics.get("auc_ci95") or []
        ci = (
            f" (95% CI {interval[0]:.3f}-{interval[1]:.3f})"
            if len(interval) == 2 and None not in interval
            else ""
        )
        parts.append(f"AUC {number('auc')}{ci}")
    if "accuracy" in metrics:
        parts.append(
            f"accuracy {number('accuracy')} vs always-normal {number('always_normal_accuracy')}"
        )
    if "balanced_accuracy" in metrics:
        parts.append(f"balanced accuracy {number('balanced_accuracy')}")
    if "sensitivity" in metrics:
        at = metrics.get("threshold")
        other = (
            f", not the model's {_threshold_text(model_threshold)}"
            if isinstance(at, int | float)
            and model_threshold is not None
            and round(at, 4) != round(model_threshold, 4)
            else ""
        )
        parts.append(
            f"sensitivity {number('sensitivity')} / specificity {number('specificity')} "
            f"at threshold {_threshold_text(at)}{other}"
        )
    summary = "; ".join(parts) or json.dumps(metrics, sort_keys=True)
    if "in-sample" in training_protocol.lower():
        summary = "IN-SAMPLE, not a measure on new images: " + summary
    return summary


def _threshold_text(value) -> str:
    """A threshold as people read it: 4 decimals, trailing zeros dropped (0.4818, 0.5)."""
    if not isinstance(value, int | float):
        return "n/a"
    return f"{value:.4f}".rstrip("0").rstrip(".") if value else "0"


def _points_text(operating_points: dict, indent: str) -> list[str]:
    """One line per named operating point (``--operating-point``), the default marked; a
    pair-head model's single-view points (an image scored alone) follow as ``alone``."""
    lines = []
    blocks = [("point", operating_points)]
    if operating_points.get("single_view"):
        blocks = [("paired", operating_points), ("alone", operating_points["single_view"])]
    for prefix, block in blocks:
        default = block.get("default")
        for name, point in sorted(block.get("points", {}).items()):
            marker = " (default)" if name == default else ""
            label = f"{prefix} {name}{marker}:"
            width = 18 if prefix == "point" else 26
            lines.append(
                f"{indent}{label:<{width}} {_threshold_text(point['threshold'])} "
                f"({point.get('rule', '')}){_point_figures(point)}"
            )
    return lines


def _point_figures(point: dict) -> str:
    if not isinstance(point.get("sensitivity"), int | float):
        return ""
    return (
        f"; out of sample: sensitivity {point['sensitivity']:.3f}, specificity "
        f"{point['specificity']:.3f}, balanced accuracy "
        f"{point.get('balanced_accuracy', float('nan')):.3f}"
    )


def _single_view_text(cv_metrics: dict) -> list[str]:
    """The single-view figures of a pair-head model (an image scored alone), if recorded."""
    single = cv_metrics.get("single_view") or {}
    if "auc" not in single:
        return []
    low, high = single.get("auc_ci95") or (float("nan"), float("nan"))
    return [f"scored alone:     AUC {single['auc']:.3f} (95% CI {low:.3f}-{high:.3f})"]


def listing_as_text(listing: dict) -> str:
    lines = [
        f"mammo-edge {listing['mammo_edge_version']} "
        f"(onnxruntime {listing['onnxruntime_version']})",
        f"Shipped models in {listing['models_dir']} (* = default; select with --model NAME):",
    ]
    for model in listing["models"]:
        marker = "*" if model["default"] else " "
        lines.append(f"{marker} {model['name']}")
        if "error" in model:
            lines.append(f"    ERROR: {model['error']}")
            continue
        size = model["size_bytes"] or 0
        verified = "verified" if model["sha256_verified"] else "NOT in a manifest"
        lines += [
            f"    {model['model_name']} {model['model_version']}"
            + (f", arch {model['arch']}" if model["arch"] else "")
            + f"; {size / 1e6:.2f} MB; sha256 {model['sha256'][:12]}... ({verified})",
            "    figures:   "
            + metrics_summary(model["cv_metrics"], model["threshold"], model["training_protocol"]),
            f"    threshold: {_threshold_text(model['threshold'])} ({model['threshold_method']})",
            f"    evaluated: {model['training_protocol']}",
            *_points_text(model.get("operating_points") or {}, "    "),
        ]
        if model["description"]:
            lines.append(f"    about:     {model['description']}")
    if listing["aliases"]:
        old = ", ".join(f"{alias} -> {target}" for alias, target in listing["aliases"].items())
        lines.append(f"Deprecated names: {old}")
    lines.append(
        f"providers: {', '.join(listing['providers']['available'])} "
        f"(auto uses {listing['providers']['auto']}; "
        f"each model checked on {', '.join(listing['providers']['ran']) or '-'})"
    )
    lines.append("Details of one model: mammo-edge info --model NAME")
    return "\n".join(lines)


def as_text(details: dict) -> str:
    from mammo_edge.calibration.record import info_lines as calibration_info_lines

    model, metadata = details["model"], details["metadata"]
    verified = "verified against manifest" if model["sha256_verified"] else "not in a manifest"
    preprocess = metadata["preprocess"]
    lines = [
        f"mammo-edge {details['mammo_edge_version']} "
        f"(onnxruntime {details['onnxruntime_version']})",
        f"model:            {model['name']} at {model['path']}",
        f"sha256:           {model['sha256']} ({verified})",
        f"name / version:   {metadata['model_name']} {metadata['model_version']}",
        f"classes:          {' / '.join(metadata['class_names'])}",
        f"threshold:        {_threshold_text(metadata['threshold'])} "
        f"({metadata['threshold_method']})",
        *_points_text(metadata.get("operating_points") or {}, ""),
        f"preprocessing:    {json.dumps(preprocess, sort_keys=True)}",
        f"training:         {metadata['training_protocol']}",
        "cv metrics:       "
        + metrics_summary(
            metadata["cv_metrics"], metadata["threshold"], metadata["training_protocol"]
        ),
        *_single_view_text(metadata["cv_metrics"]),
        f"dataset sha256:   {metadata['dataset_sha256'] or '-'}",
        f"code revision:    {metadata['code_revision'] or '-'}",
        f"created:          {metadata['created'] or '-'}",
        *calibration_info_lines(details.get("calibration")),
        f"providers:        {', '.join(details['providers']['available'])} "
        f"(auto uses {details['providers']['auto']}; "
        f"this check ran on {details['providers']['ran']})",
    ]
    if model["description"]:
        lines.insert(2, f"description:      {model['description']}")
    summary = details["model_card"]["summary"]
    if summary:
        lines += ["", f"Model card ({details['model_card']['path']}):", summary]
    return "\n".join(lines)
