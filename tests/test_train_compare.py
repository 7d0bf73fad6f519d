"""`python -m train compare`: the leak-vs-honest figure from two finished runs."""

import json

import pytest

from train.compare import main
from train.report import write_predictions


def fake_run(folder, protocol, rows, metrics):
    folder.mkdir()
    (folder / "metrics.json").write_text(json.dumps({"protocol": protocol, **metrics}))
    extra = ["split"] if protocol == "seed" else []
    write_predictions(rows, folder / "predictions.csv", extra)
    return folder


@pytest.fixture
def runs(tmp_path):
    seed_rows = [
        {
            "image": f"mdb{i:03d}",
            "patient": i,
            "fold": "",
            "label": i % 2,
            "probability": 0.2 + 0.6 * (i % 2),
            "split": "test",
        }
        for i in range(1, 9)
    ] + [
        {
            "image": "mdb099",
            "patient": 50,
            "fold": "",
            "label": 0,
            "probability": 0.9,
            "split": "dropped_normal",
        }
    ]
    patient_rows = [
        {"image": f"mdb{i:03d}", "patient": i, "fold": 1, "label": i % 2, "probability": 0.5}
        for i in range(1, 9)
    ]
    seed = fake_run(
        tmp_path / "seed",
        "seed",
        seed_rows,
        {
            "scale": {"rotations": 4},
            "test": {"auc": 1.0, "auc_ci95": [1.0, 1.0]},
            "dropped_normals_unrotated": {"n": 1, "specificity": 0.0},
        },
    )
    patient = fake_run(
        tmp_path / "patient", "patient", patient_rows, {"auc": 0.5, "auc_ci95": [0.3, 0.7]}
    )
    return seed, patient


def test_writes_the_figure(runs, tmp_path):
    seed, patient = runs
    out = tmp_path / "leak.png"
    assert main([str(seed), str(patient), "--out", str(out)]) == 0
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_runs_in_the_wrong_order_are_refused(runs, tmp_path, capsys):
    seed, patient = runs
    assert main([str(patient), str(seed), "--out", str(tmp_path / "x.png")]) == 1
    assert "seed run first" in capsys.readouterr().err


def test_missing_run_is_a_clear_error(tmp_path, capsys):
    assert main([str(tmp_path / "a"), str(tmp_path / "b"), "--out", "x.png"]) == 1
    assert "cannot read the runs" in capsys.readouterr().err
