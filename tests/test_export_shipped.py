"""The models shipped in mammo_edge/models: checksums, interface, complete metadata, names.

Runs on a runtime-only install (no TensorFlow); skipped until a model is shipped.
"""

from __future__ import annotations

import hashlib
import json
import re

import onnxruntime as ort
import pytest
from mias_fixtures import MIAS_ARCHIVE

from mammo_edge.model.metadata import REQUIRED_KEYS, ModelMetadata
from mammo_edge.model.registry import MODELS_DIR, read_manifest

MANIFEST = MODELS_DIR / "manifest.json"
pytestmark = pytest.mark.skipif(not MANIFEST.exists(), reason="no shipped model yet")


def _entries() -> list[tuple[str, dict]]:
    if not MANIFEST.exists():
        return []
    return sorted(json.loads(MANIFEST.read_text())["models"].items())


def test_every_shipped_model_has_its_model_card():
    manifest = read_manifest(MODELS_DIR)
    assert manifest["default"] in manifest["models"]
    for name, entry in manifest["models"].items():
        assert (MODELS_DIR / entry["model_card"]).is_file(), name


@pytest.mark.parametrize("name", ["seed", "lite0"])
def test_earlier_models_stay_the_bytes_their_export_wrote(name):
    """The export report (written once, by the export) and the file agree: shipping newer
    models must not have touched an older one's bytes or its INT8 twin's."""
    manifest = read_manifest(MODELS_DIR)
    report = json.loads((MODELS_DIR / f"{name}.export.json").read_text())
    digest = hashlib.sha256((MODELS_DIR / f"{name}.onnx").read_bytes()).hexdigest()
    assert digest == report["onnx_sha256"] == manifest["models"][name]["sha256"]
    twin = report.get("int8") or {}
    if twin.get("accepted") and f"{name}-int8" in manifest["models"]:
        path = MODELS_DIR / f"{name}-int8.onnx"
        assert hashlib.sha256(path.read_bytes()).hexdigest() == twin["sha256"]


def test_seed_stays_selectable():
    manifest = read_manifest(MODELS_DIR)
    # The names used before the rename still work, as deprecated aliases.
    assert manifest["aliases"] == {"fp32": "seed", "int8": "seed-int8"}


@pytest.mark.parametrize(("name", "entry"), _entries())
def test_shipped_model_matches_manifest_and_carries_complete_metadata(name, entry):
    model_bytes = (MODELS_DIR / entry["file"]).read_bytes()
    assert hashlib.sha256(model_bytes).hexdigest() == entry["sha256"]

    session = ort.InferenceSession(model_bytes, providers=["CPUExecutionProvider"])
    [image_input] = session.get_inputs()
    outputs = [output.name for output in session.get_outputs()]
    assert image_input.name == "image" and outputs[0] == "probability"

    props = session.get_modelmeta().custom_metadata_map
    assert [key for key in REQUIRED_KEYS if not props.get(key)] == []
    metadata = ModelMetadata.from_props(props, source=entry["file"])
    # Any further output is named by the metadata (lite0: its heatmap and grid).
    assert outputs[1:] == [
        metadata.outputs[role] for role in ("heatmap",) if role in metadata.outputs
    ]
    assert image_input.shape[1:] == [metadata.preprocess.height, metadata.preprocess.width, 1]
    assert metadata.model_name == entry["model_name"]
    assert metadata.model_version == entry["model_version"]
    # A threshold is either chosen on out-of-fold predictions or fixed and said so.
    assert "out-of-fold" in metadata.threshold_method or "fixed" in metadata.threshold_method
    assert "auc" in metadata.cv_metrics
    assert re.fullmatch(r"[0-9a-f]{64}", metadata.dataset_sha256)


@pytest.mark.skipif(not MIAS_ARCHIVE.exists(), reason="needs ../shared/mias/all-mias.tar.gz")
@pytest.mark.parametrize(("name", "entry"), _entries())
def test_shipped_model_was_trained_on_the_shared_archive(name, entry):
    session = ort.InferenceSession(
        (MODELS_DIR / entry["file"]).read_bytes(), providers=["CPUExecutionProvider"]
    )
    recorded = session.get_modelmeta().custom_metadata_map["mammo_edge.dataset_sha256"]
    digest = hashlib.sha256(MIAS_ARCHIVE.read_bytes()).hexdigest()
    assert recorded == digest
