"""Results waiting to be sent to ``--send-to`` by C-STORE, retried with back-off, never dropped.

Sending is a queue on disk: for each file to send, a small marker ``DIR/outbox/<n>.json``
names it (relative to ``DIR``). The marker is written before the study counts as done and
removed only after the peer answered success, so a crash, a restart or a peer that is down
for a day loses nothing. Failures are logged and retried after 1, 2, 4 ... seconds, at most
:data:`MAX_BACKOFF` apart.
"""

from __future__ import annotations

import json
import logging
import os
import re
import threading
import time
from dataclasses import dataclass
from pathlib import Path

logger = logging.getLogger("mammo_edge.serve")

#: Longest wait between two attempts to reach the peer, in seconds.
MAX_BACKOFF = 60.0
_DESTINATION = re.compile(r"^(?P<ae>[^@]{1,16})@(?P<host>[^:@]+|\[[0-9a-fA-F:]+\]):(?P<port>\d+)$")


@dataclass(frozen=True)
class Destination:
    """A C-STORE peer: ``AET@HOST:PORT``."""

    ae_title: str
    host: str
    port: int

    @classmethod
    def parse(cls, text: str) -> Destination:
        """Parse ``AET@HOST:PORT``; raises ValueError with the expected form."""
        match = _DESTINATION.match(text.strip())
        if not match or not 0 < int(match["port"]) < 65536:
            raise ValueError(
                f"--send-to must look like AET@HOST:PORT (e.g. PACS@127.0.0.1:4242), got {text!r}"
            )
        return cls(match["ae"], match["host"].strip("[]"), int(match["port"]))

    def __str__(self) -> str:
        return f"{self.ae_title}@{self.host}:{self.port}"


class Outbox:
    """The send queue and the thread that empties it.

    Args:
        root: the output folder ``DIR`` (markers in ``DIR/outbox``, files relative to it).
        destination: the peer; ``None`` keeps no queue (results are only written).
        calling_ae_title: this node's AE title.
    """

    def __init__(self, root: Path, destination: Destination | None, calling_ae_title: str):
        self.root = Path(root)
        self.folder = self.root / "outbox"
        self.folder.mkdir(parents=True, exist_ok=True)
        self.destination = destination
        self.calling_ae_title = calling_ae_title
        self._wake = threading.Condition()
        self._stop = False
        self._thread: threading.Thread | None = None
        self.sent = 0
        self.failures = 0

    def enqueue(self, files: list[Path]) -> None:
        """Queue files (under ``root``) for sending; durable on return."""
        if self.destination is None or not files:
            return
        for path in files:
            relative = path.resolve().relative_to(self.root.resolve()).as_posix()
            marker = self.folder / f"{time.time_ns():020d}-{os.getpid()}.json"
            partial = marker.with_suffix(".part")
            partial.write_text(json.dumps({"file": relative}))
            os.replace(partial, marker)
        with self._wake:
            self._wake.notify_all()

    def pending(self) -> list[Path]:
        """Markers waiting, oldest first."""
        return sorted(self.folder.glob("*.json"))

    def start(self) -> None:
        if self.destination is None:
            return
        self._thread = threading.Thread(target=self._run, name="mammo-outbox", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop after the send in progress; what is left stays queued for the next start."""
        with self._wake:
            self._stop = True
            self._wake.notify_all()
        if self._thread is not None:
            self._thread.join(timeout)

    def _run(self) -> None:
        backoff = 1.0
        while True:
            with self._wake:
                while not self._stop and not self.pending():
                    self._wake.wait(1.0)
                if self._stop:
                    return
            markers = self.pending()
            try:
                self._send(markers)
                backoff = 1.0
            except Exception as error:  # the peer is down, refuses, or the network failed
                self.failures += 1
                logger.warning(
                    "sending %d object(s) to %s failed (%s); retrying in %.0f s",
                    len(markers),
                    self.destination,
                    error,
                    backoff,
                )
                with self._wake:
                    self._wake.wait_for(lambda: self._stop, timeout=backoff)
                backoff = min(MAX_BACKOFF, backoff * 2)

    def _send(self, markers: list[Path]) -> None:
        """Send the marked files over one association; remove each marker on success."""
        import pydicom
        from pynetdicom import AE

        files = []
        for marker in markers:
            try:
                relative = json.loads(marker.read_text())["file"]
            except (OSError, ValueError, KeyError):
                logger.warning("outbox marker %s is unreadable; it is kept", marker.name)
                continue
            path = self.root / relative
            if not path.exists():
                logger.warning("outbox: %s is gone; nothing to send", relative)
                marker.unlink(missing_ok=True)
                continue
            files.append((marker, path, pydicom.dcmread(path)))
        if not files:
            return
        ae = AE(ae_title=self.calling_ae_title)
        for transfer_syntax in sorted({str(ds.file_meta.TransferSyntaxUID) for _, _, ds in files}):
            for sop_class in sorted({str(ds.SOPClassUID) for _, _, ds in files}):
                ae.add_requested_context(sop_class, transfer_syntax)
        destination = self.destination
        association = ae.associate(
            destination.host, destination.port, ae_title=destination.ae_title
        )
        if not association.is_established:
            raise ConnectionError(f"association with {destination} was not established")
        try:
            for marker, path, dataset in files:
                status = association.send_c_store(dataset)
                code = getattr(status, "Status", None)
                if code is None:
                    raise ConnectionError(f"no answer from {destination} for {path.name}")
                if code not in (0x0000, 0xB000, 0xB007, 0xB006):  # success and warnings
                    raise ConnectionError(f"{destination} answered 0x{code:04X} for {path.name}")
                marker.unlink(missing_ok=True)
                self.sent += 1
                logger.info("sent %s to %s", path.relative_to(self.root), destination)
        finally:
            association.release()
