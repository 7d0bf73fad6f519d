"""``predict --resume``: after a crash every input ends up in the file exactly once."""

from __future__ import annotations

import codecs
import csv
import io
import json
from pathlib import Path

import cv2
import pytest
from conftest import synthetic_mammogram

from mammo_edge.cli import main
from mammo_edge.records.record import RESULT_FIELDS
from mammo_edge.records.resume import ResumeError, prepare_resume


@pytest.fixture
def study(tmp_path: Path) -> Path:
    """Seven images and one bad file (eight inputs)."""
    folder = tmp_path / "study"
    folder.mkdir()
    for index in range(7):
        assert cv2.imwrite(str(folder / f"img{index}.png"), synthetic_mammogram(96, 80, index))
    (folder / "zz_broken.png").write_text("not an image")
    return folder


def run(capsys, *args) -> tuple[int, str, str]:
    code = main([str(arg) for arg in args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def jsonl_records(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def csv_rows(path: Path) -> list[list[str]]:
    text = path.read_bytes().decode("utf-8")
    assert text.startswith("\ufeff") and text.count("\ufeff") == 1
    return list(csv.reader(io.StringIO(text[1:])))


def full_run(capsys, study: Path, model: Path, output: Path, fmt: str) -> None:
    code, _, err = run(capsys, "predict", study, "-m", model, "-f", fmt, "-o", output, "-q")
    assert code == 2, err


def test_jsonl_resume_after_a_crash_mid_line_gives_every_input_once(
    capsys, study, tiny_models_dir, tmp_path
):
    reference = tmp_path / "reference.jsonl"
    full_run(capsys, study, tiny_models_dir, reference, "jsonl")
    lines = reference.read_bytes().splitlines(keepends=True)
    crashed = tmp_path / "crashed.jsonl"
    crashed.write_bytes(b"".join(lines[:3]) + lines[3][: len(lines[3]) // 2])

    code, _, err = run(
        capsys, "predict", study, "-m", tiny_models_dir, "-f", "jsonl", "-o", crashed, "--resume"
    )
    assert code == 2  # the broken file is still an error record
    assert "3 of 8 input(s) already recorded" in err and "half-written" in err
    resumed = jsonl_records(crashed)
    expected = jsonl_records(reference)
    assert [r["path"] for r in resumed] == [r["path"] for r in expected]
    assert resumed == expected


def test_csv_resume_repairs_a_cut_row_and_writes_no_second_header(
    capsys, study, tiny_models_dir, tmp_path
):
    reference = tmp_path / "reference.csv"
    full_run(capsys, study, tiny_models_dir, reference, "csv")
    data = reference.read_bytes()
    rows_end = [index + 1 for index, byte in enumerate(data) if byte == ord("\n")]
    crashed = tmp_path / "crashed.csv"
    crashed.write_bytes(data[: rows_end[4] + 25])  # header, 4 rows, part of the 5th

    code, _, err = run(
        capsys, "predict", study, "-m", tiny_models_dir, "-f", "csv", "-o", crashed, "--resume"
    )
    assert code == 2 and "4 of 8 input(s) already recorded" in err
    rows = csv_rows(crashed)
    assert rows[0] == list(RESULT_FIELDS)
    assert sum(row == list(RESULT_FIELDS) for row in rows) == 1
    assert rows == csv_rows(reference)


def test_resuming_a_finished_file_scores_nothing_and_changes_nothing(
    capsys, study, tiny_models_dir, tmp_path
):
    output = tmp_path / "done.jsonl"
    full_run(capsys, study, tiny_models_dir, output, "jsonl")
    before = output.read_bytes()
    code, _, err = run(
        capsys, "predict", study, "-m", tiny_models_dir, "-f", "jsonl", "-o", output, "--resume"
    )
    assert code == 2  # the earlier error record still counts
    assert "8 of 8 input(s) already recorded" in err and "0 new record(s)" in err
    assert output.read_bytes() == before


def test_resume_of_a_missing_file_is_a_fresh_run(capsys, study, tiny_models_dir, tmp_path):
    output = tmp_path / "new.csv"
    code, _, _ = run(
        capsys, "predict", study, "-m", tiny_models_dir, "-f", "csv", "-o", output, "--resume"
    )
    assert code == 2
    rows = csv_rows(output)
    assert rows[0] == list(RESULT_FIELDS) and len(rows) == 9


def test_new_inputs_are_appended_after_the_recorded_ones(capsys, study, tiny_models_dir, tmp_path):
    output = tmp_path / "grow.jsonl"
    first = sorted(str(path) for path in study.glob("img[0-2].png"))
    code, _, _ = run(capsys, "predict", *first, "-m", tiny_models_dir, "-f", "jsonl", "-o", output)
    assert code == 0
    code, _, _ = run(
        capsys, "predict", study, "-m", tiny_models_dir, "-f", "jsonl", "-o", output, "--resume"
    )
    paths = [record["path"] for record in jsonl_records(output)]
    assert sorted(paths) == sorted(set(paths)) and len(paths) == 8
    assert paths[:3] == first


@pytest.mark.parametrize("fmt", ["json", "table"])
def test_resume_is_refused_for_json_and_table(capsys, study, tiny_models_dir, tmp_path, fmt):
    output = tmp_path / f"out.{fmt}"
    output.write_text("[]\n")
    code, _, err = run(
        capsys, "predict", study, "-m", tiny_models_dir, "-f", fmt, "-o", output, "--resume"
    )
    assert code == 1 and "jsonl or csv" in err and "Traceback" not in err
    assert output.read_text() == "[]\n"


def test_resume_needs_an_output_file(capsys, study, tiny_models_dir):
    code, _, err = run(capsys, "predict", study, "-m", tiny_models_dir, "-f", "jsonl", "--resume")
    assert code == 1 and "--output" in err


def test_a_file_from_another_model_is_refused_unless_forced(
    capsys, study, tiny_models_dir, tmp_path
):
    output = tmp_path / "other.jsonl"
    full_run(capsys, study, tiny_models_dir, output, "jsonl")
    records = jsonl_records(output)[:2]
    for record in records:
        record["model_sha256"] = "f" * 64
    output.write_text("".join(json.dumps(record) + "\n" for record in records))
    args = ["predict", study, "-m", tiny_models_dir, "-f", "jsonl", "-o", output, "--resume"]
    code, _, err = run(capsys, *args)
    assert code == 1 and "another model" in err and "--force" in err
    assert len(jsonl_records(output)) == 2
    code, _, _ = run(capsys, *args, "--force")
    assert code == 2 and len(jsonl_records(output)) == 8


def test_a_file_at_another_threshold_is_refused(capsys, study, tiny_models_dir, tmp_path):
    output = tmp_path / "threshold.jsonl"
    full_run(capsys, study, tiny_models_dir, output, "jsonl")
    code, _, err = run(
        capsys,
        *["predict", study, "-m", tiny_models_dir, "-f", "jsonl", "-o", output, "--resume"],
        *["--threshold", "0.9"],
    )
    assert code == 1 and "threshold" in err


def test_damage_before_the_last_line_is_refused_not_guessed(tmp_path):
    output = tmp_path / "damaged.jsonl"
    good = json.dumps({"path": "a.png", "status": "ok", "model_sha256": "x", "threshold": 0.5})
    output.write_text(good + "\n" + "{garbage\n" + good.replace("a.png", "b.png") + "\n")
    with pytest.raises(ResumeError, match="line 2"):
        prepare_resume(output, "jsonl", model_sha256="x", threshold=0.5)
    assert output.read_text().count("\n") == 3  # untouched


def test_a_complete_but_unparsable_last_line_is_cut(tmp_path):
    output = tmp_path / "tail.jsonl"
    good = json.dumps({"path": "a.png", "status": "error", "model_sha256": "x", "threshold": 0.5})
    output.write_text(good + "\n" + '{"path": "b.p\n')
    state = prepare_resume(output, "jsonl", model_sha256="x", threshold=0.5)
    assert state.done == {"a.png"} and state.failed == {"a.png"} and state.repaired_bytes > 0
    assert output.read_text() == good + "\n"


def test_csv_with_another_header_is_refused(tmp_path):
    output = tmp_path / "foreign.csv"
    output.write_bytes(codecs.BOM_UTF8 + b"image,score\nx.png,0.3\n")
    with pytest.raises(ResumeError, match="header"):
        prepare_resume(output, "csv", model_sha256="x", threshold=0.5)


def test_csv_paths_guarded_against_formulas_read_back_as_written(
    capsys, tmp_path, tiny_models_dir, monkeypatch
):
    monkeypatch.chdir(tmp_path)
    assert cv2.imwrite("=cmd.png", synthetic_mammogram(96, 80, 1))
    assert cv2.imwrite("plain.png", synthetic_mammogram(96, 80, 2))
    output = tmp_path / "guarded.csv"
    code, _, _ = run(
        capsys, "predict", "=cmd.png", "-m", tiny_models_dir, "-f", "csv", "-o", output
    )
    assert code == 0
    state = prepare_resume(output, "csv", model_sha256=_sha(tiny_models_dir), threshold=0.5)
    assert state.done == {"=cmd.png"}
    code, _, err = run(
        capsys,
        *["predict", "=cmd.png", "plain.png", "-m", tiny_models_dir, "-f", "csv"],
        *["-o", output, "--resume"],
    )
    assert code == 0 and "1 of 2 input(s) already recorded" in err
    assert [row[0] for row in csv_rows(output)[1:]] == ["'=cmd.png", "plain.png"]


def _sha(models_dir: Path) -> str:
    import hashlib

    return hashlib.sha256((models_dir / "fp32.onnx").read_bytes()).hexdigest()


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--force"], "--force only applies with --resume"),
        (["--address", "auto"], "need --engine ray"),
        (["--num-cpus", "2"], "need --engine ray"),
        (["--engine", "ray", "--address", "auto", "--num-cpus", "2"], "a cluster"),
    ],
)
def test_option_combinations_that_make_no_sense_are_usage_errors(
    capsys, study, tiny_models_dir, extra, message
):
    code, _, err = run(capsys, "predict", study, "-m", tiny_models_dir, *extra)
    assert code == 1 and message in err and "Traceback" not in err


def test_engine_ray_without_ray_installed_says_how_to_install(
    capsys, study, tiny_models_dir, monkeypatch
):
    import mammo_edge.engines.ray_engine as ray_engine

    def missing():
        raise ImportError("--engine ray needs Ray Data: pip install 'mammo-edge[ray]'")

    monkeypatch.setattr(ray_engine, "require_ray", missing)
    code, _, err = run(capsys, "predict", study, "-m", tiny_models_dir, "--engine", "ray")
    assert code == 1 and "mammo-edge[ray]" in err


def test_an_unreachable_ray_cluster_exits_1_before_writing_anything(
    capsys, study, tiny_models_dir, tmp_path
):
    import socket

    from mammo_edge.engines import ray_engine

    pytest.importorskip("ray", reason="--engine ray needs the ray extra")
    with socket.socket() as probe:  # a port that nothing listens on once closed
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(ray_engine.RayEngineError, match="cannot reach"):
        ray_engine._check_reachable(f"127.0.0.1:{port}")
    output = tmp_path / "never.json"
    code, _, err = run(
        capsys,
        *["predict", study, "-m", tiny_models_dir, "-f", "json", "-o", output],
        *["--engine", "ray", "--address", f"ray://127.0.0.1:{port}"],
    )
    assert code == 1 and "cannot reach the Ray cluster" in err and "Traceback" not in err
    assert not output.exists()
