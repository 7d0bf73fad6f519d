"""The HTTP service (FastAPI): health, the model, one-image prediction, metrics.

- ``GET /healthz``: ``{"status": "ok"}`` with the model's name, version, SHA-256, provider
  and threshold (no token needed, for health checks);
- ``GET /v1/models``: the model in use, with its metadata;
- ``POST /v1/predict``: multipart field ``file``; the ``predict`` record as JSON (200), or
  for a bad image 422 with the record (``error_code``, ``error_message``);
- ``GET /metrics``: Prometheus text.

Refusals carry ``error_code`` and ``error_message`` too: 401 ``UNAUTHORIZED`` (missing or
wrong bearer token, when ``--token-file`` is given), 413 ``TOO_LARGE`` (body over the
limit), 503 ``BUSY`` (queue full; ``Retry-After: 1``).
"""

from __future__ import annotations

import asyncio
import hmac
import os
import shutil
import tempfile
import time
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, PlainTextResponse

from mammo_edge.errors import ErrorCode
from mammo_edge.records.record import PredictionResult
from mammo_edge.serve.batcher import Batcher
from mammo_edge.serve.metrics import Metrics

#: Largest request body accepted, in bytes (a DICOM mammogram is rarely above 100 MB).
MAX_BODY_BYTES = 256 * 1024 * 1024
#: Requests admitted at once before ``/v1/predict`` answers 503.
MAX_QUEUE = 64
CODE_UNAUTHORIZED = "UNAUTHORIZED"
CODE_BUSY = "BUSY"
CODE_BAD_REQUEST = "BAD_REQUEST"
#: Error codes of a bad image (HTTP 422); others (INFERENCE_FAILED) answer 500.
_SERVER_SIDE = {ErrorCode.INFERENCE_FAILED.value}


class _BodyTooLarge(Exception):
    pass


class Gatekeeper:
    """ASGI layer in front of the app: counts every request, checks the token and the size.

    Plain ASGI rather than FastAPI's ``@app.middleware``, which costs a task and a stream
    per request.

    Args:
        app: the FastAPI application.
        metrics: counts each request with its route, status and latency.
        token: the bearer token every route but ``/healthz`` requires; ``None``: none.
        limit: the largest body in bytes; a larger one, announced or streamed, gets 413.
    """

    def __init__(self, app, metrics: Metrics, token: str | None, limit: int) -> None:
        self.app = app
        self.metrics = metrics
        self.token = token
        self.limit = limit

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        started = time.perf_counter()
        path = scope.get("path", "")
        route = path if path in _ROUTES else "other"
        status = 500
        received = 0

        async def counting_send(message):
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        async def limited_receive():
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.limit:
                    raise _BodyTooLarge
            return message

        headers = dict(scope.get("headers") or ())
        announced = headers.get(b"content-length", b"")
        try:
            if (
                self.token is not None
                and route != "/healthz"
                and not _authorised(headers.get(b"authorization", b""), self.token)
            ):
                await _send_refusal(
                    counting_send,
                    401,
                    CODE_UNAUTHORIZED,
                    "a bearer token is required: Authorization: Bearer <token>",
                    [(b"www-authenticate", b"Bearer")],
                )
            elif announced.isdigit() and int(announced) > self.limit:
                await _send_too_large(counting_send, self.limit)
            else:
                try:
                    await self.app(scope, limited_receive, counting_send)
                except _BodyTooLarge:
                    await _send_too_large(counting_send, self.limit)
        finally:
            self.metrics.request(
                scope.get("method", ""), route, status, time.perf_counter() - started
            )


async def _send_too_large(send, limit: int) -> None:
    await _send_refusal(
        send,
        413,
        ErrorCode.TOO_LARGE.value,
        f"the request body is over the {limit:,}-byte limit",
        [(b"connection", b"close")],
    )


async def _send_refusal(send, status: int, code: str, message: str, headers=()) -> None:
    import json

    body = json.dumps({"error_code": code, "error_message": message}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/json"), *headers],
        }
    )
    await send({"type": "http.response.body", "body": body})


