"""Shared fixtures: a tiny mammo-edge ONNX model and small synthetic images.

The tiny model honours the shipped-model contract (input "image" [N, 128, 128, 1] float32,
output "probability" [N, 1], ModelMetadata in metadata_props) but computes
``sigmoid(scale * mean(image) + shift)``: a probability that depends on every pixel, so
tests can tell images apart without the real trained model. Build one anywhere with
:func:`build_tiny_model`, or a whole models folder with :func:`build_tiny_models_dir`.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest

from mammo_edge.images.preprocess import PreprocessConfig
from mammo_edge.model.metadata import ModelMetadata

REPO_ROOT = Path(__file__).resolve().parents[1]
MIAS_ARCHIVE = REPO_ROOT / ".." / "shared" / "mias" / "all-mias.tar.gz"
EXAMPLES_DIR = REPO_ROOT / "examples"

#: The tiny model maps mean pixel 120 to probability 0.5; brighter means more "abnormal".
TINY_SCALE = 0.05
TINY_SHIFT = -6.0
TINY_THRESHOLD = 0.5


def tiny_metadata(**overrides) -> ModelMetadata:
    """ModelMetadata for the tiny test model; keyword arguments override fields."""
    values = {
        "model_name": "tiny-test-model",
        "model_version": "0.0.1",
        "preprocess": PreprocessConfig(),
        "threshold": TINY_THRESHOLD,
        "threshold_method": "fixed 0.5 (test model)",
        "training_protocol": "none: sigmoid(scale * mean + shift) built with onnx.helper",
        "cv_metrics": {"auc": 0.5},
        "dataset_sha256": "0" * 64,
        "code_revision": "test",
        "created": "2026-01-01T00:00:00Z",
    }
    values.update(overrides)
    return ModelMetadata(**values)


def build_tiny_model(
    path: Path,
    metadata: ModelMetadata | None = None,
    scale: float = TINY_SCALE,
    shift: float = TINY_SHIFT,
    batch_dim: int | str = "N",
) -> Path:
    """Write a tiny ONNX model honouring the mammo-edge contract to ``path``.

    Args:
        path: where to write the ``.onnx`` file.
        metadata: stored in metadata_props; defaults to :func:`tiny_metadata`.
        scale, shift: ``probability = sigmoid(scale * mean(image) + shift)``.
        batch_dim: the symbolic (or fixed) batch dimension.

    Returns:
        ``path``.
    """
    import onnx
    from onnx import TensorProto, helper

    metadata = metadata or tiny_metadata()
    size = metadata.preprocess.input_size
    image = helper.make_tensor_value_info("image", TensorProto.FLOAT, [batch_dim, size, size, 1])
    probability = helper.make_tensor_value_info("probability", TensorProto.FLOAT, [batch_dim, 1])
    nodes = [
        helper.make_node("Flatten", ["image"], ["flat"], axis=1),
        helper.make_node("ReduceMean", ["flat"], ["mean"], axes=[1], keepdims=1),
        helper.make_node("Mul", ["mean", "scale"], ["scaled"]),
        helper.make_node("Add", ["scaled", "shift"], ["logit"]),
        helper.make_node("Sigmoid", ["logit"], ["probability"]),
    ]
    initializers = [
        helper.make_tensor("scale", TensorProto.FLOAT, [], [scale]),
        helper.make_tensor("shift", TensorProto.FLOAT, [], [shift]),
    ]
    graph = helper.make_graph(nodes, "tiny_mammo_edge", [image], [probability], initializers)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    helper.set_model_props(model, metadata.to_props())
    onnx.checker.check_model(model)
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(path))
    return path


def build_tiny_models_dir(directory: Path, metadata: ModelMetadata | None = None) -> Path:
    """Write a models folder like the shipped one: fp32.onnx, manifest.json, MODEL_CARD.md."""
    model_path = build_tiny_model(directory / "fp32.onnx", metadata)
    digest = hashlib.sha256(model_path.read_bytes()).hexdigest()
    meta = metadata or tiny_metadata()
    manifest = {
        "default": "fp32",
        "models": {
            "fp32": {
                "file": "fp32.onnx",
                "sha256": digest,
                "model_name": meta.model_name,
                "model_version": meta.model_version,
                "description": "tiny test model",
            }
        },
    }
    (directory / "manifest.json").write_text(json.dumps(manifest, indent=2), encoding="utf-8")
    (directory / "MODEL_CARD.md").write_text(
        "# Tiny test model\n\nA mean-intensity model for tests only.\n\n## Intended use\n\nNone.\n",
        encoding="utf-8",
    )
    return directory


def tiny_probability(pixels: np.ndarray, scale: float = TINY_SCALE, shift: float = TINY_SHIFT):
    """What the tiny model returns for an 8-bit image, computed independently in numpy."""
    from mammo_edge.images.preprocess import SEED_PREPROCESS, to_model_input

    # The tiny models carry the seed's contract (tiny_metadata's default PreprocessConfig).
    mean = float(to_model_input(pixels, SEED_PREPROCESS).astype(np.float64).mean())
    return 1.0 / (1.0 + np.exp(-(scale * mean + shift)))


def synthetic_mammogram(
    height: int = 96, width: int = 80, seed: int = 0, level: int | None = None
) -> np.ndarray:
    """A ``(height, width)`` uint8 image shaped like a mammogram: a textured half-ellipse
    (the breast) against the chest wall on the left, on a near-black film background, so
    it passes the runtime's mammogram guard (:mod:`mammo_edge.images.guard`).

    Args:
        level: the breast's mean gray level (noise of +-6 around it); ``None`` for a
            gradient from 80 to 230 plus noise, different for each ``seed``.
    """
    rng = np.random.default_rng(seed)
    rows, columns = np.mgrid[0:height, 0:width]
    inside = (columns / (0.75 * width)) ** 2 + ((rows - height / 2) / (0.42 * height)) ** 2 <= 1
    if level is None:
        tissue = 80 + 120 * rows / height + 30 * columns / width + rng.integers(0, 30, rows.shape)
    else:
        tissue = level + rng.integers(-6, 7, rows.shape)
    background = rng.integers(0, 9, rows.shape)
    return np.clip(np.where(inside, tissue, background), 0, 255).astype(np.uint8)


def write_study(folder: Path, count: int = 6) -> Path:
    """A folder of ``count`` mammogram-shaped PNGs, ``img0.png`` ... (see above)."""
    import cv2

    folder.mkdir(parents=True, exist_ok=True)
    for index in range(count):
        assert cv2.imwrite(str(folder / f"img{index}.png"), synthetic_mammogram(96, 80, index))
    return folder


@pytest.fixture(autouse=True)
def _no_model_override(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests choose their model explicitly; a developer's MAMMO_EDGE_MODEL must not leak in."""
    monkeypatch.delenv("MAMMO_EDGE_MODEL", raising=False)


