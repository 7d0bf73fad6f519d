"""The seed CNN exactly as published, and the patient protocol's isolation of augmentation."""

import json

import numpy as np
import pytest
from mias_fixtures import info_rows, write_mias_folder

pytest.importorskip("tensorflow", reason="needs the train extra")
pytestmark = pytest.mark.tensorflow

from train.mias import open_mias  # noqa: E402
from train.model import SEED_PARAMETER_COUNT, build_seed_cnn  # noqa: E402


def test_exact_parameter_count_and_layers():
    model = build_seed_cnn()
    assert model.count_params() == SEED_PARAMETER_COUNT == 117_505
    kinds = [layer.__class__.__name__ for layer in model.layers]
    assert kinds == [
        "Conv2D",
        "Conv2D",
        "MaxPooling2D",
        "Conv2D",
        "MaxPooling2D",
        "Dropout",
        "Dense",
        "Dropout",
        "Flatten",
        "Dense",
    ]
    assert model.output_shape == (None, 1)
    assert model.optimizer.learning_rate.numpy() == pytest.approx(1e-3)
    initializer = model.layers[0].kernel_initializer.get_config()
    assert initializer["mean"] == 0.0 and initializer["stddev"] == 0.02


@pytest.fixture(scope="module")
def patient_run(tmp_path_factory):
    from train.patient_protocol import PatientSettings, run_patient_protocol

    root = tmp_path_factory.mktemp("patient")
    dataset = open_mias(write_mias_folder(root / "mias", info_rows(12), size=48))
    settings = PatientSettings(
        folds=3, epochs=1, image_size=32, augment_copies=1, train_final_model=True
    )
    metrics, fold_logs = run_patient_protocol(dataset, root / "out", settings, log=lambda _: None)
    return dataset, root / "out", metrics, fold_logs


def test_augmentation_touches_only_training_images(patient_run):
    _, _, _, fold_logs = patient_run
    for fold_log in fold_logs:
        assert fold_log.augmented_indices == set(fold_log.fit_indices.tolist())
        assert not fold_log.augmented_indices & set(fold_log.validation_indices.tolist())
        assert not fold_log.augmented_indices & set(fold_log.test_indices.tolist())


def test_patient_run_writes_one_out_of_fold_row_per_image(patient_run):
    dataset, out, metrics, _ = patient_run
    lines = (out / "predictions.csv").read_text().splitlines()
    assert lines[0] == "image,patient,fold,label,probability"
    assert len(lines) - 1 == len(dataset)
    rows = [line.split(",") for line in lines[1:]]
    assert {row[0] for row in rows} == {record.reference for record in dataset.records}
    assert all(0.0 <= float(row[4]) <= 1.0 and row[2] in {"1", "2", "3"} for row in rows)
    written = json.loads((out / "metrics.json").read_text())
    for key in (
        "auc",
        "auc_ci95",
        "accuracy",
        "always_normal_accuracy",
        "balanced_accuracy",
        "sensitivity",
        "specificity",
        "confusion_matrix",
    ):
        assert key in written
    assert written["always_normal_accuracy"] == pytest.approx(20 / 24)
    for name in ("model.keras", "roc.png", "training_curves.png"):
        assert (out / name).stat().st_size > 0
    # The contract export requires: the architecture and the preprocessing trained with.
    from train.contract import read_contract

    for folder in (out, out / "checkpoints"):
        contract = read_contract(folder / "model_contract.json")
        assert contract.arch == "seed" and contract.preprocess.input_size == 32
    assert 0.0 <= metrics["auc"] <= 1.0


def test_same_seed_same_model(patient_run, tmp_path):
    import keras

    from train.patient_protocol import PatientSettings, run_patient_protocol

    dataset, first_out, first_metrics, _ = patient_run
    settings = PatientSettings(
        folds=3, epochs=1, image_size=32, augment_copies=1, train_final_model=True
    )
    run_patient_protocol(dataset, tmp_path / "again", settings, log=lambda _: None)
    first = keras.models.load_model(first_out / "model.keras").get_weights()
    again = keras.models.load_model(tmp_path / "again" / "model.keras").get_weights()
    assert all(np.array_equal(a, b) for a, b in zip(first, again, strict=True))
    assert (first_out / "predictions.csv").read_text() == (
        tmp_path / "again" / "predictions.csv"
    ).read_text()
