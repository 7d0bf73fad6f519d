"""DICOM test objects for the serve tests and benchmark: examples/*.pgm wrapped as mammograms."""

from __future__ import annotations

from pathlib import Path

import numpy as np

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
MG_FOR_PRESENTATION = "1.2.840.10008.5.1.4.1.1.1.2"


def read_pgm(path: Path) -> np.ndarray:
    """The 8-bit pixels of a binary PGM (the MIAS examples: maxval 255)."""
    import cv2

    pixels = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    assert pixels is not None and pixels.dtype == np.uint8, path
    return pixels


def mammogram_dataset(
    pixels: np.ndarray,
    *,
    study_uid: str,
    sop_uid: str | None = None,
    series_uid: str | None = None,
    patient_id: str = "MIAS-TEST",
    laterality: str = "L",
    view: str = "MLO",
    modality: str = "MG",
    sop_class_uid: str = MG_FOR_PRESENTATION,
    intent: str = "FOR PRESENTATION",
):
    """A Digital Mammography (for presentation) dataset holding ``pixels`` unchanged.

    MONOCHROME2, 8 bits stored and no window, so the runtime maps the stored values to
    themselves: ``predict`` on the PGM and on this dataset see the same pixels.
    """
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    sop_uid = sop_uid or generate_uid()
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = sop_class_uid
    meta.MediaStorageSOPInstanceUID = sop_uid
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    dataset = Dataset()
    dataset.file_meta = meta
    dataset.SOPClassUID = sop_class_uid
    dataset.SOPInstanceUID = sop_uid
    dataset.StudyInstanceUID = study_uid
    dataset.SeriesInstanceUID = series_uid or generate_uid()
    dataset.PatientID = patient_id
    dataset.PatientName = "Test^MIAS"
    dataset.PatientBirthDate = ""
    dataset.PatientSex = "F"
    dataset.StudyDate = "20260101"
    dataset.StudyTime = "120000"
    dataset.StudyID = "1"
    dataset.AccessionNumber = "A1"
    dataset.ReferringPhysicianName = ""
    dataset.Modality = modality
    dataset.SeriesNumber = 1
    dataset.InstanceNumber = 1
    dataset.Manufacturer = "MIAS (film scan)"
    dataset.PresentationIntentType = intent
    dataset.ImageLaterality = laterality
    dataset.ViewPosition = view
    dataset.BodyPartExamined = "BREAST" if modality == "MG" else "CHEST"
    dataset.ImageType = ["ORIGINAL", "PRIMARY"]
    dataset.Rows, dataset.Columns = pixels.shape
    dataset.SamplesPerPixel = 1
    dataset.PhotometricInterpretation = "MONOCHROME2"
    dataset.BitsAllocated = 8
    dataset.BitsStored = 8
    dataset.HighBit = 7
    dataset.PixelRepresentation = 0
    dataset.PixelData = np.ascontiguousarray(pixels, dtype=np.uint8).tobytes()
    return dataset


