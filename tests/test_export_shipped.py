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

from mammo_edge.metadata import REQUIRED_KEYS, ModelMetadata
from mammo_edge.registry import MODELS_DIR, read_manifest

MANIFEST = MODELS_DIR / "manifest.json"
#: SHA-256 of the seed CNN shipped before models were named (then fp32.onnx / int8.onnx):
#: renaming must not have changed a byte.
SEED_SHA256 = "077da62daf51655c21486c900a53bdb14c5c2c182db9d64b64caef2cc59978d1"
SEED_INT8_SHA256 = "67d7b48c245a1ca0db2a2da31dd023a242c690bc06b14954f3cbe8eb7495b2cc"
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


def test_seed_stays_selectable_and_unchanged():
    manifest = read_manifest(MODELS_DIR)
    assert manifest["models"]["seed"]["sha256"] == SEED_SHA256
    assert manifest["models"]["seed-int8"]["sha256"] == SEED_INT8_SHA256
    assert hashlib.sha256((MODELS_DIR / "seed.onnx").read_bytes()).hexdigest() == SEED_SHA256
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
