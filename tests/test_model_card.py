"""Re-rendering a shipped model's card leaves the model's bytes alone."""

import hashlib
import shutil

import pytest

from mammo_edge.model.registry import MODELS_DIR, installed_model_names

pytest.importorskip("onnx")


def test_refresh_card_keeps_the_model_and_takes_the_new_notes(tmp_path):
    if "lite0" not in installed_model_names():
        pytest.skip("lite0 is not shipped in this install")
    from export.card import refresh_model_card

    for name in ("lite0.onnx", "lite0.export.json", "manifest.json"):
        shutil.copy(MODELS_DIR / name, tmp_path / name)
    before = hashlib.sha256((tmp_path / "lite0.onnx").read_bytes()).hexdigest()
    notes = tmp_path / "notes.md"
    notes.write_text("## Ablation\n| candidate | AUC |\n|---|---|\n| x | 0.5 |\n")
    card = refresh_model_card(tmp_path, "lite0", notes)
    text = card.read_text()
    assert "| x | 0.5 |" in text and "Output `heatmap`" in text
    assert "0.2534" in text  # the threshold, read from the model's own metadata
    assert hashlib.sha256((tmp_path / "lite0.onnx").read_bytes()).hexdigest() == before
    # The shipped card is what this function writes from the committed notes.
    shipped = (MODELS_DIR / "MODEL_CARD.lite0.md").read_text()
    assert "## Re-export" in shipped and "Output `heatmap`" in shipped
