"""The Python API over many inputs: folders, globs, list files, URIs; the public steps."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from conftest import synthetic_mammogram, tiny_probability

from mammo_edge.errors import ErrorCode
from mammo_edge.images.inputs import expand_inputs, iter_inputs
from mammo_edge.images.pipeline import LoadedImage, load_input, score_loaded
from mammo_edge.images.preprocess import Geometry, PreprocessConfig
from mammo_edge.records.record import RecordContext, build_record


@pytest.fixture
def archive(tmp_path: Path) -> Path:
    """``archive/a.png``, ``archive/b.png``, ``archive/deep/c.pgm`` and a README."""
    folder = tmp_path / "archive"
    (folder / "deep").mkdir(parents=True)
    for index, name in enumerate(["a.png", "b.png", "deep/c.pgm"]):
        assert cv2.imwrite(str(folder / name), synthetic_mammogram(96, 80, index))
    (folder / "README.md").write_text("skipped")
    return folder


def test_iter_predict_paths_expands_folders_globs_lists_like_the_cli(
    archive, tmp_path, tiny_predictor, tiny_models_dir, capsys
):
    listing = tmp_path / "list.txt"
    listing.write_text("archive/deep/c.pgm\n# a comment\nmissing.png\n")
    arguments = [str(archive), str(tmp_path / "archive" / "*.png"), f"@{listing}"]
    results = list(tiny_predictor.iter_predict_paths(arguments))
    names = [Path(result.path).name for result in results]
    assert names == ["a.png", "b.png", "c.pgm", "a.png", "b.png", "c.pgm", "missing.png"]
    assert [result.error_code for result in results][-1] == "NOT_FOUND"
    assert all(result.ok for result in results[:-1])

    from mammo_edge.cli import main

    assert main(["predict", *arguments, "-m", str(tiny_models_dir), "-f", "jsonl", "-q"]) == 2
    cli = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [record["path"] for record in cli] == [result.path for result in results]
    assert [record["probability"] for record in cli] == [r.probability for r in results]


def test_one_folder_argument_is_enough(archive, tiny_predictor):
    results = list(tiny_predictor.iter_predict_paths(archive))
    assert len(results) == 3 and all(result.ok for result in results)


def test_expansion_is_lazy(archive):
    consumed = []

    def arguments():
        for argument in [str(archive / "a.png"), str(archive / "b.png")]:
            consumed.append(argument)
            yield argument

    paths = iter_inputs(arguments())
    assert next(paths) == str(archive / "a.png") and len(consumed) == 1
    assert list(paths) == [str(archive / "b.png")]
    assert expand_inputs([archive]) == list(iter_inputs([archive]))


def test_file_uris_are_listed_and_read_through_pyarrow(archive, tiny_predictor):
    pytest.importorskip("pyarrow", reason="URIs are read through pyarrow filesystems")
    uri = archive.resolve().as_uri()
    paths = expand_inputs([uri, uri + "/nope.png"])
    assert paths == [
        f"{uri}/a.png",
        f"{uri}/b.png",
        f"{uri}/deep/c.pgm",
        f"{uri}/nope.png",
    ]
    by_uri = tiny_predictor.predict(paths)
    by_path = tiny_predictor.predict(expand_inputs([archive]))
    assert [r.probability for r in by_uri[:3]] == [r.probability for r in by_path]
    assert by_uri[3].error_code == "NOT_FOUND"


def test_load_input_carries_the_model_input_and_its_geometry(archive):
    config = PreprocessConfig()
    loaded = load_input(str(archive / "a.png"), config)
    assert loaded.ok and loaded.path == str(archive / "a.png") and loaded.image_format == "png"
    assert loaded.model_input.shape == (128, 128, 1) and loaded.model_input.dtype == np.float32
    assert isinstance(loaded.geometry, Geometry)
    assert (loaded.geometry.original_width, loaded.geometry.original_height) == (80, 96)


@pytest.mark.parametrize(
    ("source", "code"),
    [
        ("missing.png", ErrorCode.NOT_FOUND),
        (np.zeros((4, 4), np.uint8), ErrorCode.TOO_SMALL),
        (np.zeros((64, 64), np.float32), ErrorCode.UNSUPPORTED_FORMAT),
    ],
)
def test_load_input_never_raises_for_a_bad_input(source, code):
    loaded = load_input(source, PreprocessConfig(), label="x")
    assert not loaded.ok and loaded.error_code == code.value and loaded.error_message
    assert loaded.model_input is None and loaded.path == "x"


@pytest.mark.parametrize("config", [PreprocessConfig(), PreprocessConfig(breast_crop=True)])
def test_a_blank_frame_is_no_breast_found_for_every_model(config):
    """The guard is the runtime's, not the breast-cropping model's: the seed's plain resize
    is refused the same black frame."""
    blank = np.zeros((256, 200), np.uint8)
    loaded = load_input(blank, config)
    assert loaded.error_code == "NO_BREAST_FOUND" and "not a mammogram" in loaded.error_message


def test_score_loaded_and_build_record(archive):
    config = PreprocessConfig()
    items = [
        load_input(str(archive / "a.png"), config),
        load_input("missing.png", config),
        load_input(str(archive / "b.png"), config),
    ]
    scored = score_loaded(items, lambda batch: batch.mean(axis=(1, 2, 3)) / 255.0)
    assert scored[1] is items[1]
    expected = float(items[0].model_input.mean() / 255.0)
    assert scored[0].probability == pytest.approx(expected)
    context = RecordContext(0.3, ("normal", "abnormal"), "m", "1", "s" * 64, "CPU")
    records = [build_record(item, context) for item in scored]
    assert [record.status for record in records] == ["ok", "error", "ok"]
    assert records[0].label == ("abnormal" if expected >= 0.3 else "normal")
    assert records[1].error_code == "NOT_FOUND" and records[1].model_sha256 == "s" * 64


def test_a_failing_scorer_marks_only_the_scorable_items():
    ok = LoadedImage("a", np.zeros((128, 128, 1), np.float32))
    bad = LoadedImage("b", None, error_code="CORRUPT", error_message="x")

    def fail(batch):
        raise RuntimeError("device lost")

    scored = score_loaded([ok, bad], fail)
    assert scored[0].error_code == "INFERENCE_FAILED" and "device lost" in scored[0].error_message
    assert scored[1] is bad
    nan = score_loaded([ok], lambda batch: np.array([np.nan]))
    assert nan[0].error_code == "INFERENCE_FAILED"


def test_predictor_from_model_bytes_checks_the_sha256(tiny_model_path):
    from mammo_edge.errors import ModelError
    from mammo_edge.predictor import Predictor

    data = tiny_model_path.read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    predictor = Predictor.from_model_bytes(data, sha256=digest, device="cpu")
    image = synthetic_mammogram(96, 80, 3)
    assert predictor.predict(image).probability == pytest.approx(tiny_probability(image), abs=1e-5)
    with pytest.raises(ModelError, match="integrity"):
        Predictor.from_model_bytes(data + b"\0", sha256=digest, device="cpu")


def test_iter_predict_paths_streams_before_the_arguments_are_exhausted(archive, tiny_predictor):
    consumed = []

    def arguments():
        for index in range(200):
            consumed.append(index)
            yield archive / ("a.png" if index % 2 else "deep")

    stream = tiny_predictor.iter_predict_paths(arguments())
    assert next(stream).ok
    in_scoring = tiny_predictor.streams * tiny_predictor.batch_size
    bound = 2 * tiny_predictor.batch_size + tiny_predictor.workers + in_scoring
    assert len(consumed) <= bound
    assert sum(1 for _ in stream) == 199
