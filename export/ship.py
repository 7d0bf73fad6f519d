"""Shipping a model into a models folder: manifest entries, verification, and its model card.

Several models ship side by side in ``mammo_edge/models/``; each has a name (``seed``),
an optional INT8 twin (``seed-int8``) and a card ``MODEL_CARD.<name>.md``. The manifest
format and its reading belong to ``mammo_edge.model.registry``; this module only builds entries
and the card text, and merges entries in through the registry.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

from mammo_edge.errors import ModelError
from mammo_edge.model.metadata import ModelMetadata
from mammo_edge.model.registry import add_to_manifest, manifest_model, read_verified

from .errors import ExportError
from .provenance import file_sha256

REPOSITORY = Path(__file__).resolve().parent.parent
#: The data the shipped models are trained and checked on (the repository's sibling shared/).
DEFAULT_DATA = REPOSITORY.parent / "shared" / "mias" / "all-mias.tar.gz"
#: Suffix of an INT8 twin's name and file stem.
INT8_SUFFIX = "-int8"
#: Numbers in metrics.json that describe the run rather than the model's performance.
_NOT_METRICS = {"threshold", "elapsed_seconds", "seed"}


@dataclass(frozen=True)
class ManifestEntry:
    """One shipped model file and the SHA-256 the runtime checks before loading it."""

    file: str
    sha256: str
    model_name: str
    model_version: str
    description: str
    model_card: str


def model_card_name(name: str) -> str:
    """File name of the card of the model called ``name`` (shared by its INT8 twin)."""
    return f"MODEL_CARD.{name}.md"


def int8_name(name: str) -> str:
    """Manifest name (and file stem) of the INT8 twin of ``name``."""
    return f"{name}{INT8_SUFFIX}"


def manifest_entry(
    path: Path, metadata: ModelMetadata, description: str, model_card: str
) -> ManifestEntry:
    """Describe the model file at ``path`` (hashing its bytes as they are now)."""
    return ManifestEntry(
        file=path.name,
        sha256=file_sha256(path),
        model_name=metadata.model_name,
        model_version=metadata.model_version,
        description=description,
        model_card=model_card,
    )


def merge_manifest(
    folder: Path,
    entries: dict[str, ManifestEntry],
    make_default: bool = False,
    remove: tuple[str, ...] = (),
) -> Path:
    """Add ``entries`` to ``folder/manifest.json`` beside the models already there."""
    try:
        return add_to_manifest(
            folder,
            {name: asdict(entry) for name, entry in entries.items()},
            make_default=make_default,
            remove=remove,
        )
    except ModelError as error:
        raise ExportError(str(error)) from None


def verify_shipped(folder: Path, name: str | None = None) -> Path:
    """Check one shipped model against its manifest, as the runtime will, and return its path.

    Args:
        folder: the models folder holding manifest.json.
        name: manifest name (e.g. "seed", "seed-int8"); the manifest's default when None.

    Raises:
        ExportError: no manifest, unknown name, missing file, or the file's SHA-256
            differs from the manifest (the bytes were altered or replaced).
    """
    try:
        model_file = manifest_model(Path(folder), name)
        read_verified(model_file)
    except ModelError as error:
        raise ExportError(str(error)) from None
    return model_file.path


def render_model_card(
    metadata: ModelMetadata,
    arch: str,
    parameter_count: int,
    int8_summary: str,
    parity_summary: str,
    dataset_images: int,
    export_command: str,
    notes: str = "",
) -> str:
    """``MODEL_CARD.<name>.md`` text, filled from the model's metadata, contract and checks.

    Args:
        metadata: what the exported model carries (name, preprocessing, threshold, metrics).
        arch: architecture name from the training contract.
        parameter_count: the Keras model's parameter count.
        int8_summary, parity_summary: one paragraph each from the export checks.
        dataset_images: images of the data set the export checked parity on.
        export_command: the command that wrote the model (for regeneration).
        notes: Markdown about this model (how it was trained, its reproduction), if any.
    """
    preprocess = json.dumps(metadata.preprocess.as_dict(), sort_keys=True)
    about = f"\n## About this model\n{notes.strip()}\n" if notes.strip() else ""
    outputs = metadata.outputs or {}
    if "heatmap" in outputs:
        heatmap_line = (
            f"\n- Output `{outputs['heatmap']}`: float32 `[N, h, w, 1]`, the lesion probability "
            f"of each {outputs.get('heatmap_window', '?')}-pixel window of the model input "
            f"(stride {outputs.get('heatmap_stride', '?')}); `mammo-edge explain` draws it."
        )
        localisation_limit = (
            "It answers per image (normal vs any abnormality); its heatmap shows where the "
            "score came from, not a validated lesion detection."
        )
    else:
        heatmap_line = ""
        localisation_limit = (
            "It answers per image (normal vs any abnormality) and does not localise findings "
            "(`mammo-edge explain` falls back to occlusion sensitivity)."
        )
    threshold_limit = (
        "Its operating points' sensitivity and specificity are out of sample: each fold was "
        "judged at the threshold chosen on the other folds (cross-fitted); the shipped "
        "thresholds are those rules on all out-of-fold scores."
        if metadata.operating_points
        else "A threshold chosen on the same predictions the metrics come from makes any "
        "metric at that threshold optimistic; AUC does not depend on it."
    )
    return f"""# Model card: {metadata.model_name} {metadata.model_version}

