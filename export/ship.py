"""The shipped default model: manifest of SHA-256 sums, its verification, and MODEL_CARD.md.

Layout (the contract shared with the runtime, see notes in mammo_edge/models/):
``fp32.onnx``, optionally ``int8.onnx``, ``manifest.json``::

    {"default": "fp32",
     "models": {"fp32": {"file": "fp32.onnx", "sha256": "<hex>", "model_name": "...",
                         "model_version": "...", "description": "..."}, "int8": {...}}}
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

from mammo_edge.metadata import ModelMetadata

from .errors import ExportError
from .provenance import file_sha256

REPOSITORY = Path(__file__).resolve().parent.parent
#: The data the shipped model is trained and checked on (the repository's sibling shared/).
DEFAULT_DATA = REPOSITORY.parent / "shared" / "mias" / "all-mias.tar.gz"
DEFAULT_MODEL_NAME = "mias-seed-cnn"
MANIFEST_NAME = "manifest.json"
MODEL_CARD_NAME = "MODEL_CARD.md"
#: Numbers in metrics.json that describe the run rather than the model's performance.
_NOT_METRICS = {"threshold", "elapsed_seconds", "seed"}
SHIPPED_FILES = {"fp32": "fp32.onnx", "int8": "int8.onnx"}
DEFAULT_MODEL = "fp32"

#: How the shipped model is regenerated; printed in MODEL_CARD.md and docs/export.md.
REGENERATE_COMMANDS = """\
python -m train --data ../shared/mias/all-mias.tar.gz --protocol patient --out runs/patient
python -m export --model runs/patient/model.keras --out mammo_edge/models/fp32.onnx \\
    --data ../shared/mias/all-mias.tar.gz \\
    --predictions runs/patient/predictions.csv --metrics runs/patient/metrics.json \\
    --int8 --calibration ../shared/mias/all-mias.tar.gz --ship"""


@dataclass(frozen=True)
class ManifestEntry:
    """One shipped model file and the SHA-256 the runtime checks before loading it."""

    file: str
    sha256: str
    model_name: str
    model_version: str
    description: str


def manifest_entry(path: Path, metadata: ModelMetadata, description: str) -> ManifestEntry:
    """Describe the model file at ``path`` (hashing its bytes as they are now)."""
    return ManifestEntry(
        file=path.name,
        sha256=file_sha256(path),
        model_name=metadata.model_name,
        model_version=metadata.model_version,
        description=description,
    )


def write_manifest(folder: Path, entries: dict[str, ManifestEntry]) -> Path:
    """Write ``folder/manifest.json`` listing exactly ``entries`` (fp32 is the default)."""
    if DEFAULT_MODEL not in entries:
        raise ExportError(f"a shipped manifest needs a {DEFAULT_MODEL!r} model")
    manifest = {
        "default": DEFAULT_MODEL,
        "models": {name: asdict(entry) for name, entry in sorted(entries.items())},
    }
    path = Path(folder) / MANIFEST_NAME
    path.write_text(json.dumps(manifest, indent=2) + "\n")
    return path


def verify_shipped(folder: Path, name: str | None = None) -> Path:
    """Check one shipped model against its manifest and return its path.

    Args:
        folder: the models folder holding manifest.json.
        name: manifest name (e.g. "fp32", "int8"); the manifest's default when None.

    Raises:
        ExportError: no manifest, unknown name, missing file, or the file's SHA-256
            differs from the manifest (the bytes were altered or replaced).
    """
    folder = Path(folder)
    manifest_path = folder / MANIFEST_NAME
    try:
        manifest = json.loads(manifest_path.read_text())
        models = manifest["models"]
        name = name or manifest["default"]
    except FileNotFoundError:
        raise ExportError(f"{manifest_path}: no manifest; re-run the ship export") from None
    except (json.JSONDecodeError, KeyError, TypeError) as error:
        raise ExportError(f"{manifest_path}: malformed manifest ({error})") from None
    if name not in models:
        raise ExportError(
            f"{manifest_path}: no model named {name!r}; available: {', '.join(sorted(models))}"
        )
    entry = models[name]
    path = folder / entry["file"]
    if not path.is_file():
        raise ExportError(f"{path}: listed in {manifest_path.name} but missing")
    actual = file_sha256(path)
    if actual != entry["sha256"]:
        raise ExportError(
            f"{path}: SHA-256 is {actual} but {manifest_path.name} expects {entry['sha256']}; "
            "the model file was altered or replaced. Reinstall mammo-edge or re-export it."
        )
    return path


def render_model_card(
    metadata: ModelMetadata,
    int8_summary: str,
    parity_summary: str,
    dataset_images: int,
) -> str:
    """MODEL_CARD.md text for the shipped model, filled from its metadata and export checks."""
    metrics = metadata.cv_metrics
    return f"""# Model card: {metadata.model_name} {metadata.model_version}

