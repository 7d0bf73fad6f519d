"""Records stay what they were: predict on the examples and on MIAS against golden files.

The golden files were written before the runtime core was rebuilt (tests/golden/README.md);
a refactor that changes a field, an order or a probability beyond onnxruntime's rounding
fails here.
"""

from __future__ import annotations

import json
import math
import tarfile
from pathlib import Path

import pytest
from conftest import MIAS_ARCHIVE, REPO_ROOT

from mammo_edge.cli import main
from mammo_edge.model.registry import default_model_name
from mammo_edge.records.record import RESULT_FIELDS

GOLDEN = REPO_ROOT / "tests" / "golden"
FLOAT_TOLERANCE = 1e-6


def _records(path: Path, strip: str = "") -> list[dict]:
    records = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    for record in records:
        for key in ("path", "partner"):
            if strip and record.get(key):
                record[key] = record[key].replace(strip, "")
    return records


def _assert_same_records(found: list[dict], golden: list[dict]) -> None:
    assert [record["path"] for record in found] == [record["path"] for record in golden]
    for new, old in zip(found, golden, strict=True):
        assert list(new) == list(RESULT_FIELDS) == list(old)
        for field in RESULT_FIELDS:
            if isinstance(old[field], float):
                assert math.isclose(new[field], old[field], abs_tol=FLOAT_TOLERANCE), (
                    new["path"],
                    field,
                )
            else:
                assert new[field] == old[field], (new["path"], field)


def _golden_model_is_the_default(golden: list[dict]) -> None:
    if golden[0]["model_name"] != default_model_name():
        pytest.fail(
            f"the golden records were scored by {golden[0]['model_name']}, the default is now "
            f"{default_model_name()}: capture them again (tests/golden/README.md)"
        )


def test_predict_on_the_examples_gives_the_golden_records(tmp_path, monkeypatch):
    golden = _records(GOLDEN / "examples_predict.jsonl")
    _golden_model_is_the_default(golden)
    monkeypatch.chdir(REPO_ROOT)
    monkeypatch.delenv("MAMMO_EDGE_MODEL", raising=False)
    output = tmp_path / "records.jsonl"
    assert main(["predict", "examples/", "-f", "jsonl", "-o", str(output), "-q"]) == 0
    _assert_same_records(_records(output), golden)


@pytest.mark.skipif(not MIAS_ARCHIVE.exists(), reason="needs ../shared/mias/all-mias.tar.gz")
def test_predict_on_mias_gives_the_golden_records(tmp_path, monkeypatch):
    golden = _records(GOLDEN / "mias_predict.jsonl")
    _golden_model_is_the_default(golden)
    folder = tmp_path / "mias"
    with tarfile.open(MIAS_ARCHIVE) as archive:
        archive.extractall(folder, filter="data")
    monkeypatch.delenv("MAMMO_EDGE_MODEL", raising=False)
    output = tmp_path / "records.jsonl"
    code = main(["predict", str(folder), "-f", "jsonl", "-o", str(output), "-q"])
    assert code in (0, 2)
    _assert_same_records(_records(output, strip=f"{folder}/"), golden)


def test_explain_and_report_records_carry_predicts_values(tmp_path, monkeypatch):
    """Same probability, label and exam fields in explain.jsonl and report as in predict.

    The shipped default weighs each image against its other breast (a pair head), so a
    verb that skipped the exam grouping would give mdb003 another probability than predict.
    """
    golden = {record["path"]: record for record in _records(GOLDEN / "examples_predict.jsonl")}
    assert any(record["view_group"] == "exam" for record in golden.values())
    monkeypatch.chdir(REPO_ROOT)
    monkeypatch.delenv("MAMMO_EDGE_MODEL", raising=False)
    for verb in ("explain", "report"):
        out = tmp_path / verb
        assert main([verb, "examples/", "-o", str(out), "-q"]) == 0
        explained = _records(out / "explain.jsonl")
        assert [record["path"] for record in explained] == list(golden)
        for record in explained:
            for field in ("probability", "label", "view_group", "partner", "exam_probability"):
                expected = golden[record["path"]][field]
                if isinstance(expected, float):
                    assert math.isclose(record[field], expected, abs_tol=FLOAT_TOLERANCE)
                else:
                    assert record[field] == expected, (verb, record["path"], field)
