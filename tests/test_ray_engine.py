"""The Ray engine on a local 2-CPU Ray instance: the same records as the local engine.

One Ray instance serves the whole module (starting one takes seconds). The inputs are the
six real MIAS images of ``examples/`` plus an empty, a text, a truncated and a missing file,
scored by the shipped model.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from conftest import EXAMPLES_DIR

from mammo_edge.errors import ModelError
from mammo_edge.images.inputs import expand_inputs
from mammo_edge.predictor import Predictor

ray = pytest.importorskip("ray", reason="the Ray engine needs the ray extra")
pytest.importorskip("ray.data", reason="the Ray engine needs ray[data]")

from mammo_edge.engines.ray_engine import (  # noqa: E402
    RayEngine,
    ScoringActor,
    plan_actors,
)

# Ray Data's own context warns about its renamed settings on every run; not ours.
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning:ray")


@pytest.fixture(scope="module")
def ray_instance():
    """A local Ray instance of 2 CPUs, shared by this module's tests."""
    if ray.is_initialized():
        ray.shutdown()
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()


@pytest.fixture(scope="module")
def study(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Real MIAS images and bad files, in a folder."""
    folder = tmp_path_factory.mktemp("ray_study")
    for image in sorted(EXAMPLES_DIR.glob("*.pgm")):
        shutil.copy(image, folder / image.name)
    (folder / "empty.png").write_bytes(b"")
    (folder / "notes.jpg").write_text("not an image")
    (folder / "cut.pgm").write_bytes((EXAMPLES_DIR / "mdb003.pgm").read_bytes()[:5000])
    return folder


@pytest.fixture(scope="module")
def predictor() -> Predictor:
    """The shipped model on CPU; batch 4 so that the 10 inputs make several batches."""
    return Predictor(device="cpu", batch_size=4, workers=2)


def inputs_of(study: Path) -> list[str]:
    return expand_inputs([study, study / "missing.pgm"])


def test_ray_engine_gives_the_local_engines_records(ray_instance, study, predictor):
    paths = inputs_of(study)
    local = list(predictor.iter_predict(paths))
    on_ray = list(RayEngine(predictor).iter_predict(paths))
    assert [r.path for r in on_ray] == [r.path for r in local] == paths
    assert [r.error_code for r in on_ray] == [r.error_code for r in local]
    assert {r.error_code for r in local} == {
        None,
        "EMPTY_FILE",
        "NOT_AN_IMAGE",
        "TRUNCATED",
        "NOT_FOUND",
    }
    assert sum(r.ok for r in on_ray) == 6
    for ours, theirs in zip(on_ray, local, strict=True):
        if theirs.ok:
            assert ours.probability == pytest.approx(theirs.probability, abs=1e-5)
        else:
            assert ours.probability is None
        mine, reference = ours.as_dict(), theirs.as_dict()
        mine.pop("probability"), reference.pop("probability")
        assert mine == reference


def test_cli_engine_ray_writes_the_same_jsonl(ray_instance, study, capsys, tmp_path):
    from mammo_edge.cli import main

    common = ["predict", str(study), "--device", "cpu", "-f", "jsonl", "-q", "--batch-size", "4"]
    local_file, ray_file = tmp_path / "local.jsonl", tmp_path / "ray.jsonl"
    assert main([*common, "-o", str(local_file)]) == 2
    assert main([*common, "-o", str(ray_file), "--engine", "ray"]) == 2
    local = [json.loads(line) for line in local_file.read_text().splitlines()]
    on_ray = [json.loads(line) for line in ray_file.read_text().splitlines()]
    assert [r["path"] for r in on_ray] == [r["path"] for r in local]
    assert [r["error_code"] for r in on_ray] == [r["error_code"] for r in local]
    for ours, theirs in zip(on_ray, local, strict=True):
        assert (ours["probability"] is None) == (theirs["probability"] is None)
        if theirs["probability"] is not None:
            assert abs(ours["probability"] - theirs["probability"]) <= 1e-5


def test_actor_scores_only_bytes_with_the_expected_sha256(ray_instance, predictor):
    real = predictor.read_model_bytes()
    options = {
        "sha256": predictor.model_sha256,
        "source": "test",
        "device": "cpu",
        "threads": 1,
        "threshold_setting": predictor.threshold_setting,
        "batch_size": 4,
    }
    actor = ScoringActor([ray.put(real)], **options)
    assert actor.predictor.model_sha256 == predictor.model_sha256
    tampered = real[:-1] + bytes([real[-1] ^ 1])
    with pytest.raises(ModelError, match="integrity check"):
        ScoringActor([ray.put(tampered)], **options)


def test_a_run_whose_actors_refuse_the_model_fails_with_a_model_error(
    ray_instance, study, predictor, monkeypatch
):
    real = predictor.read_model_bytes()
    monkeypatch.setattr(predictor, "read_model_bytes", lambda: real + b"\0")
    with pytest.raises(ModelError, match="refused the model"):
        list(RayEngine(predictor).iter_predict([str(study / "mdb003.pgm")]))


def test_actor_plan_leaves_room_for_loading():
    two = plan_actors(2)
    assert two.actors == 2 and two.threads == 1
    assert two.actors * two.actor_cpus + two.load_cpus <= 2
    one = plan_actors(1)
    assert one.actors == 1 and one.threads == 1 and one.actor_cpus + one.load_cpus <= 1
    wide = plan_actors(8, cpus_per_actor=4)
    assert wide.actors == 2 and wide.threads == 4


def test_num_cpus_with_an_address_is_refused(predictor):
    with pytest.raises(ValueError, match="local Ray instance"):
        RayEngine(predictor, address="auto", num_cpus=2)


def test_cli_joins_a_running_cluster_by_address(ray_instance, predictor):
    """A second process joins this module's Ray instance as it would a cluster's head."""
    import subprocess
    import sys

    from conftest import REPO_ROOT

    address = ray.get_runtime_context().gcs_address
    paths = [str(path) for path in sorted(EXAMPLES_DIR.glob("*.pgm"))]
    joined = subprocess.run(
        [sys.executable, "-m", "mammo_edge.cli", "predict", *paths, "--engine", "ray"]
        + ["--address", address, "-f", "jsonl", "-q", "--device", "cpu", "--batch-size", "4"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert joined.returncode == 0, joined.stderr
    records = [json.loads(line) for line in joined.stdout.splitlines()]
    local = predictor.predict(paths)
    assert [record["path"] for record in records] == paths
    for record, reference in zip(records, local, strict=True):
        assert abs(record["probability"] - reference.probability) <= 1e-5
