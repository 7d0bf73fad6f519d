"""The ``results.jsonl`` record of ``mammo-edge serve``, its one writer and its one reader.

Each line is the ``mammo-edge predict`` record
(:class:`~mammo_edge.records.record.PredictionResult`,
fields in schema order, its laterality and exam fields included) followed by the instance's
DICOM identity, the study revision that first scored it and, when scored, where its heatmap
peaks. The file is the service's memory: an instance whose ``sop_instance_uid`` is in it
has been scored and is never scored again, across restarts, unless its latest line says
``STUDY_QUARANTINED``: that line cancels the instance's earlier ones, so a study an operator
moves back from ``spool/failed/`` to ``spool/incoming/`` is scored afresh.
Lines are appended with one ``write`` per study and flushed to disk (``fsync``) before the
instances leave ``incoming/``; a line cut by a crash is removed at the next start (its
instance is still in ``incoming/`` and is scored again).
"""

from __future__ import annotations

import json
import os
import threading
from collections import defaultdict
from dataclasses import asdict, dataclass, fields
from pathlib import Path

from mammo_edge.errors import ErrorCode
from mammo_edge.records.record import PredictionResult, record_from_dict

QUARANTINED = ErrorCode.STUDY_QUARANTINED.value


@dataclass(frozen=True)
class ServeRecord:
    """One received instance's result.

    Attributes:
        prediction: the ``predict`` record (``path`` is the instance in the spool, relative
            to the output folder).
        sop_instance_uid, study_instance_uid, series_instance_uid, patient_id: from the
            dataset ((0008,0018), (0020,000D), (0020,000E), (0010,0020)); ``None`` when absent.
        sop_class_uid: (0008,0016), for the SR's image references.
        revision: the study revision (1, 2, ...) whose scoring wrote this record.
        peak_x, peak_y: the heatmap maximum in the image's pixels (column, row); ``None``
            when not scored.
        peak_value: the heatmap there.
    """

    prediction: PredictionResult
    sop_instance_uid: str | None
    study_instance_uid: str | None
    series_instance_uid: str | None
    patient_id: str | None
    sop_class_uid: str | None
    revision: int
    peak_x: float | None = None
    peak_y: float | None = None
    peak_value: float | None = None

    @property
    def ok(self) -> bool:
        return self.prediction.ok

    def as_dict(self) -> dict:
        """The ``predict`` fields, then the DICOM ones, as plain JSON-ready values."""
        record = self.prediction.as_dict()
        extra = asdict(self)
        del extra["prediction"]
        record.update(extra)
        return record

    @classmethod
    def from_dict(cls, record: dict) -> ServeRecord:
        """The record a line of ``results.jsonl`` holds (the reader of :meth:`as_dict`)."""
        # The view is the prediction's (mammo_edge.images.dicom_tags.view_position); older lines
        # also
        # carried it as a DICOM field.
        extra = {field.name: record.get(field.name) for field in fields(cls)[1:]}
        return cls(prediction=record_from_dict(record, "results.jsonl record"), **extra)


#: Fields a serve record adds to the ``predict`` record, in order.
SERVE_FIELDS = tuple(field.name for field in fields(ServeRecord)[1:])


class ResultsLog:
    """``results.jsonl``: appended per study, read once at start.

    Args:
        path: the file; created when missing, a half-written last line cut off.
    """

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self._by_study: dict[str, list[ServeRecord]] = defaultdict(list)
        self._recorded: set[str] = set()
        self._revisions: dict[str, int] = {}
        self.repaired_bytes = self._load()

    def _load(self) -> int:
        """Read the existing records; cut a last line that a crash left unfinished."""
        if not self.path.exists():
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.path.touch()
            return 0
        data = self.path.read_bytes()
        keep = data.rfind(b"\n") + 1
        lines = data[:keep].split(b"\n")[:-1]
        offset = 0
        for number, line in enumerate(lines, start=1):
            try:
                record = ServeRecord.from_dict(json.loads(line))
            except (ValueError, TypeError) as error:
                if number == len(lines):
                    keep = offset
                    break
                raise ValueError(
                    f"line {number} of {self.path} is not a mammo-edge serve record ({error})"
                ) from None
            self._remember(record)
            offset += len(line) + 1
        repaired = len(data) - keep
        if repaired:
            with open(self.path, "r+b") as stream:
                stream.truncate(keep)
                os.fsync(stream.fileno())
        return repaired

    def _remember(self, record: ServeRecord) -> None:
        study = record.study_instance_uid or ""
        if record.prediction.error_code == QUARANTINED:
            # The instance's study was quarantined: its earlier lines no longer count, so
            # moved back from spool/failed/ by an operator it is scored afresh.
            if record.sop_instance_uid:
                uid = record.sop_instance_uid
                self._recorded.discard(uid)
                kept = [other for other in self._by_study[study] if other.sop_instance_uid != uid]
                self._by_study[study] = kept
                # Nothing of a quarantined revision was sent: a retry may use its number.
                self._revisions[study] = max((other.revision for other in kept), default=0)
            return
        self._by_study[study].append(record)
        if record.sop_instance_uid:
            self._recorded.add(record.sop_instance_uid)
        self._revisions[study] = max(self._revisions.get(study, 0), record.revision)

    def is_recorded(self, sop_instance_uid: str | None) -> bool:
        with self._lock:
            return bool(sop_instance_uid) and sop_instance_uid in self._recorded

    def revision(self, study_instance_uid: str | None) -> int:
        """The study's latest revision (0: never scored)."""
        with self._lock:
            return self._revisions.get(study_instance_uid or "", 0)

    def study_records(self, study_instance_uid: str | None) -> list[ServeRecord]:
        """Every record of the study, in the order written."""
        with self._lock:
            return list(self._by_study.get(study_instance_uid or "", ()))

    def latest_study_records(self, study_instance_uid: str | None) -> list[ServeRecord]:
        """The latest record of each instance of the study, in first-recorded order (a
        later revision may record an instance again with its exam values updated)."""
        latest: dict[str, ServeRecord] = {}
        unnamed: list[ServeRecord] = []
        for record in self.study_records(study_instance_uid):
            if record.sop_instance_uid:
                latest[record.sop_instance_uid] = record
            else:
                unnamed.append(record)
        return [*latest.values(), *unnamed]

    def append(self, records: list[ServeRecord]) -> None:
        """Append records as lines, in one write, and flush them to disk."""
        if not records:
            return
        text = "".join(json.dumps(r.as_dict(), ensure_ascii=False) + "\n" for r in records)
        with self._lock:
            descriptor = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            try:
                remaining = memoryview(text.encode("utf-8"))
                while remaining:
                    remaining = remaining[os.write(descriptor, remaining) :]
                os.fsync(descriptor)
            finally:
                os.close(descriptor)
            for record in records:
                self._remember(record)

    def __len__(self) -> int:
        with self._lock:
            return sum(len(records) for records in self._by_study.values())
