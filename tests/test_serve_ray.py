"""``mammo-edge serve --engine ray``: the same HTTP app, scored by Ray Serve replicas."""

from __future__ import annotations

import signal

import pytest

pytest.importorskip("fastapi", reason="the serve extra is not installed")
pytest.importorskip("ray.serve", reason="Ray Serve is not installed (pip install 'ray[serve]')")
httpx = pytest.importorskip("httpx", reason="httpx (dev extra) is not installed")

from tests.serve_fixtures import EXAMPLES, start_serve  # noqa: E402


def test_ray_replicas_answer_as_the_library(tmp_path):
    from concurrent.futures import ThreadPoolExecutor

    from mammo_edge import Predictor

    process, info = start_serve(
        tmp_path / "out", "--http-port", "0", "--engine", "ray", "--replicas", "1", timeout=180
    )
    try:
        url = f"http://127.0.0.1:{info['http_port']}"
        names = ["mdb003.pgm", "mdb004.pgm", "mdb005.pgm", "mdb028.pgm"]

        def post(name):
            with open(EXAMPLES / name, "rb") as stream, httpx.Client(timeout=120) as client:
                return client.post(f"{url}/v1/predict", files={"file": (name, stream)})

        with ThreadPoolExecutor(4) as pool:  # concurrent: @serve.batch groups them
            answers = list(pool.map(post, names))
        predictor = Predictor()
        for name, answer in zip(names, answers, strict=True):
            assert answer.status_code == 200, answer.text
            record = answer.json()
            assert record["path"] == name
            expected = predictor.predict(str(EXAMPLES / name)).probability
            assert record["probability"] == pytest.approx(expected, abs=1e-6)
            assert record["model_sha256"] == predictor.model_sha256
        bad = httpx.post(f"{url}/v1/predict", files={"file": ("x.png", b"not an image")})
        assert bad.status_code == 422 and bad.json()["error_code"] == "NOT_AN_IMAGE"
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(30) == 0