A small CNN (the "seed" architecture, 117,505 parameters) that gives the probability that a
mammogram is **abnormal** (any MIAS abnormality: calcification, mass, architectural
distortion, asymmetry) rather than normal.

## Intended use
**Research and teaching only. Not a medical device; not for diagnosis or screening.**
It shows how a model travels from Keras to a workstation through ONNX. Read its
cross-validated performance (below) against the always-normal baseline.

## Data
mini-MIAS, {dataset_images} images: mediolateral-oblique
(MLO) views from the UK National Breast Screening Programme in the early 1990s, film
digitised at 200 µm and reduced to 1024x1024 8-bit PGM. Labels: normal vs any listed
abnormality. Dataset SHA-256: `{metadata.dataset_sha256}`.

Licence: MIAS is provided for scientific research; cite J Suckling et al (1994) "The
Mammographic Image Analysis Society Digital Mammogram Database", Excerpta Medica,
International Congress Series 1069, pp. 375-378. The bundled weights derive from it and
carry the same research-use condition.

## Input and output
- Input `image`: float32 `[N, {metadata.preprocess.input_size}, \
{metadata.preprocess.input_size}, 1]` (NHWC), an 8-bit grayscale image resized with
  `{metadata.preprocess.interpolation}` interpolation, values 0..255
  (scale {metadata.preprocess.pixel_scale}, offset {metadata.preprocess.pixel_offset}).
  Use `mammo_edge.preprocess`; the runtime reads these from the model's metadata.
- Output `probability`: float32 `[N, 1]`, probability of `{metadata.class_names[1]}`.
- Decision threshold {metadata.threshold:.6g}: {metadata.threshold_method}.

## Evaluation ({metadata.training_protocol})
Cross-validated, grouped by patient (both breasts of a patient in the same fold); the
shipped model is then retrained on all images with the same recipe.

{_metrics_section(metrics)}

Baseline: always answering "normal" scores the accuracy given as
`always_normal_accuracy` above; compare balanced accuracy and AUC, not accuracy.

Export checks: {parity_summary}

INT8: {int8_summary}

## Known limitations
- Trained on ~260 digitised **film** images of one 1990s UK population: expect it to
  fail on full-field digital mammography (FFDM), tomosynthesis, other vendors, other
  populations, and on CC views.
- The 128x128 input (each pixel covers about 1.6 mm of breast) discards the detail that
  shows microcalcifications.
- It answers per image (normal vs any abnormality) and does not localise findings; with
  ~260 images the confidence intervals are wide.
- The threshold was chosen on the same out-of-fold predictions the metrics come from, so
  any metric computed at that threshold is optimistic; AUC does not depend on it.

## Provenance
- Code revision: `{metadata.code_revision}`
- Created: {metadata.created}

## Retrain and re-export
```
{REGENERATE_COMMANDS}
```
"""


def _metrics_section(metrics: dict) -> str:
    if not metrics:
        return "(no cross-validation metrics were given to the export)"
    parts = [_metrics_table(metrics)]
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
