"""The DICOM node: a pynetdicom SCP answering C-ECHO and C-STORE.

Every storage SOP class pynetdicom knows is accepted (so a wrong object gets an error row
in results.jsonl rather than a refused association), in every transfer syntax the
``dicom`` extra decodes: implicit and explicit VR little endian, deflated, explicit big
endian, RLE, JPEG (baseline, extended, lossless), JPEG-LS and JPEG 2000. Whether an
object is a scorable mammogram is decided later (:mod:`.instances`).

The C-STORE handler only writes the instance to the spool (:mod:`.spool`) and answers:
success once the file is on disk, 0xA700 (out of resources) when the disk refused it, so
the sender keeps the instance and tries again.

The door (:mod:`.access`): with TLS files, the port speaks DICOM TLS only (a client
certificate required when a CA is given); with an allow list, an association from any
other calling AE title (or host) is rejected with A-ASSOCIATE-RJ and logged.
"""

from __future__ import annotations

import logging
import threading
import time

from mammo_edge.serve.access import AllowedCaller, admitted
from mammo_edge.serve.metrics import Metrics
from mammo_edge.serve.spool import Spool

logger = logging.getLogger("mammo_edge.serve")

#: C-STORE status: refused, out of resources (PS3.4 B.2.3).
STATUS_OUT_OF_RESOURCES = 0xA700
#: C-STORE status: cannot understand (the dataset could not be parsed).
STATUS_CANNOT_UNDERSTAND = 0xC000
#: A-ASSOCIATE-RJ: rejected permanent, by the service user, calling AE title not recognised.
REJECT_CALLING_AE = (0x01, 0x01, 0x03)


def accepted_transfer_syntaxes() -> list[str]:
    """The transfer syntaxes the node accepts: those pydicom with the dicom extra decodes."""
    from pydicom import uid

    syntaxes = [
        uid.ExplicitVRLittleEndian,
        uid.ImplicitVRLittleEndian,
        uid.DeflatedExplicitVRLittleEndian,
        uid.ExplicitVRBigEndian,
        uid.RLELossless,
        uid.JPEGBaseline8Bit,
        uid.JPEGExtended12Bit,
        uid.JPEGLossless,
        uid.JPEGLosslessSV1,
        uid.JPEGLSLossless,
        uid.JPEGLSNearLossless,
        uid.JPEG2000Lossless,
        uid.JPEG2000,
    ]
    return [str(syntax) for syntax in syntaxes]


class DicomNode:
    """The SCP on ``host:port`` as ``ae_title``, spooling what it receives.

    Args:
        spool: where received instances are written.
        metrics: counts ``received`` instances.
        ae_title: this node's AE title.
        host, port: where to listen; port 0 picks a free one (see :attr:`port`).
        ssl_context: the server's TLS context (:meth:`.access.TlsFiles.server_context`);
            ``None``: plain TCP.
        allowed: the calling AE titles (and hosts) accepted; empty: every one.
    """

    def __init__(
        self,
        spool: Spool,
        metrics: Metrics,
        ae_title: str,
        host: str,
        port: int,
        ssl_context=None,
        allowed: tuple[AllowedCaller, ...] = (),
    ):
        from pynetdicom import AE, AllStoragePresentationContexts, evt
        from pynetdicom.sop_class import Verification

        self.spool = spool
        self.metrics = metrics
        self.ae = AE(ae_title=ae_title)
        self.ae.maximum_associations = 64
        self.ae.network_timeout = 60
        self.ae.dimse_timeout = 120
        syntaxes = accepted_transfer_syntaxes()
        for context in AllStoragePresentationContexts:
            self.ae.add_supported_context(context.abstract_syntax, syntaxes)
        self.ae.add_supported_context(Verification)
        self._host, self._requested_port = host, port
        self._ssl_context = ssl_context
        self.allowed = tuple(allowed)
        self._handlers = [
            (evt.EVT_REQUESTED, self._on_requested),
            (evt.EVT_C_STORE, self._on_store),
            (evt.EVT_C_ECHO, self._on_echo),
        ]
        self._server = None
        self._in_flight = 0
        self._lock = threading.Lock()

    @property
    def port(self) -> int:
        return self._server.server_address[1] if self._server else self._requested_port

    def start(self) -> None:
        self._server = self.ae.start_server(
            (self._host, self._requested_port),
            block=False,
            evt_handlers=self._handlers,
            ssl_context=self._ssl_context,
        )

    def stop(self, timeout: float) -> None:
        """Stop accepting associations, let open ones finish for ``timeout`` s, then abort them."""
        if self._server is None:
            return
        server = self._server
        server.shutdown()  # no new associations; running ones go on in their threads
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and any(
            association.is_alive() for association in server.active_associations
        ):
            time.sleep(0.05)
        for association in server.active_associations:
            association.abort()  # the sender keeps what was not answered and retries
        server.server_close()

    def _on_requested(self, event) -> None:
        """Reject an association whose calling AE title (and host) is not allowed."""
        association = event.assoc
        calling = association.requestor.primitive.calling_ae_title
        address = association.requestor.address
        if admitted(self.allowed, calling, address):
            return
        logger.warning(
            "refused an association from %s@%s: not in --allow-ae (%s)",
            calling.strip(),
            address,
            ", ".join(map(str, self.allowed)),
        )
        association.acse.send_reject(*REJECT_CALLING_AE)
        association.kill()

    def _on_echo(self, event) -> int:
        return 0x0000

    def _on_store(self, event) -> int:
        try:
            dataset = event.dataset
            study_uid = dataset.get("StudyInstanceUID")
            sop_uid = event.request.AffectedSOPInstanceUID or dataset.get("SOPInstanceUID")
            data = event.encoded_dataset(include_meta=True)
        except Exception as error:
            logger.warning("C-STORE from %s: unreadable dataset (%s)", _peer(event), error)
            return STATUS_CANNOT_UNDERSTAND
        try:
            self.spool.store(str(study_uid) if study_uid else None, str(sop_uid), data)
        except OSError as error:
            logger.error("C-STORE from %s: cannot spool %s (%s)", _peer(event), sop_uid, error)
            return STATUS_OUT_OF_RESOURCES
        self.metrics.instance("received")
        return 0x0000


def _peer(event) -> str:
    requestor = event.assoc.requestor
    return f"{requestor.ae_title}@{requestor.address}"
