"""The DICOM node scores a study exactly as ``predict`` scores the same files, any layout.

A property test over random study layouts (seeded, so a failure replays): 1-8 images;
left, right or missing laterality; CC, MLO or missing view; duplicate instances; the
study arriving in one or two revisions. After the last revision, the latest row of each
instance in ``results.jsonl`` and the latest SR carry ``predict``'s values to 1e-6, with
the model's pair head, single-view head and both families of operating points in play.
"""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("pynetdicom")
pytest.importorskip("highdicom")

from explain_fixtures import build_heatmap_model, heatmap_metadata, synthetic_breast  # noqa: E402
from pydicom.uid import generate_uid  # noqa: E402

from tests.serve_fixtures import (  # noqa: E402
    in_process_scorer,
    mammogram_dataset,
    read_results,
    spool_dataset,
    write_dataset,
)

PAIR = {
    "features": ["cnn_logit", "cnn_logit_minus_other"],
    "mean": [0.0, 0.0],
    "scale": [1.0, 1.0],
    "coefficients": [1.0, 0.9],
    "intercept": -0.2,
}
SINGLE = {
    "features": ["cnn_logit"],
    "mean": [0.0],
    "scale": [1.0],
    "coefficients": [1.2],
    "intercept": 0.3,
}
POINTS = {
    "default": "balanced",
    "points": {"balanced": {"threshold": 0.55}, "triage": {"threshold": 0.3}},
    "single_view": {
        "default": "balanced",
        "points": {"balanced": {"threshold": 0.65}, "triage": {"threshold": 0.25}},
    },
}
LAYOUTS = 12
COMPARED = (
    "status",
    "probability",
    "label",
    "threshold",
    "operating_point",
    "view_group",
    "breast_probability",
    "exam_probability",
    "network_probability",
    "laterality",
    "view",
)


@pytest.fixture(scope="module")
def predictor(tmp_path_factory):
    from mammo_edge import Predictor

    metadata = heatmap_metadata(head={"pair": PAIR, "single": SINGLE}, operating_points=POINTS)
    path = build_heatmap_model(tmp_path_factory.mktemp("model") / "pair.onnx", metadata)
    return Predictor(path, threads=1, streams=1)


def random_study(rng: np.random.Generator) -> list:
    """1-8 images of one study, each with a random breast, view and blob."""
    study = generate_uid()
    datasets = []
    for index in range(int(rng.integers(1, 9))):
        pixels = synthetic_breast(
            blob=(float(rng.uniform(60, 180)), float(rng.uniform(200, 420))),
            blob_sigma=float(rng.uniform(4, 14)),
            seed=int(rng.integers(1 << 30)),
        )
        dataset = mammogram_dataset(
            pixels,
            study_uid=study,
            laterality=str(rng.choice(["L", "R", ""])),
            view=str(rng.choice(["CC", "MLO", ""])),
        )
        dataset.InstanceNumber = index + 1
        datasets.append(dataset)
    return datasets


def predict_study(predictor, datasets, folder) -> dict:
    """``predict`` on the study's distinct files, by SOP Instance UID."""
    folder.mkdir(parents=True)
    for dataset in datasets:
        write_dataset(dataset, folder / f"{dataset.SOPInstanceUID}.dcm")
    return {
        record.path.rsplit("/", 1)[-1].removesuffix(".dcm"): record.as_dict()
        for record in predictor.iter_predict_paths([str(folder)])
    }


def assert_same(found: dict, expected: dict, where: str) -> None:
    for field in COMPARED:
        value, reference = found[field], expected[field]
        if isinstance(reference, float):
            assert value == pytest.approx(reference, abs=1e-6), (where, field)
        else:
            assert value == reference, (where, field)


@pytest.mark.parametrize("seed", range(LAYOUTS))
def test_node_equals_predict_on_every_layout(tmp_path, predictor, seed):
    from pydicom import dcmread

    from mammo_edge.serve.structured_report import read_probabilities

    rng = np.random.default_rng(seed)
    datasets = random_study(rng)
    cut = int(rng.integers(1, len(datasets) + 1))  # == len: one revision
    arrivals = [datasets[:cut], datasets[cut:]]
    duplicate = datasets[int(rng.integers(len(datasets)))]
    arrivals[int(rng.integers(2))].append(duplicate)  # the same instance sent again
    scorer = in_process_scorer(tmp_path / "out", predictor)
    study = datasets[0].StudyInstanceUID
    revisions = 0
    for arrival in arrivals:
        if not arrival:
            continue
        for dataset in arrival:
            spool_dataset(scorer, dataset)
        scorer.score_study(study)
        revisions += 1

    expected = predict_study(predictor, datasets, tmp_path / "files")
    latest = {row["sop_instance_uid"]: row for row in read_results(tmp_path / "out")}
    assert set(latest) == set(expected)
    for uid, row in latest.items():
        assert_same(row, expected[uid], f"seed {seed}, {uid}")
    reports = sorted((tmp_path / "out" / study).glob("sr-r*.dcm"))
    assert reports, "no SR written"
    in_report = read_probabilities(dcmread(reports[-1]))
    scored = {uid: record for uid, record in expected.items() if record["status"] == "ok"}
    assert set(in_report) == set(scored)
    for uid, probability in in_report.items():
        assert probability == pytest.approx(scored[uid]["probability"], abs=1e-6)
