"""Export: a tiny Keras model through conversion, metadata, parity, INT8 and shipping."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest

pytest.importorskip("tensorflow")
pytest.importorskip("tf2onnx")

import onnx  # noqa: E402
import onnxruntime as ort  # noqa: E402
from mias_fixtures import MIAS_ARCHIVE, REPO_ROOT, info_rows, write_mias_folder  # noqa: E402

from export.cli import main  # noqa: E402
from export.convert import keras_to_onnx  # noqa: E402
from export.errors import ExportError  # noqa: E402
from export.model_metadata import build_metadata  # noqa: E402
from export.parity import PARITY_TOLERANCE, check_parity, keras_probabilities  # noqa: E402
from export.pipeline import export_fp32  # noqa: E402
from export.provenance import missing_metadata, read_metadata_props  # noqa: E402
from export.quantize import compare_int8, quantize_int8  # noqa: E402
from export.ship import verify_shipped  # noqa: E402
from export.threshold import (  # noqa: E402
    OutOfFoldPredictions,
    read_predictions,
    youden_threshold,
)
from mammo_edge.images.preprocess import PreprocessConfig, to_model_batch  # noqa: E402
from mammo_edge.model.metadata import ModelMetadata  # noqa: E402
from train.model import build_seed_cnn  # noqa: E402

IMAGE_SIZE = 32


@pytest.fixture(scope="module")
def tiny_model():
    return build_seed_cnn(image_size=IMAGE_SIZE, seed=0)


@pytest.fixture(scope="module")
def image_batch() -> np.ndarray:
    rng = np.random.default_rng(7)
    images = [rng.integers(0, 256, (80, 64), dtype=np.uint8) for _ in range(12)]
    return to_model_batch(images, PreprocessConfig(input_size=IMAGE_SIZE))


@pytest.fixture(scope="module")
def metadata() -> ModelMetadata:
    choice = youden_threshold(_predictions([0, 0, 1, 1], [0.1, 0.3, 0.6, 0.8]))
    return build_metadata(
        preprocess=PreprocessConfig(input_size=IMAGE_SIZE),
        arch="seed",
        model_name="tiny-test",
        model_version="0.0.1",
        threshold=choice,
        training_protocol="patient",
        cv_metrics={"auc": 0.6, "auc_ci95": [0.5, 0.7]},
        dataset_sha256="ab" * 32,
    )


@pytest.fixture(scope="module")
def exported(tiny_model, metadata, image_batch):
    return export_fp32(tiny_model, metadata, image_batch, "synthetic test images")


def _predictions(labels: list[int], probabilities: list[float]) -> OutOfFoldPredictions:
    count = len(labels)
    return OutOfFoldPredictions(
        images=tuple(f"mdb{index + 1:03d}" for index in range(count)),
        patients=np.arange(count),
        folds=np.arange(count) % 2,
        labels=np.asarray(labels),
        probabilities=np.asarray(probabilities),
        source="test",
    )


def _session(model: onnx.ModelProto) -> ort.InferenceSession:
    return ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])


def test_round_trip_has_contract_interface_parity_and_complete_metadata(
    exported, tiny_model, image_batch
):
    model, _, parity = exported
    session = _session(model)
    [image_input] = session.get_inputs()
    [probability_output] = session.get_outputs()
    assert image_input.name == "image"
    assert image_input.shape[1:] == [IMAGE_SIZE, IMAGE_SIZE, 1]
    assert isinstance(image_input.shape[0], str)  # dynamic batch
    assert probability_output.name == "probability"

    onnx_probability = session.run(None, {"image": image_batch})[0]
    assert onnx_probability.shape == (len(image_batch), 1)
    keras_probability = keras_probabilities(tiny_model, image_batch)
    assert np.max(np.abs(onnx_probability.ravel() - keras_probability)) <= PARITY_TOLERANCE
    assert parity.max_abs_difference <= PARITY_TOLERANCE
    assert parity.images == len(image_batch)

    props = session.get_modelmeta().custom_metadata_map
    assert missing_metadata(props) == []
    parsed = ModelMetadata.from_props(props)
    assert parsed.preprocess.input_size == IMAGE_SIZE
    assert parsed.threshold == pytest.approx(0.6)
    assert "Youden" in parsed.threshold_method
    assert parsed.cv_metrics["auc_ci95"] == [0.5, 0.7]
    assert parsed.code_revision and parsed.created


def test_parity_check_refuses_a_different_model(exported, image_batch):
    model, _, _ = exported
    other = build_seed_cnn(image_size=IMAGE_SIZE, seed=1)
    with pytest.raises(ExportError, match="parity failed"):
        check_parity(other, model.SerializeToString(), image_batch, "synthetic test images")


def test_optimiser_leaves_one_transpose_before_the_per_pixel_dense(exported):
    _, conversion, _ = exported
    assert conversion.transposes_before_optimizer > conversion.transposes_after_optimizer
    [remaining] = conversion.remaining_transposes
    assert remaining.perm == (0, 2, 3, 1)  # NCHW back to NHWC for Dense + Flatten
    assert remaining.producer == "MaxPool"


def test_rerun_with_fixed_date_is_byte_identical(tiny_model, metadata, monkeypatch):
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")
    first = keras_to_onnx(tiny_model).model.SerializeToString()
    second = keras_to_onnx(tiny_model).model.SerializeToString()
    assert first == second


def test_youden_threshold_separates_perfect_predictions():
    choice = youden_threshold(_predictions([0, 0, 1, 1], [0.1, 0.3, 0.6, 0.8]))
    assert choice.threshold == pytest.approx(0.6)
    assert (choice.sensitivity, choice.specificity) == (1.0, 1.0)
    assert "out-of-fold" in choice.method


def test_predictions_without_a_column_are_refused(tmp_path):
    path = tmp_path / "predictions.csv"
    path.write_text("image,patient,label,probability\nmdb001,1,0,0.2\n")
    with pytest.raises(ExportError, match="missing column.*fold"):
        read_predictions(path)


def test_quantized_model_loads_runs_and_keeps_metadata(exported, metadata, image_batch):
    fp32_model, _, _ = exported
    int8_model = quantize_int8(fp32_model, image_batch, metadata)
    op_types = {node.op_type for node in int8_model.graph.node}
    assert {"QuantizeLinear", "DequantizeLinear"} <= op_types
    session = _session(int8_model)
    probability = session.run(None, {"image": image_batch})[0]
    assert probability.shape == (len(image_batch), 1)
    assert np.all((probability >= 0) & (probability <= 1))
    props = read_metadata_props(int8_model)
    assert missing_metadata(props) == []
    assert ModelMetadata.from_props(props).model_name == metadata.model_name

    labels = np.arange(len(image_batch)) % 2
    agreement = compare_int8(
        fp32_model, int8_model, image_batch, labels, metadata.threshold, "synthetic"
    )
    assert 0.0 <= agreement.label_agreement <= 1.0
    assert agreement.delta_auc == pytest.approx(agreement.auc_int8 - agreement.auc_fp32)


def _write_training_run(folder, mias_folder, tiny_model):
    """A training run as `python -m train` leaves it: model, metrics, OOF predictions."""
    from train.contract import ModelContract, save_model
    from train.mias import open_mias

    folder.mkdir()
    contract = ModelContract(arch="seed", preprocess=PreprocessConfig(input_size=IMAGE_SIZE))
    save_model(tiny_model, folder / "model.keras", contract)

    records = open_mias(mias_folder).records
    with (folder / "predictions.csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["image", "patient", "fold", "label", "probability"])
        for index, record in enumerate(records):
            probability = 0.2 + 0.5 * record.label + 0.01 * (index % 5)
            writer.writerow(
                [record.reference, record.patient_id, index % 3, record.label, probability]
            )
    (folder / "metrics.json").write_text(
        json.dumps(
            {
                "protocol": "patient",
                "auc": 0.61,
                "auc_ci95": [0.52, 0.7],
                "threshold": 0.5,
                "youden_on_out_of_fold": {"threshold": 0.123, "sensitivity": 0.9},
            }
        )
    )
    return folder


def _ship(run, mias, models, name, *extra):
    return main(
        [
            "--model", str(run / "model.keras"),
            "--out", str(models / f"{name}.onnx"),
            "--name", name,
            "--version", "0.0.9",
            "--data", str(mias),
            "--predictions", str(run / "predictions.csv"),
            "--metrics", str(run / "metrics.json"),
            "--ship",
            *extra,
        ]
    )  # fmt: skip


def test_ship_writes_verified_manifest_and_altered_bytes_are_refused(tmp_path, tiny_model, capsys):
    mias = write_mias_folder(tmp_path / "mias", info_rows(6), size=64)
    run = _write_training_run(tmp_path / "run", mias, tiny_model)
    models = tmp_path / "models"
    exit_code = _ship(run, mias, models, "tiny", "--int8")
    assert exit_code == 0, capsys.readouterr().err
    manifest = json.loads((models / "manifest.json").read_text())
    report = json.loads((models / "tiny.export.json").read_text())
    assert manifest["default"] == "tiny"
    # metrics.json's Youden threshold (0.123) is not the one predictions.csv gives.
    assert any("0.123 differs" in warning for warning in report["warnings"])
    if report["int8"]["accepted"]:
        assert verify_shipped(models, "tiny-int8") == models / "tiny-int8.onnx"
        assert manifest["models"]["tiny-int8"]["model_card"] == "MODEL_CARD.tiny.md"
    else:
        assert "tiny-int8" not in manifest["models"]
        assert not (models / "tiny-int8.onnx").exists()
    assert verify_shipped(models) == models / "tiny.onnx"
    card = (models / "MODEL_CARD.tiny.md").read_text()
    assert "Research and teaching only" in card and "Suckling" in card
    assert "| auc | 0.61 | 0.520 - 0.700 |" in card
    assert "`seed` network (" in card and "--name tiny" in card
    assert "128" not in card  # nothing of the seed's default input leaks into a 32-px model
    props = read_metadata_props(onnx.load(str(models / "tiny.onnx")))
    assert missing_metadata(props) == []
    assert json.loads(props["mammo_edge.cv_metrics"])["auc_ci95"] == [0.52, 0.7]
    metadata = ModelMetadata.from_props(props)
    assert (metadata.model_name, metadata.model_version, metadata.arch) == ("tiny", "0.0.9", "seed")

    from mammo_edge.errors import ModelError
    from mammo_edge.predictor import Predictor

    predictor = Predictor(str(models), device="cpu", threads=1)
    assert predictor.metadata.preprocess.input_size == IMAGE_SIZE
    assert predictor.model_file.model_card == models / "MODEL_CARD.tiny.md"

    model_bytes = bytearray((models / "tiny.onnx").read_bytes())
    model_bytes[-1] ^= 0xFF
    (models / "tiny.onnx").write_bytes(bytes(model_bytes))
    with pytest.raises(ExportError, match="integrity check"):
        verify_shipped(models)
    with pytest.raises(ModelError, match="integrity check"):
        Predictor(str(models), device="cpu", threads=1)


def test_ship_adds_beside_the_models_already_there(tmp_path, tiny_model, capsys):
    mias = write_mias_folder(tmp_path / "mias", info_rows(4), size=64)
    run = _write_training_run(tmp_path / "run", mias, tiny_model)
    models = tmp_path / "models"
    assert _ship(run, mias, models, "first") == 0, capsys.readouterr().err
    first_sha = json.loads((models / "manifest.json").read_text())["models"]["first"]["sha256"]
    assert _ship(run, mias, models, "second") == 0, capsys.readouterr().err
    manifest = json.loads((models / "manifest.json").read_text())
    assert sorted(manifest["models"]) == ["first", "second"]
    assert manifest["default"] == "first"  # a new model becomes default only when asked
    assert manifest["models"]["first"]["sha256"] == first_sha
    assert verify_shipped(models, "first") and verify_shipped(models, "second")
    assert (models / "MODEL_CARD.first.md").is_file() and (
        models / "MODEL_CARD.second.md"
    ).is_file()
    assert _ship(run, mias, models, "third", "--default") == 0, capsys.readouterr().err
    assert json.loads((models / "manifest.json").read_text())["default"] == "third"


def test_export_requires_the_training_contract(tmp_path, tiny_model, capsys):
    mias = write_mias_folder(tmp_path / "mias", info_rows(2), size=64)
    run = _write_training_run(tmp_path / "run", mias, tiny_model)
    (run / "model_contract.json").unlink()
    exit_code = main(
        ["--model", str(run / "model.keras"), "--out", str(tmp_path / "m.onnx"),
         "--data", str(mias)]
    )  # fmt: skip
    error = capsys.readouterr().err
    assert exit_code == 1 and "no model contract" in error and "--contract" in error
    assert not (tmp_path / "m.onnx").exists()


def test_contract_disagreeing_with_the_model_is_refused(tmp_path, tiny_model, capsys):
    from train.contract import ModelContract, write_contract

    mias = write_mias_folder(tmp_path / "mias", info_rows(2), size=64)
    run = _write_training_run(tmp_path / "run", mias, tiny_model)
    write_contract(run / "model.keras", ModelContract("seed", PreprocessConfig(input_size=48)))
    exit_code = main(
        ["--model", str(run / "model.keras"), "--out", str(tmp_path / "m.onnx"),
         "--data", str(mias)]
    )  # fmt: skip
    assert exit_code == 1
    assert "the model takes (32, 32, 1)" in capsys.readouterr().err


def test_name_and_version_go_into_metadata(tmp_path, tiny_model, capsys):
    mias = write_mias_folder(tmp_path / "mias", info_rows(2), size=64)
    run = _write_training_run(tmp_path / "run", mias, tiny_model)
    out = tmp_path / "named.onnx"
    exit_code = main(
        ["--model", str(run / "model.keras"), "--out", str(out), "--data", str(mias),
         "--name", "my-model", "--version", "3.1.4"]
    )  # fmt: skip
    assert exit_code == 0, capsys.readouterr().err
    metadata = ModelMetadata.from_props(read_metadata_props(onnx.load(str(out))))
    assert (metadata.model_name, metadata.model_version) == ("my-model", "3.1.4")
    # Without --name the model is called after its architecture.
    default_out = tmp_path / "unnamed.onnx"
    assert main(["--model", str(run / "model.keras"), "--out", str(default_out),
                 "--data", str(mias)]) == 0  # fmt: skip
    unnamed = ModelMetadata.from_props(read_metadata_props(onnx.load(str(default_out))))
    assert unnamed.model_name == "seed"


@pytest.mark.parametrize("weights_only", [False, True])
def test_hdf5_export_keeps_parity(tmp_path, tiny_model, capsys, weights_only):
    """A Keras 2 style HDF5 file: a whole model, or weights only (rebuilt from the contract)."""
    from train.contract import ModelContract, write_contract

    mias = write_mias_folder(tmp_path / "mias", info_rows(3), size=64)
    folder = tmp_path / "h5"
    folder.mkdir()
    path = folder / ("model.weights.h5" if weights_only else "model.h5")
    if weights_only:
        tiny_model.save_weights(path)
    else:
        tiny_model.save(path)
    write_contract(path, ModelContract("seed", PreprocessConfig(input_size=IMAGE_SIZE)))
    out = tmp_path / "h5.onnx"
    exit_code = main(
        ["--model", str(path), "--contract", str(folder / "model_contract.json"),
         "--out", str(out), "--data", str(mias), "--name", "h5-model"]
    )  # fmt: skip
    assert exit_code == 0, capsys.readouterr().err
    report = json.loads((tmp_path / "h5.export.json").read_text())
    assert report["parity"]["max_abs_difference"] <= PARITY_TOLERANCE
    assert ("load_weights" in report["loaded_with"]) == weights_only


def test_cli_reports_a_missing_model_without_traceback(tmp_path, capsys):
    mias = write_mias_folder(tmp_path / "mias", info_rows(2), size=64)
    exit_code = main(
        ["--model", str(tmp_path / "nope.keras"), "--out", str(tmp_path / "m.onnx"),
         "--data", str(mias)]
    )  # fmt: skip
    error = capsys.readouterr().err
    assert exit_code == 1
    assert "nope.keras: no such file" in error and "Traceback" not in error
    assert not (tmp_path / "m.onnx").exists()


def test_ship_needs_the_evaluation_metrics(tmp_path, capsys):
    (tmp_path / "m.keras").write_bytes(b"x")
    exit_code = main(
        ["--model", str(tmp_path / "m.keras"), "--out", str(tmp_path / "m.onnx"), "--ship"]
    )  # fmt: skip
    assert exit_code == 1
    assert "--ship needs --metrics" in capsys.readouterr().err


PUBLISHED_H5 = REPO_ROOT.parent / "shared" / "seed" / "pretrained_model.h5"


@pytest.mark.mias
@pytest.mark.tensorflow
@pytest.mark.skipif(
    not (PUBLISHED_H5.is_file() and MIAS_ARCHIVE.is_file()),
    reason="needs ../shared/seed/pretrained_model.h5 and ../shared/mias/all-mias.tar.gz",
)
def test_published_hdf5_exports_with_parity_and_matches_the_shipped_file(tmp_path, capsys):
    out = tmp_path / "seed-published.onnx"
    exit_code = main(
        ["--model", str(PUBLISHED_H5),
         "--contract", str(REPO_ROOT / "reports" / "published" / "model_contract.json"),
         "--out", str(out), "--data", str(MIAS_ARCHIVE), "--name", "seed-published"]
    )  # fmt: skip
    assert exit_code == 0, capsys.readouterr().err
    report = json.loads((tmp_path / "seed-published.export.json").read_text())
    assert report["parity"]["images"] == 258
    assert report["parity"]["max_abs_difference"] <= PARITY_TOLERANCE
    assert report["parameters"] == 117_505
    shipped = REPO_ROOT / "mammo_edge" / "models" / "seed-published.onnx"
    if shipped.is_file():
        # The same graph as the shipped file: only the metadata may differ.
        fresh, kept = onnx.load(str(out)), onnx.load(str(shipped))
        assert fresh.graph.SerializeToString() == kept.graph.SerializeToString()
