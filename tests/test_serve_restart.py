"""Nothing received is lost: SIGKILL half-way through parallel associations, then restart.

10 associations of 5 instances each run in parallel (the benchmark runs 50 x 10); the
node is killed with SIGKILL while they are under way and started again on the same port.
Each sender retries its whole association until every C-STORE was answered with success,
as a PACS does. In the end every instance has exactly one line in results.jsonl. SIGTERM
then stops the node cleanly (exit 0, within 15 s).
"""

from __future__ import annotations

import signal
import threading
import time
from collections import Counter

import pytest

pytest.importorskip("pynetdicom", reason="the serve extra is not installed")
pytest.importorskip("highdicom", reason="the serve extra is not installed")

from pydicom.uid import generate_uid  # noqa: E402

from tests.serve_fixtures import (  # noqa: E402
    EXAMPLES,
    free_port,
    mammogram_dataset,
    read_pgm,
    read_results,
    send_datasets,
    start_serve,
)

ASSOCIATIONS = 10
PER_ASSOCIATION = 5


def sender(port: int, datasets, done: list, deadline: float) -> None:
    """Send ``datasets`` over one association, again and again until all succeeded."""
    while time.monotonic() < deadline:
        try:
            if send_datasets(port, datasets, pause=0.1) == [0] * len(datasets):
                done.append(True)
                return
        except Exception:  # refused, aborted or reset by the kill: try again
            pass
        time.sleep(0.2)


def spooled(out) -> int:
    return sum(1 for _ in (out / "spool").glob("*/*/*.dcm"))


def test_sigkill_mid_transfer_then_restart_scores_each_instance_once(tmp_path):
    out = tmp_path / "out"
    port = free_port()
    arguments = ("--dicom-port", str(port), "--stable-after", "0.3")
    pixels = read_pgm(EXAMPLES / "mdb003.pgm")[::4, ::4].copy()
    batches = []
    for _ in range(ASSOCIATIONS):
        study = generate_uid()
        batches.append([mammogram_dataset(pixels, study_uid=study) for _ in range(PER_ASSOCIATION)])
    expected = {ds.SOPInstanceUID for batch in batches for ds in batch}

    process, _ = start_serve(out, *arguments)
    done: list = []
    deadline = time.monotonic() + 120
    threads = [
        threading.Thread(target=sender, args=(port, batch, done, deadline)) for batch in batches
    ]
    for thread in threads:
        thread.start()
    half = ASSOCIATIONS * PER_ASSOCIATION // 2
    while spooled(out) < half and time.monotonic() < deadline:
        time.sleep(0.01)
    process.send_signal(signal.SIGKILL)
    process.wait(10)
    received_before_kill = spooled(out)
    assert 0 < received_before_kill < len(expected), "the kill must land mid-transfer"

    process, _ = start_serve(out, *arguments)
    try:
        for thread in threads:
            thread.join(max(1.0, deadline - time.monotonic()))
        assert len(done) == ASSOCIATIONS, "some sender never got its instances accepted"
        while time.monotonic() < deadline:
            if {record["sop_instance_uid"] for record in read_results(out)} >= expected:
                break
            time.sleep(0.1)
        time.sleep(1.0)  # duplicates re-sent after the restart must not add lines either
        records = read_results(out)
        # An instance is recorded once per revision of its study: a later revision records it
        # again only with its exam values updated (the latest line is its record).
        counts = Counter((record["sop_instance_uid"], record["revision"]) for record in records)
        assert {uid for uid, _ in counts} == expected
        assert set(counts.values()) == {1}, [key for key, n in counts.items() if n > 1]
        assert all(record["status"] == "ok" for record in records)
    except BaseException:
        process.kill()  # a failed check must not leave the node running after the test
        raise

    started = time.monotonic()
    process.send_signal(signal.SIGTERM)
    assert process.wait(20) == 0
    assert time.monotonic() - started < 15
    assert not list((out / "spool" / "incoming").glob("*/*.dcm"))
