"""The model shipped in mammo_edge/models: checksums, interface, complete metadata.

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
pytestmark = pytest.mark.skipif(not MANIFEST.exists(), reason="no shipped model yet")


def _entries() -> list[tuple[str, dict]]:
    if not MANIFEST.exists():
        return []
    return sorted(json.loads(MANIFEST.read_text())["models"].items())


def test_manifest_names_fp32_as_default_and_a_model_card_exists():
    manifest = read_manifest(MODELS_DIR)
    assert manifest["default"] == "fp32"
    assert (MODELS_DIR / "MODEL_CARD.md").is_file()


@pytest.mark.parametrize(("name", "entry"), _entries())
def test_shipped_model_matches_manifest_and_carries_complete_metadata(name, entry):
    model_bytes = (MODELS_DIR / entry["file"]).read_bytes()
    assert hashlib.sha256(model_bytes).hexdigest() == entry["sha256"]

    session = ort.InferenceSession(model_bytes, providers=["CPUExecutionProvider"])
    [image_input] = session.get_inputs()
    [probability_output] = session.get_outputs()
    assert (image_input.name, probability_output.name) == ("image", "probability")

    props = session.get_modelmeta().custom_metadata_map
    assert [key for key in REQUIRED_KEYS if not props.get(key)] == []
    metadata = ModelMetadata.from_props(props, source=entry["file"])
    assert image_input.shape[1:] == [metadata.preprocess.input_size] * 2 + [1]
    assert metadata.model_name == entry["model_name"]
    assert metadata.model_version == entry["model_version"]
    assert "out-of-fold" in metadata.threshold_method
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
