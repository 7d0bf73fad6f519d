"""The runtime stays light: no TensorFlow/Keras/tf2onnx/onnx ever, pydicom only for DICOM."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from conftest import synthetic_mammogram

FORBIDDEN = ("tensorflow", "keras", "tf2onnx", "onnx", "tf_keras", "jax", "torch")


def imported_after(code: str) -> set[str]:
    """Top-level module names present after running ``code`` in a fresh interpreter."""
    script = (
        code
        + "\nimport json, sys\nprint(json.dumps(sorted({m.split('.')[0] for m in sys.modules})))"
    )
    completed = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120
    )
    assert completed.returncode == 0, completed.stderr
    return set(json.loads(completed.stdout.strip().splitlines()[-1]))


def test_import_and_help_load_neither_heavy_frameworks_nor_onnxruntime():
    modules = imported_after(
        "import mammo_edge, mammo_edge.cli\n"
        "try:\n    mammo_edge.cli.main(['--help'])\nexcept SystemExit:\n    pass"
    )
    assert not modules & set(FORBIDDEN)
    assert "pydicom" not in modules and "onnxruntime" not in modules
    # Start-up counts toward every cold start: no verb may pull numpy or OpenCV into --help.
    assert "numpy" not in modules and "cv2" not in modules


def test_scoring_a_png_loads_no_training_framework_and_no_pydicom(tiny_model_path, tmp_path):
    import cv2

    image = tmp_path / "a.png"
    cv2.imwrite(str(image), synthetic_mammogram())
    modules = imported_after(
        "from mammo_edge import Predictor\n"
        f"result = Predictor({str(tiny_model_path)!r}, device='cpu').predict({str(image)!r})\n"
        "assert result.ok, result"
    )
    assert "onnxruntime" in modules  # the check below is about the right process
    assert not modules & set(FORBIDDEN)
    assert "pydicom" not in modules


def test_scoring_dicom_still_loads_no_training_framework(tiny_model_path, tmp_path):
    pytest.importorskip("pydicom")
    from conftest import write_dicom

    image = write_dicom(tmp_path / "a.dcm", synthetic_mammogram())
    modules = imported_after(
        "from mammo_edge import Predictor\n"
        f"result = Predictor({str(tiny_model_path)!r}, device='cpu').predict({str(image)!r})\n"
        "assert result.ok, result"
    )
    assert "pydicom" in modules and not modules & set(FORBIDDEN)
