"""``mammo-edge serve --http-port``: a real uvicorn process, and the app's refusals in-process."""

from __future__ import annotations

import signal
import time

import pytest

pytest.importorskip("fastapi", reason="the serve extra is not installed")
httpx = pytest.importorskip("httpx", reason="httpx (dev extra) is not installed")

from tests.serve_fixtures import EXAMPLES, start_serve  # noqa: E402

TOKEN = "s3cret-token"


@pytest.fixture(scope="module")
def predictor():
    from mammo_edge import Predictor

    return Predictor()


@pytest.fixture(scope="module")
def http_service(tmp_path_factory):
    root = tmp_path_factory.mktemp("http")
    token_file = root / "token"
    token_file.write_text(TOKEN + "\n")
    process, info = start_serve(root / "out", "--http-port", "0", "--token-file", str(token_file))
    client = httpx.Client(
        base_url=f"http://127.0.0.1:{info['http_port']}",
        headers={"Authorization": f"Bearer {TOKEN}"},
        timeout=60,
    )
    yield client, process, info
    client.close()
    process.send_signal(signal.SIGTERM)
    process.wait(20)


def test_health_needs_no_token_and_names_the_model(http_service, predictor):
    client, _, info = http_service
    answer = httpx.get(f"{client.base_url}/healthz")
    assert answer.status_code == 200
    body = answer.json()
    assert body["status"] == "ok"
    assert body["model_sha256"] == predictor.model_sha256 == info["model_sha256"]
    assert body["model_name"] == predictor.model_name


def test_token_required(http_service):
    client, _, _ = http_service
    for headers in ({}, {"Authorization": "Bearer wrong"}):
        answer = httpx.get(f"{client.base_url}/v1/models", headers=headers)
        assert answer.status_code == 401
        assert answer.json()["error_code"] == "UNAUTHORIZED"
    models = client.get("/v1/models").json()["models"]
    assert len(models) == 1 and models[0]["class_names"] == ["normal", "abnormal"]


def test_predict_matches_the_library(http_service, predictor):
    client, _, _ = http_service
    for name in ("mdb003.pgm", "mdb028.pgm"):
        with open(EXAMPLES / name, "rb") as stream:
            answer = client.post("/v1/predict", files={"file": (name, stream)})
        assert answer.status_code == 200, answer.text
        record = answer.json()
        expected = predictor.predict(str(EXAMPLES / name))
        assert record["path"] == name
        assert record["status"] == "ok"
        assert record["probability"] == pytest.approx(expected.probability, abs=1e-6)
        assert record["label"] == expected.label
        assert set(expected.as_dict()) <= set(record)


def test_bad_image_is_422_with_its_code(http_service):
    client, process, _ = http_service
    answer = client.post("/v1/predict", files={"file": ("notes.png", b"just some text\n" * 10)})
    assert answer.status_code == 422
    record = answer.json()
    assert record["error_code"] == "NOT_AN_IMAGE" and record["error_message"]
    missing = client.post("/v1/predict", data={"other": "x"})
    assert missing.status_code == 422
    assert process.poll() is None


def test_metrics_count_requests(http_service):
    client, _, _ = http_service
    client.get("/healthz")
    text = client.get("/metrics").text
    assert 'mammo_edge_http_requests_total{method="GET",route="/healthz",status="200"}' in text
    assert "mammo_edge_http_request_seconds_bucket" in text
    assert "mammo_edge_queue_depth 0" in text
    assert "mammo_edge_instances_received_total 0" in text


def test_sigterm_exits_cleanly(tmp_path):
    process, _ = start_serve(tmp_path / "out", "--http-port", "0", "--dicom-port", "0")
    started = time.monotonic()
    process.send_signal(signal.SIGTERM)
    assert process.wait(20) == 0
    assert time.monotonic() - started < 15


# --- in-process: the refusals that need tight limits ----------------------------------------


def make_client(predictor, **options):
    from starlette.testclient import TestClient

    from mammo_edge.serve.batcher import Batcher
    from mammo_edge.serve.http_app import create_app
    from mammo_edge.serve.metrics import Metrics

    batcher = Batcher(predictor, options.pop("max_queue", 4))
    return TestClient(create_app(predictor, batcher, Metrics(), **options)), batcher


def test_request_size_limit(predictor):
    client, batcher = make_client(predictor, max_body_bytes=1000)
    with open(EXAMPLES / "mdb003.pgm", "rb") as stream:
        answer = client.post("/v1/predict", files={"file": ("mdb003.pgm", stream)})
    assert answer.status_code == 413
    assert answer.json()["error_code"] == "TOO_LARGE"
    batcher.close()


def test_full_queue_answers_503(predictor):
    client, batcher = make_client(predictor, max_queue=0)
    with open(EXAMPLES / "mdb003.pgm", "rb") as stream:
        answer = client.post("/v1/predict", files={"file": ("mdb003.pgm", stream)})
    assert answer.status_code == 503
    assert answer.json()["error_code"] == "BUSY"
    assert answer.headers["retry-after"] == "1"
    batcher.close()


def test_batcher_answers_concurrent_requests_in_order(predictor, tmp_path):
    """Requests sharing batches each get their own image's record."""
    from concurrent.futures import ThreadPoolExecutor

    from mammo_edge.serve.batcher import Batcher

    batcher = Batcher(predictor, 16)
    names = ["mdb003.pgm", "mdb004.pgm", "mdb005.pgm", "mdb006.pgm"] * 2
    with ThreadPoolExecutor(8) as pool:
        futures = list(pool.map(lambda name: batcher.submit(EXAMPLES / name, name), names))
    results = [future.result(60) for future in futures]
    expected = {name: predictor.predict(str(EXAMPLES / name)).probability for name in set(names)}
    for name, result in zip(names, results, strict=True):
        assert result.path == name
        assert result.probability == pytest.approx(expected[name], abs=1e-6)
    batcher.close()


def test_port_in_use_is_an_error_not_a_traceback(tmp_path):
    import socket
    import subprocess
    import sys

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = subprocess.run(
            [sys.executable, "-m", "mammo_edge.cli", "serve", "--http-port", str(port)]
            + ["--out", str(tmp_path / "out")],
            capture_output=True,
            text=True,
            timeout=120,
        )
    assert done.returncode == 1
    assert "cannot listen" in done.stderr and "Traceback" not in done.stderr
