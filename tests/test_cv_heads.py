"""train.cv_heads: the heads and points a training run ships (head.json), fitted on
synthetic out-of-fold probabilities, and read back by ``python -m export onnx --head``."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from conftest import tiny_metadata

from mammo_edge.calibration import figures
from mammo_edge.evaluation.dataset_manifest import DatasetImage
from mammo_edge.model.metadata import ModelMetadata
from train.cv_heads import write_run_heads
from train.dataset import TrainingImage
from train.report import write_predictions


@pytest.fixture(autouse=True)
def few_replicates(monkeypatch):
    monkeypatch.setattr(figures, "REPLICATES", 40)


def _run(tmp_path: Path, patients: int = 24, sides=("L", "R"), seed: int = 0):
    """A run folder with predictions.csv: patients 0..N-1, CC and MLO of each side, the
    left breast of every other patient abnormal; 2 patient folds."""
    rng = np.random.default_rng(seed)
    records, rows = [], []
    for patient in range(patients):
        for side in sides:
            for view in ("CC", "MLO"):
                label = int(patient % 2 == 0 and side == "L")
                name = f"p{patient}_{side}_{view}"
                image = DatasetImage(
                    Path(name), name, label, f"P{patient}", "S1", side, view,
                    None, None, None, (), (1,),
                )  # fmt: skip
                records.append(TrainingImage(name, f"P{patient}", label, None, image))
                probability = 1 / (1 + np.exp(-(1.5 * label - 0.7 + rng.normal(0, 1))))
                fold = 1 + patient % 2 if patient < patients // 2 else 2 - patient % 2
                rows.append(
                    {
                        "image": name,
                        "patient": f"P{patient}",
                        "fold": fold,
                        "label": label,
                        "probability": float(probability),
                    }
                )
    write_predictions(rows, tmp_path / "predictions.csv")
    return SimpleNamespace(records=records)


def test_both_breasts_give_a_pair_head_and_single_view_points(tmp_path):
    from export.model_metadata import with_shipped_head

    messages = []
    fitted = write_run_heads(_run(tmp_path), tmp_path, messages.append)
    written = json.loads((tmp_path / "head.json").read_text())
    assert fitted["pair_head"] and written["pair_head"] is True
    assert written["head"]["pair"]["features"] == ["cnn_logit", "cnn_logit_minus_other"]
    assert written["head"]["single"]["features"] == ["cnn_logit"]
    assert written["fitted_on"]["paired_images"] == 96 and written["fitted_on"]["folds"] == 2
    assert set(written["figures_cross_fitted"]) == {"paired", "single_view"}
    points = written["operating_points"]
    assert set(points["points"]) == set(points["single_view"]["points"]) == {"triage", "balanced"}
    assert "pair and single-view heads" in messages[-1]
    metadata = with_shipped_head(tiny_metadata(), tmp_path / "head.json")
    loaded = ModelMetadata.from_props(metadata.to_props())
    assert set(loaded.head) == {"pair", "single"}
    assert (
        loaded.operating_points["single_view"]["points"]["triage"]["threshold"]
        == (points["single_view"]["points"]["triage"]["threshold"])
    )
    assert loaded.threshold == points["points"]["balanced"]["threshold"]


def test_one_breast_per_patient_gives_the_single_view_head_only(tmp_path):
    from export.model_metadata import with_shipped_head

    messages = []
    write_run_heads(_run(tmp_path, sides=("L",)), tmp_path, messages.append)
    written = json.loads((tmp_path / "head.json").read_text())
    assert written["pair_head"] is False and set(written["head"]) == {"single"}
    assert "single-view head only" in written["pair_head_note"]
    assert "single-view head only" in messages[-1]
    assert "single_view" not in written["operating_points"]
    assert set(written["figures_cross_fitted"]) == {"image"}
    metadata = with_shipped_head(tiny_metadata(), tmp_path / "head.json")
    assert set(metadata.head) == {"single"}


def test_the_figures_are_cross_fitted_not_refitted_on_the_judged_fold(tmp_path):
    written = write_run_heads(_run(tmp_path, seed=1), tmp_path, lambda message: None)
    # the shipped threshold is fitted on all images; the figures judge each fold by
    # the other fold's fit, so the sensitivity at triage need not reach 0.90
    triage = written["operating_points"]["points"]["triage"]
    assert 0.0 <= triage["threshold"] <= 1.0
    paired = written["figures_cross_fitted"]["paired"]
    assert paired["images"] == 96 and paired["patients"] == 24
    assert len(paired["points"]["balanced"]["sensitivity_ci95"]) == 2


def test_too_few_images_write_no_head_and_say_why(tmp_path):
    messages = []
    assert (
        write_run_heads(_run(tmp_path, patients=6, sides=("L",)), tmp_path, messages.append) is None
    )
    assert not (tmp_path / "head.json").exists()
    assert messages and messages[0].startswith("no head.json:") and "abnormal images" in messages[0]
