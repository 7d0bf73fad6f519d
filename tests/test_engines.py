"""The engine registry: engines are found by name, and a new one is one module."""

from __future__ import annotations

import json
import sys
import textwrap

import cv2
import pytest
from conftest import synthetic_mammogram

import mammo_edge.engines as engines
from mammo_edge.cli import main
from mammo_edge.errors import ModelError
from mammo_edge.predictor import Predictor

#: A whole engine in one module: score inputs one at a time, in this process.
SERIAL_ENGINE = textwrap.dedent(
    """
    from mammo_edge.engines import EngineBase
    from mammo_edge.images.pipeline import input_label, score_loaded
    from mammo_edge.records.record import build_record


    class SerialEngine(EngineBase):
        name = "serial"
        calls = 0

        def iter_records(self, inputs):
            predictor = self.predictor
            for index, source in enumerate(inputs):
                SerialEngine.calls += 1
                item = predictor.load(source, input_label(source, index))
                (scored,) = score_loaded([item], predictor.score_batch, predictor.head)
                yield build_record(scored, predictor.record_context)


    ENGINE = SerialEngine
    """
)


@pytest.fixture
def serial_engine(tmp_path, monkeypatch):
    """``serial.py`` dropped into a folder on the engines package's search path."""
    folder = tmp_path / "more_engines"
    folder.mkdir()
    (folder / "serial.py").write_text(SERIAL_ENGINE)
    monkeypatch.setattr(engines, "__path__", [*engines.__path__, str(folder)])
    yield "serial"
    sys.modules.pop("mammo_edge.engines.serial", None)


@pytest.fixture
def study(tmp_path):
    folder = tmp_path / "study"
    folder.mkdir()
    for index in range(3):
        assert cv2.imwrite(str(folder / f"{index}.png"), synthetic_mammogram(96, 80, index))
    (folder / "broken.png").write_bytes(b"not a png")
    return folder


def test_the_built_in_engines_are_registered_local_first():
    names = engines.engine_names()
    assert names[0] == "local" and "ray" in names


def test_an_engine_added_as_one_module_scores_from_the_cli(
    serial_engine, study, tiny_models_dir, tmp_path
):
    assert serial_engine in engines.engine_names()
    outputs = {}
    for engine in ("local", serial_engine):
        outputs[engine] = tmp_path / f"{engine}.jsonl"
        common = ["predict", str(study), "-m", str(tiny_models_dir), "-f", "jsonl", "-q"]
        assert main([*common, "-o", str(outputs[engine]), "--engine", engine]) == 2
    module = sys.modules["mammo_edge.engines.serial"]
    assert module.SerialEngine.calls == 4  # it, not the local engine, scored every input
    local, serial = (
        [json.loads(line) for line in outputs[name].read_text().splitlines()]
        for name in ("local", serial_engine)
    )
    assert [record["path"] for record in serial] == [record["path"] for record in local]
    for mine, theirs in zip(serial, local, strict=True):
        assert mine["status"] == theirs["status"] and mine["error_code"] == theirs["error_code"]
        if mine["probability"] is not None:
            assert mine["probability"] == pytest.approx(theirs["probability"], abs=1e-5)


def test_an_unknown_engine_is_a_usage_error_naming_those_that_exist(capsys, study, tiny_models_dir):
    code = main(["predict", str(study), "-m", str(tiny_models_dir), "--engine", "warp"])
    err = capsys.readouterr().err
    assert code == 1 and "no engine named 'warp'" in err and "local" in err


def test_an_option_the_engine_does_not_take_is_refused(tiny_models_dir):
    predictor = Predictor(tiny_models_dir)
    with pytest.raises(ModelError, match="need --engine ray"):
        engines.create_engine("local", predictor, address="auto")
    engine = engines.create_engine("local", predictor, address=None)  # unset is fine
    assert engine.name == "local"


def test_evaluate_scores_through_the_engine_it_is_given(
    serial_engine, study, tiny_models_dir, tmp_path
):
    labels = tmp_path / "labels.csv"
    labels.write_text("image,label\n0.png,0\n1.png,1\n2.png,0\nbroken.png,1\n")
    documents = {}
    for engine in ("local", serial_engine):
        out = tmp_path / f"evaluation-{engine}"
        common = ["evaluate", str(study), "-l", str(labels), "-m", str(tiny_models_dir), "-q"]
        assert main([*common, "-o", str(out), "--engine", engine]) == 2  # broken.png failed
        documents[engine] = json.loads((out / "metrics.json").read_text())
    module = sys.modules["mammo_edge.engines.serial"]
    assert module.SerialEngine.calls == 4
    assert documents["local"]["n"] == documents[serial_engine]["n"] == 3
    assert documents["local"]["auc"] == pytest.approx(documents[serial_engine]["auc"])
