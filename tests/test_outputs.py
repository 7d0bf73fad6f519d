"""Outputs never destroy inputs or each other (mammo_edge.records.outputs, predict --output)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import cv2
import pytest
from conftest import REPO_ROOT, slowed_cli_script, synthetic_mammogram, write_study

from mammo_edge.cli import main
from mammo_edge.errors import OutputError
from mammo_edge.records.outputs import (
    atomic_file,
    exclusive_output,
    lock_path,
    refuse_input_overlap,
)

posix_only = pytest.mark.skipif(os.name != "posix", reason="POSIX signals and flock")

#: Runs the CLI with scoring slowed down (0.3 s per record), so a test can act mid-run.
SLOW_CHILD = slowed_cli_script("mammo_edge.engines.local:LocalEngine.iter_score", 0.3)


@pytest.fixture
def study(tmp_path: Path) -> Path:
    return write_study(tmp_path / "study")


def run(capsys, *args) -> tuple[int, str, str]:
    code = main([str(arg) for arg in args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def slow_child(*args) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-c", SLOW_CHILD, *[str(arg) for arg in args]],
        cwd=REPO_ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )


def wait_for(condition, child: subprocess.Popen, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and child.poll() is None:
        if condition():
            return
        time.sleep(0.05)
    raise AssertionError(f"condition not met; child exited {child.poll()}")


def test_output_naming_an_input_is_refused_before_it_is_touched(capsys, study, tiny_models_dir):
    image = study / "img3.png"
    before = image.read_bytes()
    code, out, err = run(capsys, "predict", study, "-o", image, "-m", tiny_models_dir)
    assert code == 1
    assert f"the output {image} is also an input" in err and "Traceback" not in err
    assert image.read_bytes() == before  # the mammogram is intact
    assert sorted(path.name for path in study.iterdir()) == [f"img{i}.png" for i in range(6)]


@pytest.mark.parametrize("link", ["symlink", "hardlink"])
def test_output_resolving_to_an_input_is_refused(capsys, study, tiny_models_dir, tmp_path, link):
    image = study / "img0.png"
    before = image.read_bytes()
    alias = tmp_path / "results.csv"
    if link == "symlink":
        alias.symlink_to(image)
    else:
        os.link(image, alias)
    code, _, err = run(capsys, "predict", image, "-f", "csv", "-o", alias, "-m", tiny_models_dir)
    assert code == 1 and "is also an input" in err
    assert image.read_bytes() == before


def test_refuse_input_overlap_checks_folders_written_into(tmp_path):
    out = tmp_path / "report"
    (out / "images").mkdir(parents=True)
    inside = out / "images" / "0001_a.png"
    inside.write_bytes(b"x")
    with pytest.raises(OutputError, match="writes into"):
        refuse_input_overlap([out / "index.html"], [str(inside)], folders=[out / "images"])
    refuse_input_overlap([out / "index.html"], [str(tmp_path / "elsewhere.png")], [out / "images"])


def test_report_into_the_folder_holding_its_inputs_is_refused(capsys, tmp_path, tiny_models_dir):
    out = tmp_path / "report"
    (out / "images").mkdir(parents=True)
    assert cv2.imwrite(str(out / "images" / "0001_a.png"), synthetic_mammogram())
    before = (out / "images" / "0001_a.png").read_bytes()
    code, _, err = run(
        capsys, "report", out / "images", "--out", out, "-m", tiny_models_dir, "--method",
        "occlusion",
    )  # fmt: skip
    assert code == 1 and "writes into" in err
    assert (out / "images" / "0001_a.png").read_bytes() == before
    assert not (out / "index.html").exists()


def test_exclusive_output_refuses_a_second_holder_and_cleans_up(tmp_path):
    output = tmp_path / "results.jsonl"
    with exclusive_output(output):
        assert lock_path(output).read_text() == str(os.getpid())
        with pytest.raises(
            OutputError, match=f"being written by another mammo-edge run .process {os.getpid()}"
        ):  # noqa: E501
            with exclusive_output(output):
                pass
    assert not lock_path(output).exists()
    with exclusive_output(output):  # free again
        pass


@posix_only
def test_second_run_on_a_held_output_is_refused(study, tiny_models_dir, tmp_path):
    """Two real processes: the second is refused, naming the file; the first finishes."""
    output = tmp_path / "results.jsonl"
    first = slow_child("predict", study, "-m", tiny_models_dir, "-f", "jsonl", "-o", output)
    wait_for(lambda: output.exists() and output.read_text().count("\n") >= 1, first)
    second = subprocess.run(
        [sys.executable, "-m", "mammo_edge.cli", "predict", str(study)]
        + ["-m", str(tiny_models_dir), "-f", "jsonl", "-o", str(output)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert second.returncode == 1
    assert f"{output} is being written by another mammo-edge run (process {first.pid})" in (
        second.stderr
    )
    _, err = first.communicate(timeout=120)
    assert first.returncode == 0, err
    records = [json.loads(line) for line in output.read_text().splitlines()]
    assert [Path(record["path"]).name for record in records] == [f"img{i}.png" for i in range(6)]
    assert not lock_path(output).exists()


@posix_only
def test_a_killed_json_run_leaves_the_old_file_whole_and_the_output_free(
    study, tiny_models_dir, tmp_path
):
    """SIGKILL mid-run: the previous results stay as they were (never a torn file), and the
    kernel has released the lock, so the next run writes normally."""
    output = tmp_path / "results.json"
    output.write_text('[{"path": "old"}]\n')
    child = slow_child("predict", study, "-m", tiny_models_dir, "-f", "json", "-o", output)
    wait_for(
        lambda: any(
            part.read_text().count('"path"') for part in tmp_path.glob(".results.json.*.tmp")
        ),
        child,
    )
    child.kill()
    child.wait(timeout=60)
    assert json.loads(output.read_text()) == [{"path": "old"}]
    assert lock_path(output).exists()  # left by the killed run, but no longer locked
    code = main(
        ["predict", str(study), "-m", str(tiny_models_dir), "-f", "json", "-o", str(output), "-q"]
    )  # noqa: E501
    assert code == 0
    assert len(json.loads(output.read_text())) == 6 and not lock_path(output).exists()


def test_atomic_file_replaces_only_on_success(tmp_path):
    target = tmp_path / "page.html"
    target.write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_file(target) as handle:
            handle.write("half")
            raise RuntimeError("crash")
    assert target.read_text() == "old" and sorted(tmp_path.iterdir()) == [target]
    with atomic_file(target) as handle:
        handle.write("new")
    assert target.read_text() == "new" and sorted(tmp_path.iterdir()) == [target]


def test_predict_says_where_the_results_went(capsys, study, tiny_models_dir, tmp_path):
    output = tmp_path / "results.csv"
    code, out, err = run(capsys, "predict", study, "-f", "csv", "-o", output, "-m", tiny_models_dir)
    assert code == 0 and out == ""
    assert f"results in {output}" in err.splitlines()[-1]
