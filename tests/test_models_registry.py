"""Models selected by name: manifest merging, aliases, per-model cards, `info` listing all."""

from __future__ import annotations

import hashlib
import json
import shutil

import pytest
from conftest import build_tiny_model, tiny_metadata

from mammo_edge.cli import main
from mammo_edge.errors import ModelError
from mammo_edge.model.info import list_models
from mammo_edge.model.registry import (
    MODELS_DIR,
    add_to_manifest,
    manifest_model,
    read_manifest,
    read_verified,
)

SHIPPED = (MODELS_DIR / "manifest.json").is_file()


def _entry(folder, name: str, card: str | None = None) -> dict:
    path = build_tiny_model(folder / f"{name}.onnx", tiny_metadata(model_name=name))
    entry = {
        "file": path.name,
        "sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
        "model_name": name,
        "model_version": "0.0.1",
        "description": f"tiny {name}",
    }
    if card:
        (folder / card).write_text(f"# Card of {name}\n\nAbout {name}.\n\n## Intended use\nNone.\n")
        entry["model_card"] = card
    return entry


def test_add_to_manifest_keeps_other_models_and_the_default(tmp_path):
    add_to_manifest(tmp_path, {"alpha": _entry(tmp_path, "alpha", "MODEL_CARD.alpha.md")})
    add_to_manifest(tmp_path, {"beta": _entry(tmp_path, "beta", "MODEL_CARD.beta.md")})
    manifest = read_manifest(tmp_path)
    assert sorted(manifest["models"]) == ["alpha", "beta"] and manifest["default"] == "alpha"
    add_to_manifest(tmp_path, {"beta": _entry(tmp_path, "beta")}, make_default=True)
    assert read_manifest(tmp_path)["default"] == "beta"
    add_to_manifest(tmp_path, {}, remove=("alpha",))
    assert list(read_manifest(tmp_path)["models"]) == ["beta"]


def test_each_model_finds_its_own_card_and_aliases_resolve(tmp_path):
    add_to_manifest(tmp_path, {"alpha": _entry(tmp_path, "alpha", "MODEL_CARD.alpha.md")})
    add_to_manifest(tmp_path, {"beta": _entry(tmp_path, "beta", "MODEL_CARD.beta.md")})
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    manifest["aliases"] = {"old": "beta"}
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    assert manifest_model(tmp_path, "alpha").model_card == tmp_path / "MODEL_CARD.alpha.md"
    assert manifest_model(tmp_path, "old").name == "beta"
    assert manifest_model(tmp_path, "old").model_card == tmp_path / "MODEL_CARD.beta.md"
    with pytest.raises(ModelError, match="no model named 'gamma'; available: alpha, beta"):
        manifest_model(tmp_path, "gamma")
    manifest["aliases"] = {"old": "gone"}
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ModelError, match="aliases naming models it does not list"):
        read_manifest(tmp_path)


def test_info_listing_shows_every_model_and_survives_an_altered_one(tmp_path):
    add_to_manifest(tmp_path, {"alpha": _entry(tmp_path, "alpha", "MODEL_CARD.alpha.md")})
    add_to_manifest(tmp_path, {"beta": _entry(tmp_path, "beta", "MODEL_CARD.beta.md")})
    (tmp_path / "beta.onnx").write_bytes((tmp_path / "beta.onnx").read_bytes() + b"\0")
    listing = list_models(tmp_path)
    assert [model["name"] for model in listing["models"]] == ["alpha", "beta"]
    alpha, beta = listing["models"]
    assert alpha["default"] and alpha["sha256_verified"] and alpha["cv_metrics"] == {"auc": 0.5}
    assert "integrity check" in beta["error"]


@pytest.mark.skipif(not SHIPPED, reason="no shipped models")
def test_info_without_model_lists_every_shipped_model(capsys):
    assert main(["info"]) == 0
    out = capsys.readouterr().out
    manifest = read_manifest(MODELS_DIR)
    for name in manifest["models"]:
        marker = "*" if name == manifest["default"] else " "
        assert f"\n{marker} {name}\n" in out
    assert "always-normal" in out and "Details of one model" in out
    assert main(["info", "--json"]) == 0
    listing = json.loads(capsys.readouterr().out)
    assert {model["name"] for model in listing["models"]} == set(manifest["models"])


@pytest.mark.skipif(not SHIPPED, reason="no shipped models")
def test_old_names_still_select_the_seed(capsys):
    assert main(["info", "--model", "fp32", "--json"]) == 0
    details = json.loads(capsys.readouterr().out)
    assert details["model"]["name"] == "seed" and details["model"]["sha256_verified"]


@pytest.mark.skipif(
    not SHIPPED or "seed-published" not in read_manifest(MODELS_DIR)["models"],
    reason="seed-published is not shipped",
)
def test_seed_published_is_selectable_never_default_and_checked(tmp_path):
    from mammo_edge.predictor import Predictor

    manifest = read_manifest(MODELS_DIR)
    assert manifest["default"] != "seed-published"
    predictor = Predictor("seed-published", device="cpu", threads=1)
    assert predictor.sha256_verified
    assert predictor.model_sha256 == manifest["models"]["seed-published"]["sha256"]
    assert predictor.model_file.model_card.name == "MODEL_CARD.seed-published.md"
    assert "Cruz Diaz" in predictor.model_file.model_card.read_text()

    copy = tmp_path / "models"
    shutil.copytree(MODELS_DIR, copy)
    altered = bytearray((copy / "seed-published.onnx").read_bytes())
    altered[len(altered) // 2] ^= 0x01
    (copy / "seed-published.onnx").write_bytes(bytes(altered))
    with pytest.raises(ModelError, match="integrity check"):
        read_verified(manifest_model(copy, "seed-published"))
    with pytest.raises(ModelError, match="integrity check"):
        Predictor(copy / "seed-published.onnx", device="cpu", threads=1)