@pytest.fixture(scope="session")
def tiny_models_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A models folder holding the tiny model with a matching manifest (read-only use)."""
    return build_tiny_models_dir(tmp_path_factory.mktemp("tiny_models"))


@pytest.fixture(scope="session")
def tiny_model_path(tiny_models_dir: Path) -> Path:
    """The tiny model's ``.onnx`` file (listed in its folder's manifest)."""
    return tiny_models_dir / "fp32.onnx"


@pytest.fixture(scope="session")
def tiny_predictor(tiny_models_dir: Path):
    """A CPU Predictor over the tiny model, shared by tests that only read from it."""
    from mammo_edge.predictor import Predictor

    return Predictor(tiny_models_dir, device="cpu", batch_size=4, workers=2)


def write_dicom(
    path: Path,
    stored: np.ndarray,
    photometric: str = "MONOCHROME2",
    bits_stored: int | None = None,
    rescale: tuple[float, float] | None = None,
    window: tuple[float, float] | None = None,
    frames: int = 1,
    with_pixels: bool = True,
    extra: dict | None = None,
) -> Path:
    """Write a DX/MG-like DICOM file (Explicit VR Little Endian) holding ``stored``.

    Args:
        stored: ``(H, W)`` (or ``(frames, H, W)``) uint8 or uint16 stored values.
        photometric: (0028,0004) Photometric Interpretation.
        bits_stored: (0028,0101) Bits Stored; defaults to the dtype's width.
        rescale: ``(slope, intercept)`` for (0028,1053)/(0028,1052).
        window: ``(center, width)`` for (0028,1050)/(0028,1051).
        frames: (0028,0008) Number of Frames when above 1.
        with_pixels: False writes no (7FE0,0010) Pixel Data.
        extra: further attributes by keyword.
    """
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    mammography_for_presentation = "1.2.840.10008.5.1.4.1.1.1.2"
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = mammography_for_presentation
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    dataset = Dataset()
    dataset.file_meta = meta
    dataset.SOPClassUID = mammography_for_presentation
    dataset.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    dataset.Modality = "MG"
    dataset.Rows, dataset.Columns = stored.shape[-2:]
    dataset.SamplesPerPixel = 1
    dataset.PhotometricInterpretation = photometric
    dataset.BitsAllocated = stored.dtype.itemsize * 8
    dataset.BitsStored = bits_stored or stored.dtype.itemsize * 8
    dataset.HighBit = dataset.BitsStored - 1
    dataset.PixelRepresentation = 0
    if frames > 1:
        dataset.NumberOfFrames = frames
    if rescale is not None:
        dataset.RescaleSlope, dataset.RescaleIntercept = rescale
    if window is not None:
        dataset.WindowCenter, dataset.WindowWidth = window
    for keyword, value in (extra or {}).items():
        setattr(dataset, keyword, value)
    if with_pixels:
        dataset.PixelData = np.ascontiguousarray(stored).tobytes()
    dataset.save_as(path, enforce_file_format=True)
    return path


def slowed_cli_script(target: str, seconds: float) -> str:
    """Python source that runs the ``mammo-edge`` CLI with ``target`` slowed down.

    Args:
        target: ``module:Class.method``, a generator method whose items are delayed
            (``mammo_edge.engines.local:LocalEngine.iter_score``).
        seconds: the pause after each item, so a test can act mid-run (signal, second run).

    Run it as ``[sys.executable, "-c", script, *cli_arguments]``.
    """
    module, attribute = target.split(":")
    owner, method = attribute.split(".")
    return f"""
import sys, time
from {module} import {owner}
real = {owner}.{method}

def slow(self, *args, **kwargs):
    for item in real(self, *args, **kwargs):
        yield item
        time.sleep({seconds})

{owner}.{method} = slow
from mammo_edge.cli import main
sys.exit(main(sys.argv[1:]))
"""
