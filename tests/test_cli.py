"""The mammo-edge command: verbs, output formats, exit codes, messages without tracebacks."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
from pathlib import Path

import cv2
import pytest
from conftest import EXAMPLES_DIR, synthetic_mammogram

from mammo_edge import __version__
from mammo_edge.cli import main
from mammo_edge.records.record import RESULT_FIELDS


@pytest.fixture
def study(tmp_path: Path) -> Path:
    """A folder with three good images (one nested) and a README that is skipped."""
    folder = tmp_path / "study"
    (folder / "left").mkdir(parents=True)
    for index, name in enumerate(["a.png", "b.pgm", "left/c.png"]):
        assert cv2.imwrite(str(folder / name), synthetic_mammogram(96, 80, index))
    (folder / "README.md").write_text("not an image; folders skip it")
    return folder


@pytest.fixture
def broken_study(study: Path) -> Path:
    (study / "zero.png").write_bytes(b"")
    (study / "text.jpg").write_text("hello")
    return study


def run(capsys, *args: str) -> tuple[int, str, str]:
    code = main([str(arg) for arg in args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_all_scored_exits_0_with_a_table(capsys, study, tiny_models_dir):
    code, out, err = run(capsys, "predict", study, "--model", tiny_models_dir)
    assert code == 0, err
    lines = out.strip().splitlines()
    assert lines[0].split()[:4] == ["PATH", "STATUS", "PROBABILITY", "LABEL"]
    assert len(lines) == 4 and all(" ok " in line for line in lines[1:])
    assert "tiny-test-model" in err and "scored 3 of 3" in err


def test_some_failed_exits_2_and_still_writes_the_rest(capsys, broken_study, tiny_models_dir):
    code, out, err = run(
        capsys, "predict", broken_study, "-m", tiny_models_dir, "--format", "jsonl"
    )
    assert code == 2
    records = [json.loads(line) for line in out.splitlines()]
    assert len(records) == 5
    by_name = {Path(record["path"]).name: record for record in records}
    assert by_name["zero.png"]["error_code"] == "EMPTY_FILE"
    assert by_name["text.jpg"]["error_code"] == "NOT_AN_IMAGE"
    assert sum(record["status"] == "ok" for record in records) == 3
    assert "2 failed" in err


def test_missing_path_is_a_record_not_a_crash(capsys, study, tiny_models_dir):
    code, out, _ = run(
        capsys, "predict", study / "a.png", study / "nope.png", "-m", tiny_models_dir, "-f", "json"
    )
    assert code == 2
    records = json.loads(out)
    assert [record["status"] for record in records] == ["ok", "error"]
    assert records[1]["error_code"] == "NOT_FOUND"


def test_json_records_carry_every_schema_field(capsys, study, tiny_models_dir):
    code, out, _ = run(capsys, "predict", study, "-m", tiny_models_dir, "-f", "json", "-q")
    assert code == 0
    records = json.loads(out)
    assert len(records) == 3
    for record in records:
        assert tuple(record) == RESULT_FIELDS
        assert record["status"] == "ok" and 0 <= record["probability"] <= 1
        assert record["label"] in ("normal", "abnormal") and record["error_code"] is None
        assert record["provider"] == "CPUExecutionProvider"
        assert len(record["model_sha256"]) == 64


def test_csv_to_a_file_opens_in_a_spreadsheet(capsys, broken_study, tiny_models_dir, tmp_path):
    target = tmp_path / "results.csv"
    code, out, _ = run(
        capsys, "predict", broken_study, "-m", tiny_models_dir, "-f", "csv", "-o", target
    )
    assert code == 2 and out == ""
    raw = target.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")  # UTF-8 BOM: Excel reads accents correctly
    rows = list(csv.DictReader(io.StringIO(raw.decode("utf-8-sig"))))
    assert tuple(rows[0]) == RESULT_FIELDS and len(rows) == 5
    failed = [row for row in rows if row["status"] == "error"]
    assert {row["probability"] for row in failed} == {""}
    assert all(float(row["probability"]) >= 0 for row in rows if row["status"] == "ok")


def test_csv_neutralises_formula_like_file_names(capsys, tmp_path, tiny_models_dir, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert cv2.imwrite("=1+1.png", synthetic_mammogram())
    code, out, _ = run(capsys, "predict", "=1+1.png", "-m", tiny_models_dir, "-f", "csv", "-q")
    assert code == 0
    rows = list(csv.DictReader(io.StringIO(out)))
    assert rows[0]["path"] == "'=1+1.png"


def test_quiet_prints_nothing_on_stderr(capsys, study, tiny_models_dir):
    code, out, err = run(capsys, "predict", study, "-m", tiny_models_dir, "-q", "-f", "jsonl")
    assert code == 0 and err == "" and len(out.splitlines()) == 3


def test_threshold_option_sets_labels(capsys, study, tiny_models_dir):
    _, out, _ = run(
        capsys, "predict", study, "-m", tiny_models_dir, "-f", "jsonl", "--threshold", "0"
    )
    records = [json.loads(line) for line in out.splitlines()]
    assert {record["label"] for record in records} == {"abnormal"}
    assert {record["threshold"] for record in records} == {0.0}


def test_env_var_model_is_used(capsys, study, tiny_models_dir, monkeypatch):
    monkeypatch.setenv("MAMMO_EDGE_MODEL", str(tiny_models_dir))
    code, _, _ = run(capsys, "predict", study, "-q")
    assert code == 0


def test_interrupted_run_keeps_finished_results(
    capsys, study, tiny_models_dir, tmp_path, monkeypatch
):
    from mammo_edge.engines.local import LocalEngine

    real = LocalEngine.iter_score

    def interrupted(self, inputs):
        for index, result in enumerate(real(self, inputs)):
            if index == 2:
                raise KeyboardInterrupt
            yield result

    monkeypatch.setattr(LocalEngine, "iter_score", interrupted)
    target = tmp_path / "partial.jsonl"
    code, _, err = run(capsys, "predict", study, "-m", tiny_models_dir, "-f", "jsonl", "-o", target)
    assert code == 130 and "interrupted; 2 of 3 result(s) written" in err
    assert [json.loads(line)["status"] for line in target.read_text().splitlines()] == ["ok", "ok"]


@pytest.mark.parametrize(
    "args",
    [
        ["predict", "--format", "xml", "x.png"],
        ["predict", "--threshold", "1.5", "x.png"],
        ["predict", "--batch-size", "0", "x.png"],
        ["predict"],
        ["frobnicate"],
    ],
)
def test_usage_errors_exit_1_without_traceback(capsys, args):
    code, _, err = run(capsys, *args)
    assert code == 1
    assert "Traceback" not in err and "Error" in err


def test_model_errors_exit_1_with_a_clear_message(capsys, study, tmp_path):
    target = tmp_path / "out.csv"
    code, out, err = run(capsys, "predict", study, "--model", tmp_path / "none", "-o", target)
    assert code == 1 and out == ""
    assert "not found" in err and "Traceback" not in err
    assert not target.exists()  # no empty result file from a run that never started


def test_altered_model_exits_1(capsys, study, tmp_path):
    from conftest import build_tiny_models_dir

    models = build_tiny_models_dir(tmp_path / "models")
    (models / "fp32.onnx").write_bytes((models / "fp32.onnx").read_bytes() + b"\0")
    code, _, err = run(capsys, "predict", study, "--model", models)
    assert code == 1 and "integrity check" in err


def test_folder_without_images_is_a_usage_error(capsys, tmp_path, tiny_models_dir):
    (tmp_path / "empty").mkdir()
    code, _, err = run(capsys, "predict", tmp_path / "empty", "-m", tiny_models_dir)
    assert code == 1 and "no image files" in err


def test_missing_cuda_is_a_model_error(capsys, study, tiny_models_dir):
    import onnxruntime as ort

    if "CUDAExecutionProvider" in ort.get_available_providers():
        pytest.skip("CUDA is available here")
    code, _, err = run(capsys, "predict", study, "-m", tiny_models_dir, "--device", "cuda")
    assert code == 1 and "CUDAExecutionProvider" in err


def test_info_json(capsys, tiny_models_dir):
    code, out, _ = run(capsys, "info", "--model", tiny_models_dir, "--json")
    assert code == 0
    details = json.loads(out)
    assert details["model"]["sha256_verified"] is True
    assert len(details["model"]["sha256"]) == 64
    assert details["metadata"]["model_name"] == "tiny-test-model"
    assert details["metadata"]["preprocess"]["input_size"] == 128
    assert "CPUExecutionProvider" in details["providers"]["available"]
    assert details["model_card"]["summary"] == "A mean-intensity model for tests only."
    assert details["input"][0]["name"] == "image"


def test_info_text(capsys, tiny_models_dir):
    code, out, _ = run(capsys, "info", "-m", tiny_models_dir)
    assert code == 0
    assert "verified against manifest" in out and "threshold:        0.5" in out
    assert "Model card" in out and "providers:" in out
    assert "cv metrics:       AUC 0.500" in out


def test_info_summarises_cv_metrics_beside_the_baseline():
    from mammo_edge.model.info import metrics_summary

    summary = metrics_summary(
        {
            "auc": 0.61,
            "auc_ci95": [0.52, 0.7],
            "accuracy": 0.6,
            "always_normal_accuracy": 0.64,
            "balanced_accuracy": 0.55,
            "sensitivity": 0.4,
            "specificity": 0.7,
            "threshold": 0.5,
        }
    )
    assert summary == (
        "AUC 0.610 (95% CI 0.520-0.700); accuracy 0.600 vs always-normal 0.640; "
        "balanced accuracy 0.550; sensitivity 0.400 / specificity 0.700 at threshold 0.5"
    )
    assert metrics_summary({}) == "none recorded"


def test_info_says_when_figures_are_at_another_threshold_or_in_sample():
    from mammo_edge.model.info import metrics_summary

    metrics = {"auc": 0.87, "sensitivity": 0.9, "specificity": 0.7, "threshold": 0.5}
    seed_like = metrics_summary(metrics, 0.481756, "patient")
    assert seed_like.endswith("at threshold 0.5, not the model's 0.4818")
    published = metrics_summary(metrics, 0.5, "every image once; in-sample: 191 fitted")
    assert published.startswith("IN-SAMPLE, not a measure on new images: AUC 0.870")


def test_info_prints_the_seeds_own_threshold(capsys):
    assert main(["info", "--model", "seed"]) == 0
    out = capsys.readouterr().out
    assert "threshold:        0.4818 (" in out and "0.500" not in out


def test_a_bad_model_name_from_the_environment_says_where_it_came_from(capsys, monkeypatch):
    monkeypatch.setenv("MAMMO_EDGE_MODEL", "bogus")
    code = main(["predict", str(EXAMPLES_DIR / "mdb003.pgm")])
    err = capsys.readouterr().err
    assert code == 1
    assert "'bogus' (from the environment variable MAMMO_EDGE_MODEL" in err


def test_deprecated_model_alias_warns(caplog):
    from mammo_edge.model.registry import resolve_model

    with caplog.at_level("WARNING", logger="mammo_edge"):
        assert resolve_model("fp32").name == "seed"
    assert "'fp32' is deprecated" in caplog.text and "use 'seed'" in caplog.text
    caplog.clear()
    with caplog.at_level("WARNING", logger="mammo_edge"):
        resolve_model("seed")
    assert caplog.text == ""


def test_info_without_a_model_exits_1(capsys, tmp_path):
    code, _, err = run(capsys, "info", "--model", tmp_path)
    assert code == 1 and "No model manifest" in err


def test_version_and_help(capsys):
    code, out, _ = run(capsys, "--version")
    assert code == 0 and out.startswith(f"mammo-edge {__version__}")
    code, out, _ = run(capsys, "predict", "--help")
    assert code == 0
    for option in ("--model", "--threshold", "--batch-size", "--threads", "--device", "--format"):
        assert option in out


def test_installed_entry_point_exit_codes(broken_study, tiny_models_dir):
    """Through a real process: exit status 2 reaches the shell."""
    completed = subprocess.run(
        [sys.executable, "-m", "mammo_edge.cli", "predict", str(broken_study), "-q", "-f", "csv"],
        capture_output=True,
        text=True,
        env={"MAMMO_EDGE_MODEL": str(tiny_models_dir), "PATH": ""},
        timeout=60,
    )
    assert completed.returncode == 2, completed.stderr
    assert len(completed.stdout.strip().splitlines()) == 6  # header + 5 records


def test_folder_star_on_a_mias_folder_gives_one_record_per_text_file(capsys, tmp_path):
    """``predict mias/*``: Info.txt and Licence.txt are one NOT_AN_IMAGE record each (with
    a hint about @), not list files expanding into bogus NOT_FOUND rows."""
    import shutil

    shutil.copy(EXAMPLES_DIR / "mdb003.pgm", tmp_path / "mdb003.pgm")
    (tmp_path / "Info.txt").write_text("mdb001 G CIRC B 535 425 197\nmdb002 G CIRC B 522 280 69\n")
    (tmp_path / "Licence.txt").write_text("research use only\n")
    code, out, _ = run(capsys, "predict", str(tmp_path / "*"), "-m", "seed", "-f", "jsonl")
    records = [json.loads(line) for line in out.splitlines()]
    assert code == 2
    assert [(Path(r["path"]).name, r["error_code"]) for r in records] == [
        ("Info.txt", "NOT_AN_IMAGE"),
        ("Licence.txt", "NOT_AN_IMAGE"),
        ("mdb003.pgm", None),
    ]
    assert "pass @" in records[0]["error_message"]