A `{arch}` network ({parameter_count:,} parameters) that gives the probability that a
mammogram is **abnormal** (any MIAS abnormality: calcification, mass, architectural
distortion, asymmetry) rather than normal.

## Intended use
**Research and teaching only. Not a medical device; not for diagnosis or screening.**
Read its evaluated performance (below) against the always-normal baseline.
{about}
## Data
mini-MIAS, {dataset_images} images checked here: mediolateral-oblique (MLO) views from the
UK National Breast Screening Programme in the early 1990s, film digitised at 200 µm and
reduced to 1024x1024 8-bit PGM. Labels: normal vs any listed abnormality. Dataset
SHA-256: `{metadata.dataset_sha256}`.

Licence: MIAS is provided for scientific research; cite J Suckling et al (1994) "The
Mammographic Image Analysis Society Digital Mammogram Database", Excerpta Medica,
International Congress Series 1069, pp. 375-378. The weights derive from it and carry the
same research-use condition.

## Input and output
- Input `image`: float32 NHWC, one channel, made from an 8-bit grayscale image by
  `mammo_edge.images.preprocess` with this contract (stored in the model's metadata; the runtime
  reads it from there): `{preprocess}`.
- Output `probability`: float32 `[N, 1]`, probability of `{metadata.class_names[1]}`.{heatmap_line}
- Decision threshold {metadata.threshold:.6g}: {metadata.threshold_method}.

## Evaluation ({metadata.training_protocol})
{_metrics_section(metadata.cv_metrics)}

Baseline: always answering "normal" scores the accuracy given as
`always_normal_accuracy` above; compare balanced accuracy and AUC, not accuracy.

Export checks: {parity_summary}

INT8: {int8_summary}

## Known limitations
- Trained on a few hundred digitised **film** images of one 1990s UK population: expect
  it to fail on full-field digital mammography (FFDM), tomosynthesis, other vendors,
  other populations, and on CC views.
- {localisation_limit} With ~260 images the confidence intervals are wide.
- {threshold_limit}

## Provenance
- Architecture: `{arch}`
- Code revision: `{metadata.code_revision}`
- Created: {metadata.created}

## Re-export
```
{export_command}
```
"""


def _metrics_section(metrics: dict) -> str:
    if not metrics:
        return "(no evaluation metrics were given to the export)"
    parts = []
    if isinstance(metrics.get("description"), str):
        parts.append(metrics["description"])
    parts.append(_metrics_table(metrics))
    if "threshold" in metrics:
        parts.append(
            f"Threshold-dependent metrics above are at threshold {metrics['threshold']} "
            f"({metrics.get('threshold_method', 'method not recorded')})."
        )
    youden = metrics.get("youden_on_out_of_fold")
    if isinstance(youden, dict):
        parts.append(
            "At the model's own threshold (Youden J on the same out-of-fold predictions, "
            "therefore optimistic):\n\n" + _metrics_table(youden)
        )
    return "\n\n".join(parts)


def _metrics_table(metrics: dict) -> str:
    rows = ["| metric | value | 95% CI |", "|---|---|---|"]
    for key, value in sorted(metrics.items()):
        if key.endswith("_ci95") or key in _NOT_METRICS or isinstance(value, bool):
            continue
        if not isinstance(value, (int, float)):
            continue
        interval = metrics.get(f"{key}_ci95")
        ci = (
            f"{interval[0]:.3f} - {interval[1]:.3f}"
            if isinstance(interval, (list, tuple)) and len(interval) == 2
            else ""
        )
        rows.append(f"| {key} | {value:.4g} | {ci} |")
    return "\n".join(rows)
