"""Every architecture builds, exports with parity and runs through the runtime; contracts."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import EXAMPLES_DIR

from mammo_edge.images.preprocess import PreprocessConfig
from train import architectures
from train.contract import (
    CONTRACT_NAME,
    ContractError,
    ModelContract,
    contract_path,
    read_contract,
    write_contract,
)


def test_registry_names_and_unknown_architecture():
    assert "seed" in architectures.names()
    assert architectures.DEFAULT_ARCHITECTURE in architectures.names()
    with pytest.raises(architectures.UnknownArchitecture, match="choose one of"):
        architectures.get("no-such-net")


def test_contract_round_trip_and_errors(tmp_path):
    contract = ModelContract(arch="seed", preprocess=PreprocessConfig(input_size=64))
    path = write_contract(tmp_path / "model.keras", contract)
    assert path == contract_path(tmp_path / "model.keras") == tmp_path / CONTRACT_NAME
    assert read_contract(path) == contract
    written = json.loads(path.read_text())
    assert written["preprocess"] == PreprocessConfig(input_size=64).as_dict()
    assert written["outputs"] == {"probability": 0}
    with pytest.raises(ContractError, match="no model contract"):
        read_contract(tmp_path / "elsewhere" / CONTRACT_NAME)
    path.write_text(json.dumps({"arch": "seed"}))
    with pytest.raises(ContractError, match="lacks its 'preprocess'"):
        read_contract(path)
    path.write_text(json.dumps({"arch": "seed", "preprocess": {"input_size": 2}}))
    with pytest.raises(ContractError, match="not usable"):
        read_contract(path)


def test_committed_patient_model_has_its_contract():
    from conftest import REPO_ROOT

    contract = read_contract(REPO_ROOT / "reports" / "patient" / CONTRACT_NAME)
    assert contract.arch == "seed"
    assert contract.preprocess == architectures.preprocess_for("seed")


def _tiny_preprocess(module) -> PreprocessConfig:
    # An architecture may offer a small input for tests; else its own input is used.
    tiny = getattr(module, "test_preprocess", None)
    return tiny() if tiny is not None else module.default_preprocess()


@pytest.mark.tensorflow
@pytest.mark.parametrize("name", architectures.names())
def test_architecture_builds_exports_and_runs_through_the_runtime(name, tmp_path):
    pytest.importorskip("tensorflow")
    pytest.importorskip("tf2onnx")
    from export.model_metadata import build_metadata
    from export.pipeline import export_fp32
    from mammo_edge.images.decode import load_image
    from mammo_edge.images.preprocess import to_model_batch
    from mammo_edge.predictor import Predictor

    module = architectures.get(name)
    config = _tiny_preprocess(module)
    model = module.build(config, 0)
    if any(layer.name == "cell_logit" for layer in model.layers):
        # lite0 starts with a zero lesion head (every output 0.5): give it weights, so
        # parity compares numbers that depend on the image.
        head = model.get_layer("cell_logit")
        rng = np.random.default_rng(0)
        head.set_weights(
            [rng.normal(0, 0.05, w.shape).astype("float32") for w in head.get_weights()]
        )
    images = [load_image(path).pixels for path in sorted(EXAMPLES_DIR.glob("*.pgm"))[:3]]
    batch = to_model_batch(images, config)
    assert model.input_shape[1:] == batch.shape[1:]
    metadata = build_metadata(
        model_name=f"test-{name}",
        model_version="0",
        threshold=None,
        training_protocol="none (test)",
        cv_metrics={},
        dataset_sha256="0" * 64,
        preprocess=config,
        arch=name,
        outputs=getattr(module, "OUTPUTS", None),
    )
    onnx_model, _, parity = export_fp32(model, metadata, batch, "examples")
    assert parity.max_abs_difference <= parity.tolerance
    path = tmp_path / f"{name}.onnx"
    path.write_bytes(onnx_model.SerializeToString())
    predictor = Predictor(path, device="cpu", threads=1)
    assert predictor.metadata.arch == name
    results = predictor.predict([EXAMPLES_DIR / "mdb003.pgm", EXAMPLES_DIR / "mdb028.pgm"])
    assert all(result.ok for result in results), results
    assert all(0.0 <= result.probability <= 1.0 for result in results)
    keras_output = model(batch[:1], training=False)
    if isinstance(keras_output, (list, tuple)):
        keras_output = keras_output[0]
    assert np.isclose(results[0].probability, float(np.asarray(keras_output)[0, 0]), atol=1e-5)


def _lite0_with_random_head(config, **variant):
    from train.architectures import lite0

    networks = lite0.Networks(pretrained=False, seed=0)
    plain = networks.image_model(config)
    rng = np.random.default_rng(0)
    head = plain.get_layer("cell_logit")
    head.set_weights([rng.normal(0, 0.05, w.shape).astype("float32") for w in head.get_weights()])
    return plain, networks.image_model(config, **variant)


@pytest.mark.tensorflow
def test_lite0_windows_off_the_breast_can_hold_neither_score_nor_peak():
    pytest.importorskip("tensorflow")
    from train.architectures import lite0

    config = lite0.test_preprocess()  # 192x128: 3x1 windows, rows 0-127, 32-159, 64-191
    plain, masked = _lite0_with_random_head(config, breast_windows_only=True)
    # Breast in the top third only; the rest is the crop's blank padding (-1).
    batch = np.full((1, config.height, config.width, 1), -1.0, dtype=np.float32)
    batch[0, :64] = np.random.default_rng(1).uniform(-0.5, 0.9, (64, config.width, 1))
    plain_heat = np.asarray(plain(batch)[1])[0, :, :, 0]
    masked_probability, masked_heat = (np.asarray(x) for x in masked(batch))
    masked_heat = masked_heat[0, :, :, 0]
    windows_on_breast = np.zeros_like(masked_heat, dtype=bool)
    windows_on_breast[:2] = True  # 50% and 25% breast; the third window has none
    assert np.all(masked_heat[~windows_on_breast] < 1e-12)
    assert np.allclose(masked_heat[windows_on_breast], plain_heat[windows_on_breast], atol=1e-6)
    # the score is the top-k mean over breast windows only
    logits = np.log(plain_heat[windows_on_breast] / (1 - plain_heat[windows_on_breast]))
    offset_w, offset_b = plain.get_layer("image_offset").get_weights()
    k = min(lite0.TOP_K, 3)
    padded = np.concatenate([np.sort(logits)[::-1], np.full(k, lite0.OFF_BREAST_LOGIT)])[:k]
    expected = 1 / (1 + np.exp(-(padded.mean() * offset_w[0, 0] + offset_b[0])))
    assert masked_probability[0, 0] == pytest.approx(expected, abs=1e-5)
    assert plain_heat[2, 0] > 1e-3  # unmasked, the padding's window had a real score


@pytest.mark.tensorflow
def test_lite0_variant_exports_with_parity_and_runs_through_the_runtime(tmp_path):
    pytest.importorskip("tf2onnx")
    from export.model_metadata import build_metadata
    from export.pipeline import export_fp32
    from mammo_edge.images.decode import load_image
    from mammo_edge.images.preprocess import to_model_batch
    from mammo_edge.predictor import Predictor
    from train.architectures import lite0

    config = lite0.test_preprocess()
    _, model = _lite0_with_random_head(config, breast_windows_only=True, flip_average=True)
    images = [load_image(path).pixels for path in sorted(EXAMPLES_DIR.glob("*.pgm"))[:3]]
    batch = to_model_batch(images, config)
    metadata = build_metadata(
        model_name="test-lite0-variant",
        model_version="0",
        threshold=None,
        training_protocol="none (test)",
        cv_metrics={},
        dataset_sha256="0" * 64,
        preprocess=config,
        arch="lite0",
        outputs=lite0.OUTPUTS,
    )
    onnx_model, _, parity = export_fp32(model, metadata, batch, "examples")
    assert parity.max_abs_difference <= 1e-5
    path = tmp_path / "variant.onnx"
    path.write_bytes(onnx_model.SerializeToString())
    result = Predictor(path, device="cpu", threads=1).predict(EXAMPLES_DIR / "mdb003.pgm")
    expected = float(np.asarray(model(batch[:1], training=False)[0])[0, 0])
    assert result.ok and result.probability == pytest.approx(expected, abs=1e-5)
