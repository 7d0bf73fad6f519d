"""Start the service's parts, keep them running, stop them cleanly on SIGTERM.

On start: the model is loaded and verified; ``DIR/results.jsonl`` is read (a line cut by a
crash removed); instances left in the spool are scored as soon as they are quiet; results
not yet sent are sent; studies quarantined in ``spool/failed/`` are reported (a log line,
``failed_studies`` in ``serve.json`` and the ``/metrics`` gauge) but not retried. When every
listener is up, ``DIR/serve.json`` names the ports (useful
with port 0, which picks a free one) and the process id.

On SIGTERM (or Ctrl-C): stop accepting associations and requests, let those in progress
finish (at most :data:`DRAIN_SECONDS`), finish the study being scored (its results are
flushed), leave the rest in the spool and the outbox for the next start, and exit 0 —
all within 15 seconds.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import socket
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from mammo_edge.serve.access import AllowedCaller, TlsFiles
from mammo_edge.serve.outbox import Destination

logger = logging.getLogger("mammo_edge.serve")

#: Seconds open associations and HTTP requests get to finish after SIGTERM.
DRAIN_SECONDS = 5.0
#: Seconds the study being scored gets to finish after SIGTERM.
SCORING_GRACE_SECONDS = 7.0


@dataclass(frozen=True)
class ServeSettings:
    """What ``mammo-edge serve`` was asked to do (docs/serve.md)."""

    out_dir: Path
    host: str = "127.0.0.1"
    dicom_port: int | None = None
    ae_title: str = "MAMMOEDGE"
    http_port: int | None = None
    send_to: Destination | None = None
    stable_after: float = 30.0
    model: str | None = None
    engine: str = "local"
    token: str | None = None
    threads: int | None = None
    max_queue: int = 64
    replicas: int = 2
    tls: TlsFiles | None = None
    allow_ae: tuple[AllowedCaller, ...] = ()


class Service:
    """The running service: the DICOM node and/or the HTTP app over one model."""

    def __init__(self, settings: ServeSettings) -> None:
        from mammo_edge.explain.explainer import Explainer
        from mammo_edge.predictor import Predictor
        from mammo_edge.serve.metrics import Metrics
        from mammo_edge.serve.outbox import Outbox
        from mammo_edge.serve.records import ResultsLog
        from mammo_edge.serve.spool import Spool
        from mammo_edge.serve.studies import StudyScorer

        self.settings = settings
        out_dir = Path(settings.out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        # One batcher thread calls the model: every core goes to that one call.
        self.predictor = Predictor(settings.model, threads=settings.threads, streams=1)
        self.spool = Spool(out_dir / "spool")
        self.results = ResultsLog(out_dir / "results.jsonl")
        if self.results.repaired_bytes:
            logger.warning(
                "results.jsonl: removed a half-written last line (%d bytes); its instance "
                "is scored again",
                self.results.repaired_bytes,
            )
        self.batcher = None
        self.metrics = Metrics(
            queue_depth=self._queue_depth,
            failed_studies=lambda: len(self.spool.failed_studies()),
        )
        self.outbox = Outbox(out_dir, settings.send_to, settings.ae_title)
        self.node = None
        self.scorer = None
        if settings.dicom_port is not None:
            from mammo_edge.serve.dicom_node import DicomNode

            self.scorer = StudyScorer(
                Explainer(self.predictor),
                self.spool,
                self.results,
                self.outbox,
                self.metrics,
                out_dir,
                settings.stable_after,
            )
            self.node = DicomNode(
                self.spool,
                self.metrics,
                settings.ae_title,
                settings.host,
                settings.dicom_port,
                ssl_context=settings.tls.server_context() if settings.tls else None,
                allowed=settings.allow_ae,
            )
        self._http_server = None
        self._http_thread: threading.Thread | None = None
        self._stop = threading.Event()

    def _queue_depth(self) -> int:
        waiting = self.batcher.depth if self.batcher is not None else 0
        return waiting + self.spool.depth()

    def start(self) -> dict:
        """Start every part; returns what ``serve.json`` says (ports, pid)."""
        settings = self.settings
        info: dict = {"pid": os.getpid(), "host": settings.host, "tls": settings.tls is not None}
        info["failed_studies"] = self._report_failed()
        self.outbox.start()
        if self.node is not None:
            self.scorer.start()
            self.node.start()
            info.update(dicom_port=self.node.port, ae_title=settings.ae_title)
        if settings.http_port is not None:
            info["http_port"] = self._start_http()
        info.update(
            model_name=self.predictor.model_name,
            model_version=self.predictor.model_version,
            model_sha256=self.predictor.model_sha256,
        )
        ready = Path(settings.out_dir) / "serve.json"
        partial = ready.with_suffix(".part")
        partial.write_text(json.dumps(info, indent=2) + "\n")
        os.replace(partial, ready)
        return info

    def _report_failed(self) -> int:
        """Log what ``spool/failed/`` holds (quarantined studies); how many studies."""
        failed = self.spool.failed_studies()
        if failed:
            logger.warning(
                "%d quarantined study(ies), %d instance(s), in %s (not retried; each has "
                "STUDY_QUARANTINED lines in results.jsonl and a .json note of why): %s; "
                "move a study's folder back to spool/incoming/ to try it again",
                len(failed),
                sum(failed.values()),
                self.spool.failed,
                ", ".join(failed),
            )
        return len(failed)

    def _start_http(self) -> int:
        import uvicorn

        from mammo_edge.serve.http_app import create_app

        settings = self.settings
        if settings.engine == "ray":
            from mammo_edge.serve.ray_scorer import RayBatcher

            self.batcher = RayBatcher(
                self.predictor, settings.max_queue, settings.replicas, num_cpus=None
            )
        else:
            from mammo_edge.serve.batcher import Batcher

            self.batcher = Batcher(self.predictor, settings.max_queue)
        app = create_app(self.predictor, self.batcher, self.metrics, token=settings.token)
        family = socket.AF_INET6 if ":" in settings.host else socket.AF_INET
        listener = socket.socket(family, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((settings.host, settings.http_port))
        listener.listen(256)
        config = uvicorn.Config(
            app,
            log_level="warning",
            access_log=False,
            timeout_graceful_shutdown=int(DRAIN_SECONDS),
            lifespan="off",
            **(settings.tls.uvicorn_options() if settings.tls else {}),
        )
        self._http_server = uvicorn.Server(config)
        self._http_thread = threading.Thread(
            target=self._http_server.run,
            kwargs={"sockets": [listener]},
            name="mammo-http",
            daemon=True,
        )
        self._http_thread.start()
        deadline = time.monotonic() + 30
        while not self._http_server.started and time.monotonic() < deadline:
            if not self._http_thread.is_alive():
                raise RuntimeError("the HTTP server failed to start")
            time.sleep(0.02)
        return listener.getsockname()[1]

    def wait(self) -> None:
        """Block until :meth:`request_stop` (SIGTERM, SIGINT)."""
        while not self._stop.wait(0.5):
            pass

    def request_stop(self, *_: object) -> None:
        self._stop.set()

    def stop(self) -> None:
        """Stop accepting, drain, flush; bounded by 15 s in all."""
        started = time.monotonic()
        if self.node is not None:
            self.node.stop(DRAIN_SECONDS)
        if self._http_server is not None:
            self._http_server.should_exit = True
            self._http_thread.join(DRAIN_SECONDS + 1)
            self.batcher.close()
        if self.scorer is not None and not self.scorer.stop(SCORING_GRACE_SECONDS):
            logger.warning("the study being scored did not finish; it stays in the spool")
        self.outbox.stop(1.0)
        left = self.spool.depth()
        logger.info(
            "stopped in %.1f s; %d instance(s) left in the spool, %d result(s) left to send",
            time.monotonic() - started,
            left,
            len(self.outbox.pending()),
        )


#: Exit code when a port cannot be opened (in use, not permitted): a usage error.
EXIT_CANNOT_LISTEN = 1


def run(settings: ServeSettings) -> int:
    """Run the service until SIGTERM or Ctrl-C; returns the exit code.

    0 after SIGTERM or Ctrl-C; 1 when a port cannot be opened (the message says which).
    """
    service = Service(settings)
    previous = {
        signum: signal.signal(signum, service.request_stop)
        for signum in (signal.SIGTERM, signal.SIGINT)
    }
    try:
        try:
            info = service.start()
        except OSError as error:
            logger.error(
                "cannot listen on %s (%s): is another service using the port?",
                settings.host,
                error.strerror or error,
            )
            return EXIT_CANNOT_LISTEN
        parts = []
        if "dicom_port" in info:
            tls = " (TLS)" if settings.tls is not None else ""
            parts.append(f"DICOM {settings.ae_title}@{settings.host}:{info['dicom_port']}{tls}")
        if "http_port" in info:
            scheme = "https" if settings.tls is not None else "http"
            parts.append(f"HTTP {scheme}://{settings.host}:{info['http_port']}")
        if settings.allow_ae:
            parts.append("associations only from " + ", ".join(map(str, settings.allow_ae)))
        logger.info(
            "serving %s with %s %s (SHA-256 %s); results in %s",
            ", ".join(parts),
            info["model_name"],
            info["model_version"],
            info["model_sha256"][:12],
            settings.out_dir,
        )
        service.wait()
    finally:
        service.stop()
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    return 0
