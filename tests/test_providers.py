"""mammo_edge.model.providers: the onnxruntime/onnxruntime-gpu clash, found from package
metadata."""

from __future__ import annotations

import logging
from pathlib import Path

import onnxruntime as ort
import pytest

from mammo_edge.errors import ProviderError
from mammo_edge.model.providers import (
    create_session,
    installed_onnxruntime_distributions,
    onnxruntime_clash,
)


def fake_distribution(site: Path, name: str, version: str = "1.32.0") -> None:
    """Write the dist-info a pip install of ``name`` leaves (METADATA is what is read)."""
    info = site / f"{name.replace('-', '_')}-{version}.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")


def test_both_wheels_installed_is_a_clash_with_the_fix(tmp_path):
    fake_distribution(tmp_path, "onnxruntime")
    fake_distribution(tmp_path, "onnxruntime-gpu")
    assert installed_onnxruntime_distributions([str(tmp_path)]) == [
        "onnxruntime",
        "onnxruntime-gpu",
    ]
    message = onnxruntime_clash([str(tmp_path)])
    assert message is not None
    assert "onnxruntime and onnxruntime-gpu" in message
    assert "pip uninstall -y onnxruntime onnxruntime-gpu && pip install onnxruntime-gpu" in message


@pytest.mark.parametrize("only", ["onnxruntime", "onnxruntime-gpu"])
def test_one_wheel_is_no_clash(tmp_path, only):
    fake_distribution(tmp_path, only)
    assert installed_onnxruntime_distributions([str(tmp_path)]) == [only]
    assert onnxruntime_clash([str(tmp_path)]) is None


def test_unrelated_distributions_are_ignored(tmp_path):
    fake_distribution(tmp_path, "onnx")
    fake_distribution(tmp_path, "onnxruntime-extensions")
    assert installed_onnxruntime_distributions([str(tmp_path)]) == []


def test_this_environment_has_exactly_one_onnxruntime():
    assert len(installed_onnxruntime_distributions()) == 1
    assert onnxruntime_clash() is None


@pytest.fixture
def clashing_site(tmp_path, monkeypatch):
    fake_distribution(tmp_path, "onnxruntime")
    fake_distribution(tmp_path, "onnxruntime-gpu")
    monkeypatch.syspath_prepend(str(tmp_path))
    return tmp_path


def test_a_session_warns_about_the_clash(clashing_site, tiny_model_path, caplog):
    with caplog.at_level(logging.WARNING, logger="mammo_edge"):
        session = create_session(tiny_model_path.read_bytes(), device="cpu")
    assert session.get_providers()[0] == "CPUExecutionProvider"
    assert any("side by side" in record.getMessage() for record in caplog.records)


@pytest.mark.skipif(
    "CUDAExecutionProvider" in ort.get_available_providers(), reason="CUDA is available here"
)
def test_a_cuda_request_explains_the_clash(clashing_site, tiny_model_path):
    with pytest.raises(ProviderError, match="side by side.*pip uninstall"):
        create_session(tiny_model_path.read_bytes(), device="cuda")
