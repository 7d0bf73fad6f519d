"""A study whose outputs keep failing is retried a bounded number of times, then quarantined.

A failing writer is injected with monkeypatch for one study only. The node's scorer
(in-process, the parts ``serve`` builds) must try that study a bounded number of times,
then give each of its instances a ``STUDY_QUARANTINED`` line, log the reason once, move
its files to ``spool/failed/``, and score the other studies meanwhile. A restart must not
try it again; moving its folder back to ``incoming/`` must. ``serve`` reports the folder at
start-up.
"""

from __future__ import annotations

import json
import logging
import signal
import time
import urllib.request

import pytest

pytest.importorskip("pynetdicom", reason="the serve extra is not installed")
pytest.importorskip("highdicom", reason="the serve extra is not installed")

from pydicom.uid import generate_uid  # noqa: E402

from mammo_edge.serve.quarantine import StudyAttempts  # noqa: E402
from tests.serve_fixtures import (  # noqa: E402
    EXAMPLES,
    in_process_scorer,
    mammogram_dataset,
    read_pgm,
    read_results,
    spool_dataset,
    start_serve,
)

ATTEMPTS = 3
REASON = "the disk said no (injected)"


def wait_for(condition, what: str, timeout: float = 60.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture(scope="module")
def predictor():
    from mammo_edge import Predictor

    return Predictor(streams=1)


def study_datasets(count: int = 2):
    pixels = read_pgm(EXAMPLES / "mdb003.pgm")[::4, ::4].copy()
    study = generate_uid()
    sides = ("L", "R")
    return study, [
        mammogram_dataset(pixels, study_uid=study, laterality=sides[n % 2]) for n in range(count)
    ]


def fail_for(monkeypatch, where: str, study_uid: str) -> list[int]:
    """Make one part of the study's outputs raise for ``study_uid``; returns the call count."""
    calls = [0]
    if where == "scoring":
        from mammo_edge.serve import studies as module

        original = module.StudyScorer._score

        def failing(self, entries, revision):
            if any(header.study_instance_uid == study_uid for _, header in entries):
                calls[0] += 1
                raise RuntimeError(REASON)
            return original(self, entries, revision)

        monkeypatch.setattr(module.StudyScorer, "_score", failing)
        return calls
    if where == "sr":
        from mammo_edge.serve import structured_report as module

        name = "build_report"

        def study_of(args):
            return args[0][-1].study_instance_uid
    else:
        from mammo_edge.serve import overlay as module

        name = "build_overlay"

        def study_of(args):
            return str(args[0].StudyInstanceUID)

    original = getattr(module, name)

    def failing(*args, **kwargs):
        if study_of(args) == study_uid:
            calls[0] += 1
            raise RuntimeError(REASON)
        return original(*args, **kwargs)

    monkeypatch.setattr(module, name, failing)
    return calls


def quick_attempts() -> StudyAttempts:
    return StudyAttempts(max_attempts=ATTEMPTS, first_delay=0.01)


@pytest.mark.parametrize("where", ["sr", "overlay", "scoring"])
def test_failing_study_is_quarantined_and_others_go_on(
    tmp_path, monkeypatch, caplog, predictor, where
):
    out = tmp_path / "out"
    bad_study, bad = study_datasets()
    good_study, good = study_datasets()
    calls = fail_for(monkeypatch, where, bad_study)
    scorer = in_process_scorer(out, predictor, attempts=quick_attempts())
    for dataset in bad + good:
        spool_dataset(scorer, dataset)
    caplog.set_level(logging.INFO, logger="mammo_edge.serve")
    scorer.start()
    try:
        wait_for(lambda: (out / "spool" / "failed" / f"{bad_study}.json").exists(), "quarantine")
        wait_for(lambda: (out / good_study / "sr-r1.dcm").exists(), "the other study's SR")
    finally:
        assert scorer.stop(10)
    assert calls[0] == ATTEMPTS

    rows = read_results(out)
    latest = {row["sop_instance_uid"]: row for row in rows}
    for dataset in bad:
        row = latest[dataset.SOPInstanceUID]
        assert row["status"] == "error" and row["error_code"] == "STUDY_QUARANTINED"
        assert REASON in row["error_message"]
        assert row["path"] == f"spool/failed/{bad_study}/{dataset.SOPInstanceUID}.dcm"
        assert (out / row["path"]).is_file()
    assert [latest[ds.SOPInstanceUID]["status"] for ds in good] == ["ok", "ok"]
    quarantined_rows = [row for row in rows if row["error_code"] == "STUDY_QUARANTINED"]
    assert len(quarantined_rows) == len(bad)
    if where == "scoring":  # nothing was recorded before: the quarantine rows are the only ones
        assert len([row for row in rows if row["study_instance_uid"] == bad_study]) == len(bad)

    assert not (out / "spool" / "incoming" / bad_study).exists()
    note = json.loads((out / "spool" / "failed" / f"{bad_study}.json").read_text())
    assert note["attempts"] == ATTEMPTS and REASON in note["reason"]
    assert note["study_instance_uid"] == bad_study and note["instances"] == len(bad)
    assert scorer.spool.failed_studies() == {bad_study: len(bad)}
    logged = [record.getMessage() for record in caplog.records]
    assert sum(REASON in message for message in logged) == 1, logged
    assert "mammo_edge_instances_quarantined_total 2" in scorer.metrics.render()
    assert "mammo_edge_failed_studies 1" in scorer.metrics.render()


def test_restart_does_not_retry_and_moving_back_does(tmp_path, monkeypatch, predictor):
    out = tmp_path / "out"
    bad_study, bad = study_datasets()
    calls = fail_for(monkeypatch, "sr", bad_study)
    scorer = in_process_scorer(out, predictor, attempts=quick_attempts())
    for dataset in bad:
        spool_dataset(scorer, dataset)
    scorer.start()
    wait_for(lambda: scorer.spool.failed_studies(), "quarantine")
    assert scorer.stop(10)
    assert calls[0] == ATTEMPTS
    lines = len(read_results(out))

    # A restart: new parts over the same folder. Another study is scored, the failed one
    # is not tried again.
    restarted = in_process_scorer(out, predictor, attempts=quick_attempts())
    other_study, other = study_datasets(1)
    spool_dataset(restarted, other[0])
    restarted.start()
    try:
        wait_for(lambda: (out / other_study / "sr-r1.dcm").exists(), "the other study's SR")
    finally:
        assert restarted.stop(10)
    assert calls[0] == ATTEMPTS
    assert len(read_results(out)) == lines + 1
    assert restarted.spool.failed_studies() == {bad_study: len(bad)}

    # The operator fixed the cause and moves the study back: it is scored and reported.
    monkeypatch.undo()
    (out / "spool" / "failed" / bad_study).rename(out / "spool" / "incoming" / bad_study)
    retried = in_process_scorer(out, predictor, attempts=quick_attempts())
    retried.score_study(bad_study)
    assert (out / bad_study / "sr-r1.dcm").exists()
    assert retried.spool.failed_studies() == {}
    latest = {row["sop_instance_uid"]: row for row in read_results(out)}
    assert all(latest[ds.SOPInstanceUID]["status"] == "ok" for ds in bad)


def test_attempts_back_off_then_are_spent():
    attempts = StudyAttempts(max_attempts=4, first_delay=2.0)
    assert attempts.due("a")
    assert attempts.failed("a") == (1, 2.0)
    assert not attempts.due("a") and attempts.due("b")
    assert attempts.failed("a") == (2, 4.0)
    assert attempts.failed("a") == (3, 8.0)
    assert attempts.failed("a") == (4, None)
    attempts.forget("a")
    assert attempts.due("a") and attempts.failed("a") == (1, 2.0)
    with pytest.raises(ValueError):
        StudyAttempts(max_attempts=0)


def test_serve_reports_failed_studies_at_start(tmp_path):
    out = tmp_path / "out"
    failed = out / "spool" / "failed"
    study, datasets = study_datasets()
    for dataset in datasets:
        (failed / study).mkdir(parents=True, exist_ok=True)
        dataset.save_as(failed / study / f"{dataset.SOPInstanceUID}.dcm", enforce_file_format=True)
    process, info = start_serve(out, "--dicom-port", "0", "--http-port", "0")
    try:
        assert info["failed_studies"] == 1
        url = f"http://127.0.0.1:{info['http_port']}/metrics"
        metrics = urllib.request.urlopen(url, timeout=10).read().decode()
        assert "mammo_edge_failed_studies 1" in metrics
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(20) == 0
    log = (tmp_path / "out.log").read_text()
    assert "1 quarantined study(ies), 2 instance(s)" in log and study in log
    assert len(list((failed / study).glob("*.dcm"))) == 2, "reported, not retried"
