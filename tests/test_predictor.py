"""mammo_edge.predictor, registry and providers, run against the tiny test model."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import onnxruntime as ort
import pytest
from conftest import (
    EXAMPLES_DIR,
    TINY_THRESHOLD,
    build_tiny_model,
    build_tiny_models_dir,
    synthetic_mammogram,
    tiny_metadata,
    tiny_probability,
    write_dicom,
)

from mammo_edge.errors import ErrorCode, ModelError, ProviderError
from mammo_edge.model.registry import MODELS_DIR, read_manifest
from mammo_edge.predictor import Predictor
from mammo_edge.records.record import RESULT_FIELDS, PredictionResult

IMAGES = [synthetic_mammogram(96, 80, seed) for seed in range(5)]
BRIGHT = synthetic_mammogram(64, 64, level=250)  # tiny model: abnormal
DARK = synthetic_mammogram(64, 64, level=30)  # tiny model: normal


def write_png(path: Path, pixels: np.ndarray) -> str:
    assert cv2.imwrite(str(path), pixels)
    return str(path)


def test_probability_is_the_models_output_for_the_preprocessed_image(tiny_predictor):
    result = tiny_predictor.predict(IMAGES[0])
    assert isinstance(result, PredictionResult)
    assert result.ok and result.path == "<array 0>"
    assert result.probability == pytest.approx(tiny_probability(IMAGES[0]), abs=1e-6)


def test_label_follows_threshold_and_record_names_the_model(tiny_predictor, tiny_model_path):
    bright, dark = tiny_predictor.predict([BRIGHT, DARK])
    assert (bright.label, dark.label) == ("abnormal", "normal")
    assert bright.probability >= TINY_THRESHOLD > dark.probability
    assert bright.threshold == TINY_THRESHOLD
    assert (bright.model_name, bright.model_version) == ("tiny-test-model", "0.0.1")
    assert bright.model_sha256 == tiny_predictor.model_sha256
    assert bright.provider == "CPUExecutionProvider"
    assert tiny_predictor.sha256_verified and tiny_predictor.model_file.path == tiny_model_path


def test_threshold_override(tiny_models_dir):
    probability = tiny_probability(DARK)
    strict = Predictor(tiny_models_dir, device="cpu", threshold=probability / 2)
    result = strict.predict(DARK)
    assert result.threshold == pytest.approx(probability / 2) and result.label == "abnormal"
    with pytest.raises(ModelError, match="threshold"):
        Predictor(tiny_models_dir, device="cpu", threshold=1.5)


def test_results_keep_input_order_with_errors_between_batches(tiny_models_dir, tmp_path):
    paths = []
    for index, pixels in enumerate(IMAGES):
        paths.append(write_png(tmp_path / f"{index}.png", pixels))
    (tmp_path / "empty.png").write_bytes(b"")
    paths.insert(2, str(tmp_path / "empty.png"))
    paths.insert(0, str(tmp_path / "missing.png"))
    paths.append(str(tmp_path / "also-missing.png"))
    predictor = Predictor(tiny_models_dir, device="cpu", batch_size=2, workers=3)
    results = predictor.predict(paths)
    assert [result.path for result in results] == paths
    codes = [result.error_code for result in results]
    assert codes == ["NOT_FOUND", None, None, "EMPTY_FILE", None, None, None, "NOT_FOUND"]
    scored = [result.probability for result in results if result.ok]
    expected = [tiny_probability(pixels) for pixels in IMAGES]
    assert scored == pytest.approx(expected, abs=1e-6)


def test_batch_size_does_not_change_probabilities(tiny_models_dir):
    one = Predictor(tiny_models_dir, device="cpu", batch_size=1, workers=1).predict(IMAGES)
    many = Predictor(tiny_models_dir, device="cpu", batch_size=4, workers=2).predict(IMAGES)
    assert [r.probability for r in one] == pytest.approx([r.probability for r in many], abs=1e-6)


def test_iter_predict_reads_ahead_a_bounded_number_of_inputs(tiny_predictor):
    consumed = []

    def many_images():
        for index in range(200):
            consumed.append(index)
            yield IMAGES[index % len(IMAGES)]

    stream = tiny_predictor.iter_predict(many_images())
    first = next(stream)
    assert first.ok and first.path == "<array 0>"
    read_ahead = 2 * tiny_predictor.batch_size + tiny_predictor.workers
    in_scoring = tiny_predictor.streams * tiny_predictor.batch_size
    assert len(consumed) <= read_ahead + in_scoring
    assert sum(1 for _ in stream) == 199


def test_error_record_carries_code_message_and_no_probability(tiny_predictor):
    result = tiny_predictor.predict(np.zeros((1, 1), np.uint8))
    assert result.status == "error" and result.error_code == ErrorCode.TOO_SMALL.value
    assert result.probability is None and result.label is None and result.error_message
    assert tuple(result.as_dict()) == RESULT_FIELDS


def test_unexpected_decoder_failure_becomes_a_record(tiny_models_dir, tmp_path, monkeypatch):
    import mammo_edge.images.pipeline as pipeline_module

    def explode(path, max_pixels):
        raise RuntimeError("codec bug")

    monkeypatch.setattr(pipeline_module, "load_image", explode)
    result = Predictor(tiny_models_dir, device="cpu").predict(str(tmp_path / "x.png"))
    assert result.error_code == "CORRUPT" and "codec bug" in result.error_message


def test_failed_inference_marks_the_batch_and_continues(tiny_models_dir, monkeypatch):
    predictor = Predictor(tiny_models_dir, device="cpu", batch_size=2)
    real = predictor.score_batch
    calls = []

    def flaky(batch):
        calls.append(len(batch))
        if len(calls) == 1:
            raise RuntimeError("out of memory on device")
        return real(batch)

    monkeypatch.setattr(predictor, "score_batch", flaky)
    results = predictor.predict(IMAGES[:4])
    assert [r.error_code for r in results] == ["INFERENCE_FAILED"] * 2 + [None] * 2


pydicom = pytest.importorskip("pydicom")


def test_dicom_monochrome1_monochrome2_and_pgm_give_the_same_probability(tiny_predictor, tmp_path):
    stored = IMAGES[1].astype(np.uint16) * 257
    pgm = tmp_path / "same.pgm"
    pgm.write_bytes(b"P5\n80 96\n65535\n" + stored.astype(">u2").tobytes())
    mono2 = write_dicom(tmp_path / "mono2.dcm", stored)
    mono1 = write_dicom(tmp_path / "mono1.dcm", 65535 - stored, photometric="MONOCHROME1")
    results = tiny_predictor.predict([pgm, mono2, mono1])
    assert all(result.ok for result in results)
    assert results[0].probability == results[1].probability == results[2].probability
    assert [result.image_format for result in results] == ["pnm", "dicom", "dicom"]
    # Not inverting MONOCHROME1 would change the answer: the check above can fail.
    assert tiny_predictor.predict(65535 - stored).probability != results[0].probability


# --- model resolution and integrity ----------------------------------------------------


def test_env_var_selects_the_model(tiny_model_path, monkeypatch):
    monkeypatch.setenv("MAMMO_EDGE_MODEL", str(tiny_model_path))
    predictor = Predictor(device="cpu")
    assert predictor.model_file.path == tiny_model_path and predictor.sha256_verified


def test_bare_onnx_file_loads_unverified(tmp_path):
    path = build_tiny_model(tmp_path / "loose.onnx")
    predictor = Predictor(path, device="cpu")
    assert not predictor.sha256_verified and predictor.model_file.name == "loose"


def test_altered_model_is_refused(tmp_path):
    models = build_tiny_models_dir(tmp_path / "models")
    model_bytes = bytearray((models / "fp32.onnx").read_bytes())
    model_bytes[-1] ^= 0xFF
    (models / "fp32.onnx").write_bytes(bytes(model_bytes))
    with pytest.raises(ModelError, match="integrity check"):
        Predictor(models, device="cpu")
    with pytest.raises(ModelError, match="integrity check"):
        Predictor(models / "fp32.onnx", device="cpu")  # the manifest beside it still applies


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        (lambda d: (d / "manifest.json").unlink(), "No model manifest"),
        (lambda d: (d / "manifest.json").write_text("{not json"), "unreadable"),
        (lambda d: (d / "fp32.onnx").unlink(), "missing"),
        (
            lambda d: (d / "manifest.json").write_text(json.dumps({"default": "x", "models": {}})),
            "lists no models",
        ),
    ],
)
def test_broken_models_folders_say_what_is_wrong(tmp_path, setup, message):
    models = build_tiny_models_dir(tmp_path / "models")
    setup(models)
    with pytest.raises(ModelError, match=message):
        Predictor(models, device="cpu")


def test_unknown_model_name(tmp_path):
    with pytest.raises(ModelError, match="not found"):
        Predictor("no-such-model", device="cpu")


def test_onnx_file_without_mammo_edge_metadata_is_refused(tmp_path):
    import onnx

    path = build_tiny_model(tmp_path / "plain.onnx")
    model = onnx.load(str(path))
    del model.metadata_props[:]
    onnx.save(model, str(path))
    with pytest.raises(ModelError, match="not a mammo-edge model"):
        Predictor(path, device="cpu")


def test_not_an_onnx_file(tmp_path):
    (tmp_path / "fake.onnx").write_bytes(b"definitely not protobuf")
    with pytest.raises(ModelError, match="not a loadable ONNX model"):
        Predictor(tmp_path / "fake.onnx", device="cpu")


def test_model_whose_input_disagrees_with_its_metadata(tmp_path):
    from mammo_edge.images.preprocess import PreprocessConfig

    metadata = tiny_metadata(preprocess=PreprocessConfig(input_size=64))
    path = build_tiny_model(tmp_path / "m.onnx", metadata)
    # Lie in the metadata: claim 128 while the graph takes 64.
    import onnx

    model = onnx.load(str(path))
    for prop in model.metadata_props:
        if prop.key == "mammo_edge.input_size":
            prop.value = "128"
        if prop.key == "mammo_edge.preprocess":
            prop.value = prop.value.replace('"input_size": 64', '"input_size": 128')
    onnx.save(model, str(path))
    with pytest.raises(ModelError, match="metadata promises"):
        Predictor(path, device="cpu")


def test_model_preprocessing_comes_from_its_metadata(tmp_path):
    from mammo_edge.images.preprocess import PreprocessConfig

    metadata = tiny_metadata(preprocess=PreprocessConfig(input_size=64, pixel_scale=0.5))
    predictor = Predictor(build_tiny_model(tmp_path / "m.onnx", metadata), device="cpu")
    expected = 1 / (1 + np.exp(-(0.05 * 0.5 * cv2.resize(IMAGES[0], (64, 64)).mean() - 6.0)))
    assert predictor.predict(IMAGES[0]).probability == pytest.approx(expected, abs=1e-4)


def test_fixed_batch_of_one_model_still_scores_lists(tmp_path):
    predictor = Predictor(build_tiny_model(tmp_path / "b1.onnx", batch_dim=1), device="cpu")
    assert predictor.batch_size == 1
    assert all(result.ok for result in predictor.predict(IMAGES[:3]))


# --- devices ---------------------------------------------------------------------------


def test_cpu_device_and_threads(tiny_models_dir):
    predictor = Predictor(tiny_models_dir, device="cpu", threads=1)
    assert predictor.provider == "CPUExecutionProvider"
    assert predictor.predict(IMAGES[0]).provider == "CPUExecutionProvider"


def test_auto_device_reports_the_provider_running(tiny_models_dir):
    predictor = Predictor(tiny_models_dir, device="auto")
    assert predictor.provider == predictor.session.get_providers()[0]
    if "CUDAExecutionProvider" not in ort.get_available_providers():
        assert predictor.provider == "CPUExecutionProvider"


@pytest.mark.skipif(
    "CUDAExecutionProvider" in ort.get_available_providers(), reason="CUDA is available here"
)
def test_missing_cuda_is_an_error_listing_what_exists(tiny_models_dir):
    with pytest.raises(ProviderError, match="CPUExecutionProvider"):
        Predictor(tiny_models_dir, device="cuda")


def test_unknown_device(tiny_models_dir):
    with pytest.raises(ProviderError, match="auto, cpu, cuda"):
        Predictor(tiny_models_dir, device="tpu")


# --- the shipped model -----------------------------------------------------------------


@pytest.mark.skipif(
    not (MODELS_DIR / "manifest.json").exists(), reason="no model shipped in mammo_edge/models"
)
def test_shipped_default_model_verifies_and_scores_the_examples():
    manifest = read_manifest(MODELS_DIR)
    predictor = Predictor(device="cpu")
    default = manifest["models"][manifest["default"]]
    assert predictor.sha256_verified and predictor.model_sha256 == default["sha256"]
    results = predictor.predict(sorted(EXAMPLES_DIR.glob("*.pgm")))
    assert len(results) >= 4
    for result in results:
        assert result.ok, result
        assert 0.0 <= result.probability <= 1.0
        assert result.label in ("normal", "abnormal")
