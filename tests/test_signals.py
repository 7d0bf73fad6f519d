"""Stops that lose nothing: SIGTERM like Ctrl-C, and a closed pipe (``| head``) quietly."""

from __future__ import annotations

import csv
import io
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import REPO_ROOT, slowed_cli_script, write_study

from mammo_edge.cli import main
from mammo_edge.records.record import RESULT_FIELDS

pytestmark = pytest.mark.skipif(
    not hasattr(signal, "SIGTERM") or os.name != "posix", reason="POSIX signals"
)


@pytest.fixture
def study(tmp_path: Path) -> Path:
    return write_study(tmp_path / "study")


def assert_valid(output: Path, fmt: str, count: int) -> None:
    """The file parses completely in its format and holds ``count`` records."""
    text = output.read_text(encoding="utf-8-sig")
    if fmt == "json":
        records = json.loads(text)
    elif fmt == "jsonl":
        assert text.endswith("\n")
        records = [json.loads(line) for line in text.splitlines()]
    else:
        rows = list(csv.reader(io.StringIO(text)))
        assert rows[0] == list(RESULT_FIELDS)
        assert all(len(row) == len(RESULT_FIELDS) for row in rows)
        records = rows[1:]
    assert len(records) == count


@pytest.mark.parametrize("fmt", ["jsonl", "csv", "json"])
def test_sigterm_mid_run_keeps_results_and_closes_the_file(
    capsys, study, tiny_models_dir, tmp_path, monkeypatch, fmt
):
    from mammo_edge.engines.local import LocalEngine

    real = LocalEngine.iter_score

    def terminated_after_two(self, inputs):
        for index, result in enumerate(real(self, inputs)):
            if index == 2:
                os.kill(os.getpid(), signal.SIGTERM)  # the handler raises in this thread
            yield result

    def outside(signum, frame):
        raise AssertionError("SIGTERM reached the handler outside the predict command")

    monkeypatch.setattr(LocalEngine, "iter_score", terminated_after_two)
    output = tmp_path / f"partial.{fmt}"
    previous = signal.signal(signal.SIGTERM, outside)
    try:
        code = main(
            ["predict", str(study), "-m", str(tiny_models_dir), "-f", fmt, "-o", str(output)]
        )
        assert signal.getsignal(signal.SIGTERM) is outside  # restored after the command
    finally:
        signal.signal(signal.SIGTERM, previous)
    err = capsys.readouterr().err
    assert code == 143
    assert "terminated (SIGTERM); 2 of 6 result(s) written" in err
    assert_valid(output, fmt, 2)


CHILD = slowed_cli_script("mammo_edge.engines.local:LocalEngine.iter_score", 0.2)


def test_a_real_sigterm_exits_143_with_a_closed_json_list(study, tiny_models_dir, tmp_path):
    output = tmp_path / "killed.json"
    command = [sys.executable, "-c", CHILD, "predict", str(study), "-m", str(tiny_models_dir)]
    child = subprocess.Popen(
        [*command, "-f", "json", "-o", str(output), "--batch-size", "1"],
        cwd=REPO_ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and child.poll() is None:
        # json is a whole-file format: written beside the target, renamed at the end.
        if any(part.read_text().count('"path"') >= 1 for part in tmp_path.glob(".killed.json.*")):
            break
        time.sleep(0.05)
    assert not output.exists()  # nothing half-written where the results will be
    child.send_signal(signal.SIGTERM)
    _, err = child.communicate(timeout=60)
    assert child.returncode == 143, err
    assert "terminated (SIGTERM)" in err and "Traceback" not in err
    records = json.loads(output.read_text())
    assert 1 <= len(records) < 6
    assert sorted(path.name for path in tmp_path.iterdir()) == ["killed.json", "study"]  # no .lock


def test_a_closed_pipe_ends_quietly_with_141(study, tiny_models_dir, tmp_path):
    listing = tmp_path / "many.txt"  # one image 600 times: more output than a pipe buffers
    listing.write_text("\n".join([str(study / "img0.png")] * 600) + "\n")
    child = subprocess.Popen(
        [sys.executable, "-m", "mammo_edge.cli", "predict", f"@{listing}"]
        + ["-m", str(tiny_models_dir), "-f", "jsonl", "-q"],
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    first = child.stdout.readline()
    child.stdout.close()  # what `| head -1` does after one line
    err = child.stderr.read().decode()
    child.wait(timeout=60)
    assert json.loads(first)["status"] == "ok"
    assert child.returncode == 141
    assert err == ""


def test_starting_ray_keeps_the_sigterm_handler_in_force():
    from mammo_edge.engines.ray_engine import start_ray

    class RayThatTakesSigterm:
        """What ray.init does to the driver: installs a SIGTERM handler calling sys.exit."""

        def init(self, **options):
            signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(signum))

    def ours(signum, frame):
        raise AssertionError("not called")

    previous = signal.signal(signal.SIGTERM, ours)
    try:
        start_ray(RayThatTakesSigterm(), None, 2)
        assert signal.getsignal(signal.SIGTERM) is ours
    finally:
        signal.signal(signal.SIGTERM, previous)


REPORT_CHILD = slowed_cli_script("mammo_edge.explain.explainer:Explainer.iter_explain", 0.3)


@pytest.mark.parametrize("verb", ["report", "explain"])
def test_sigterm_during_report_or_explain_keeps_what_is_done(
    study, tiny_models_dir, tmp_path, verb
):
    """report writes the page for the images scored so far and says where; explain keeps
    its records; both exit 143."""
    out = tmp_path / "out"
    child = subprocess.Popen(
        [sys.executable, "-c", REPORT_CHILD, verb, str(study), "--out", str(out)]
        + ["-m", str(tiny_models_dir), "--method", "occlusion", "--batch-size", "1"],
        cwd=REPO_ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    records = out / "explain.jsonl"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and child.poll() is None:
        if records.exists() and records.read_text().count("\n") >= 1:
            break
        time.sleep(0.05)
    child.send_signal(signal.SIGTERM)
    _, err = child.communicate(timeout=120)
    assert child.returncode == 143, err
    assert "terminated (SIGTERM)" in err and "Traceback" not in err
    done = records.read_text().count("\n")
    assert 1 <= done < 6
    if verb == "report":
        page = (out / "index.html").read_text()
        assert f"scored so far in {out / 'index.html'}" in err
        assert "Stopped" in page and f"after {done} of 6 input(s)" in page
        assert page.count("data-index=") == done
    assert not (out / ".explain.jsonl.lock").exists()