def create_app(
    predictor,
    batcher: Batcher,
    metrics: Metrics,
    *,
    token: str | None = None,
    max_body_bytes: int = MAX_BODY_BYTES,
    upload_dir: Path | None = None,
):
    """The FastAPI application over a loaded predictor.

    Args:
        predictor: the :class:`~mammo_edge.predictor.Predictor` in use.
        batcher: scores the uploads (:class:`~mammo_edge.serve.batcher.Batcher`).
        metrics: counts requests; rendered by ``/metrics``.
        token: the bearer token every route but ``/healthz`` requires; ``None``: none.
        max_body_bytes: the request size limit.
        upload_dir: where uploads are written while decoded (default: the system's).
    """
    app = FastAPI(
        title="mammo-edge",
        description="Flags abnormal mammograms. Research use only: not a medical device.",
        docs_url=None,
        redoc_url=None,
    )

    def refusal(status: int, code: str, message: str, headers: dict | None = None):
        return JSONResponse(
            {"error_code": code, "error_message": message}, status_code=status, headers=headers
        )

    identity = _identity(predictor)

    @app.get("/healthz")
    async def healthz():
        return {"status": "ok", **identity}

    @app.get("/v1/models")
    async def models():
        preprocess = predictor.metadata.preprocess
        return {
            "models": [
                {
                    **identity,
                    "sha256_verified": predictor.sha256_verified,
                    "class_names": list(predictor.metadata.class_names),
                    "input": {"height": preprocess.height, "width": preprocess.width},
                    "batch_size": predictor.batch_size,
                }
            ]
        }

    @app.get("/metrics")
    async def prometheus():
        return PlainTextResponse(metrics.render(), media_type="text/plain; version=0.0.4")

    @app.post("/v1/predict")
    async def predict(request: Request):
        form = await request.form()
        try:
            file = form.get("file")
            if file is None or isinstance(file, str):
                return refusal(422, CODE_BAD_REQUEST, "send the image as multipart field 'file'")
            if not batcher.try_admit():
                return refusal(
                    503, CODE_BUSY, "the scoring queue is full; retry shortly", {"Retry-After": "1"}
                )
            try:
                result = await _score_upload(file, batcher, upload_dir)
            finally:
                batcher.release()
        finally:
            await form.close()
        status = 200 if result.ok else (500 if result.error_code in _SERVER_SIDE else 422)
        return JSONResponse(result.as_dict(), status_code=status)

    return Gatekeeper(app, metrics, token, max_body_bytes)


_ROUTES = ("/healthz", "/v1/models", "/v1/predict", "/metrics")


def _identity(predictor) -> dict:
    """What ``/healthz`` and ``/v1/models`` say of the model and its thresholds (an upload
    is scored alone: ``single_view_threshold`` labels it for a pair-head model)."""
    return {
        "model_name": predictor.model_name,
        "model_version": predictor.model_version,
        "model_sha256": predictor.model_sha256,
        "provider": predictor.provider,
        "threshold": predictor.threshold,
        "single_view_threshold": predictor.single_view_threshold,
        "operating_point": predictor.operating_point,
    }


def _authorised(header: bytes, token: str) -> bool:
    scheme, _, given = header.decode("latin-1").partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(
        given.strip().encode(), token.encode()
    )


async def _score_upload(file, batcher: Batcher, upload_dir: Path | None) -> PredictionResult:
    """Write the upload to a private temporary file, score it, remove the file."""
    label = Path(file.filename or "upload").name or "upload"
    descriptor, name = tempfile.mkstemp(prefix="mammo-upload-", dir=upload_dir)
    path = Path(name)
    try:
        with os.fdopen(descriptor, "wb") as stream:
            await asyncio.to_thread(shutil.copyfileobj, file.file, stream, 1 << 20)
        return await asyncio.wrap_future(batcher.submit(path, label))
    finally:
        path.unlink(missing_ok=True)