def write_dataset(dataset, path: Path) -> Path:
    """Write ``dataset`` as a DICOM file (with preamble and meta header)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    dataset.save_as(path, enforce_file_format=True)
    return path


def free_port() -> int:
    """A TCP port free on 127.0.0.1 now."""
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class ReceivingScp:
    """A test Storage SCP on 127.0.0.1 that keeps every dataset it receives, in memory."""

    def __init__(self, ae_title: str = "RECEIVER", port: int = 0) -> None:
        import threading

        from pynetdicom import AE, AllStoragePresentationContexts, evt

        self.ae_title = ae_title
        self.received: list = []
        self._lock = threading.Lock()
        self.ae = AE(ae_title=ae_title)
        for context in AllStoragePresentationContexts:
            self.ae.add_supported_context(context.abstract_syntax)
        self.server = self.ae.start_server(
            ("127.0.0.1", port), block=False, evt_handlers=[(evt.EVT_C_STORE, self._on_store)]
        )
        self.port = self.server.server_address[1]

    def _on_store(self, event) -> int:
        dataset = event.dataset
        dataset.file_meta = event.file_meta
        with self._lock:
            self.received.append(dataset)
        return 0x0000

    def by_modality(self, modality: str) -> list:
        with self._lock:
            return [ds for ds in self.received if ds.get("Modality") == modality]

    def close(self) -> None:
        self.server.shutdown()


def send_datasets(
    port: int, datasets, ae_title: str = "MAMMOEDGE", pause: float = 0.0
) -> list[int]:
    """C-STORE ``datasets`` to ``ae_title@127.0.0.1:port`` over one association; the statuses.

    ``pause`` seconds pass between two C-STOREs (to keep an association open for a while).
    Raises ConnectionError when the association fails (the caller may retry).
    """
    import time

    from pynetdicom import AE

    ae = AE(ae_title="TESTSCU")
    for sop_class, syntax in {
        (str(ds.SOPClassUID), str(ds.file_meta.TransferSyntaxUID)) for ds in datasets
    }:
        ae.add_requested_context(sop_class, syntax)
    association = ae.associate("127.0.0.1", port, ae_title=ae_title)
    if not association.is_established:
        raise ConnectionError(f"no association with 127.0.0.1:{port}")
    statuses = []
    try:
        for number, dataset in enumerate(datasets):
            if number and pause:
                time.sleep(pause)
            status = association.send_c_store(dataset)
            if not status or "Status" not in status:
                raise ConnectionError("association ended during C-STORE")
            statuses.append(int(status.Status))
    finally:
        if association.is_established:
            association.release()
    return statuses


def start_serve(out: Path, *arguments: str, timeout: float = 60.0):
    """Start ``mammo-edge serve --out OUT ARGUMENTS`` as a process; wait for OUT/serve.json.

    Returns ``(process, info)`` where ``info`` is serve.json (ports, pid). Standard error
    goes to ``OUT.log``.
    """
    import json
    import subprocess
    import sys
    import time

    ready = out / "serve.json"
    ready.unlink(missing_ok=True)
    log = open(str(out) + ".log", "ab")
    process = subprocess.Popen(
        [sys.executable, "-m", "mammo_edge.cli", "serve", "--out", str(out), *arguments],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + timeout
    while not ready.exists():
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            raise RuntimeError(f"serve did not start: {Path(str(out) + '.log').read_text()}")
        time.sleep(0.05)
    return process, json.loads(ready.read_text())


def read_results(out: Path) -> list[dict]:
    """The records of OUT/results.jsonl."""
    import json

    path = out / "results.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def in_process_scorer(out: Path, predictor=None, **options):
    """A :class:`~mammo_edge.serve.studies.StudyScorer` over ``OUT`` without listeners.

    The node's parts as :class:`~mammo_edge.serve.service.Service` builds them (spool,
    results.jsonl, an outbox that sends nothing, metrics); ``options`` go to the scorer
    (``stable_after`` defaults to 0). Not started: call ``score_study`` or ``start()``.
    """
    from mammo_edge import Predictor
    from mammo_edge.explain.explainer import Explainer
    from mammo_edge.serve.metrics import Metrics
    from mammo_edge.serve.outbox import Outbox
    from mammo_edge.serve.records import ResultsLog
    from mammo_edge.serve.spool import Spool
    from mammo_edge.serve.studies import StudyScorer

    out.mkdir(parents=True, exist_ok=True)
    spool = Spool(out / "spool")
    options.setdefault("stable_after", 0.0)
    return StudyScorer(
        Explainer(predictor or Predictor(streams=1)),
        spool,
        ResultsLog(out / "results.jsonl"),
        Outbox(out, None, "MAMMOEDGE"),
        Metrics(failed_studies=lambda: len(spool.failed_studies())),
        out,
        **options,
    )


def spool_dataset(scorer, dataset) -> None:
    """Put ``dataset`` in the scorer's spool as the C-STORE handler does."""
    from io import BytesIO

    buffer = BytesIO()
    dataset.save_as(buffer, enforce_file_format=True)
    scorer.spool.store(dataset.get("StudyInstanceUID"), dataset.SOPInstanceUID, buffer.getvalue())
