"""Received DICOM instances on disk: written atomically, kept until scored, never lost.

Layout under ``DIR/spool/``::

    tmp/                         half-written files (a crash leaves them; removed at start)
    incoming/<StudyUID>/<SOPUID>.dcm   received, not yet recorded in results.jsonl
    scored/<StudyUID>/<SOPUID>.dcm     recorded; kept for the study's next revision
    failed/<StudyUID>/<SOPUID>.dcm     quarantined: the study's outputs kept failing
    failed/<StudyUID>.json             why, when, after how many attempts

An instance reaches ``incoming/`` by ``os.replace`` of a file already flushed to disk
(``fsync`` of the file and of its folder), so after any crash a file in ``incoming/`` is
whole, and a C-STORE is answered "success" only once that is true. The C-STORE handler does
nothing else: scoring happens in :mod:`.studies`, so a slow model never holds up an
association. A study in ``failed/`` is not retried (:mod:`.quarantine`); an operator
retries it by moving its folder back to ``incoming/``.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import threading
import time
from dataclasses import dataclass
from pathlib import Path

#: A DICOM UID: digits and dots, at most 64 characters (PS3.5 9.1).
_UID = re.compile(r"^[0-9]+(\.[0-9]+)*$")
#: Folder of instances whose dataset names no StudyInstanceUID.
NO_STUDY = "no-study"


def uid_file_name(uid: str | None) -> str:
    """A file-system-safe name for a UID: the UID itself when valid, else a hash of it."""
    text = str(uid or "").strip()
    if _UID.match(text) and len(text) <= 64:
        return text
    return "x" + hashlib.sha256(text.encode("utf-8", "replace")).hexdigest()[:32]


@dataclass(frozen=True)
class SpooledInstance:
    """One received instance in the spool.

    Attributes:
        study_key: the study's folder name (its UID, or a hash for an invalid one).
        path: where the file is now.
    """

    study_key: str
    path: Path

    @property
    def sop_key(self) -> str:
        return self.path.stem


class Spool:
    """The spool folder: atomic writes in, studies out.

    Args:
        root: ``DIR/spool``; created when missing.
    """

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.tmp = self.root / "tmp"
        self.incoming = self.root / "incoming"
        self.scored = self.root / "scored"
        self.failed = self.root / "failed"
        for folder in (self.tmp, self.incoming, self.scored, self.failed):
            folder.mkdir(parents=True, exist_ok=True)
        for leftover in self.tmp.iterdir():  # a crash mid-write; the sender got no success
            leftover.unlink(missing_ok=True)
        self._lock = threading.Lock()
        #: study key -> time.monotonic() of its last arrival (in this process)
        self._last_arrival: dict[str, float] = {}
        self._counter = 0

    def store(self, study_uid: str | None, sop_uid: str | None, data: bytes) -> SpooledInstance:
        """Write one instance (the whole DICOM file, with its meta header) atomically.

        Raises:
            OSError: the disk refused the write (the C-STORE then answers a failure, so the
                sender keeps the instance and retries).
        """
        study_key = uid_file_name(study_uid) if study_uid else NO_STUDY
        sop_key = uid_file_name(sop_uid)
        with self._lock:
            self._counter += 1
            temporary = self.tmp / f"{os.getpid()}-{self._counter}-{sop_key}.part"
        folder = self.incoming / study_key
        with open(temporary, "wb") as stream:
            stream.write(data)
            stream.flush()
            os.fsync(stream.fileno())
        target = folder / f"{sop_key}.dcm"
        with self._lock:  # finish_study removes an empty study folder under the same lock
            folder.mkdir(parents=True, exist_ok=True)
            os.replace(temporary, target)
            self._last_arrival[study_key] = time.monotonic()
        _fsync_folder(folder)
        return SpooledInstance(study_key, target)

    def pending_studies(self) -> list[str]:
        """Study keys with instances in ``incoming/`` (received, not yet recorded)."""
        return sorted(
            entry.name
            for entry in os.scandir(self.incoming)
            if entry.is_dir() and any(os.scandir(entry.path))
        )

    def quiet_for(self, study_key: str) -> float:
        """Seconds since the study's last instance arrived.

        After a restart the arrival times are the files' modification times, so a study
        that was quiet before the restart is scored at once.
        """
        with self._lock:
            last = self._last_arrival.get(study_key)
        if last is not None:
            return time.monotonic() - last
        folder = self.incoming / study_key
        try:
            newest = max(entry.stat().st_mtime for entry in os.scandir(folder))
        except (ValueError, FileNotFoundError):
            return float("inf")
        return max(0.0, time.time() - newest)

    def incoming_instances(self, study_key: str) -> list[SpooledInstance]:
        """The study's instances in ``incoming/``, in name order."""
        folder = self.incoming / study_key
        if not folder.is_dir():
            return []
        return [SpooledInstance(study_key, path) for path in sorted(folder.glob("*.dcm"))]

    def scored_instances(self, study_key: str) -> list[SpooledInstance]:
        """The study's instances already recorded, in name order."""
        folder = self.scored / study_key
        if not folder.is_dir():
            return []
        return [SpooledInstance(study_key, path) for path in sorted(folder.glob("*.dcm"))]

    def scored_path(self, instance: SpooledInstance) -> Path:
        """Where an instance goes once recorded."""
        return self.scored / instance.study_key / instance.path.name

    def mark_scored(self, instance: SpooledInstance) -> Path:
        """Move a recorded instance from ``incoming/`` to ``scored/`` (a re-sent copy replaces
        the old one; its record stays the first one)."""
        target = self.scored_path(instance)
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(instance.path, target)
        return target

    def finish_study(self, study_key: str) -> None:
        """Fsync the study's folders and drop an empty ``incoming/`` folder."""
        for folder in (self.incoming / study_key, self.scored / study_key):
            if folder.is_dir():
                _fsync_folder(folder)
        with self._lock:
            try:
                (self.incoming / study_key).rmdir()
            except OSError:
                pass  # not empty: more instances arrived meanwhile; the next revision

    def failed_path(self, instance: SpooledInstance) -> Path:
        """Where an instance goes when its study is quarantined."""
        return self.failed / instance.study_key / instance.path.name

    def quarantine(self, study_key: str, instances: list[SpooledInstance], note: dict) -> Path:
        """Move the study's ``instances`` to ``failed/<study>/`` and write ``note`` beside it.

        The files keep their names, so moving the folder back to ``incoming/`` retries the
        study; ``failed/<study>.json`` holds ``note`` (why, when, attempts). Returns the folder.
        """
        folder = self.failed / study_key
        folder.mkdir(parents=True, exist_ok=True)
        for instance in instances:
            if instance.path.exists():
                os.replace(instance.path, self.failed_path(instance))
        _fsync_folder(folder)
        partial = self.failed / f"{study_key}.json.part"
        partial.write_text(json.dumps(note, indent=2) + "\n", encoding="utf-8")
        os.replace(partial, self.failed / f"{study_key}.json")
        _fsync_folder(self.failed)
        with self._lock:
            try:
                (self.incoming / study_key).rmdir()
            except OSError:
                pass  # not empty: instances that arrived meanwhile make a new attempt
        return folder

    def failed_studies(self) -> dict[str, int]:
        """``{study key: instances}`` of the studies in ``failed/`` (those holding files)."""
        found = {}
        for entry in os.scandir(self.failed):
            if entry.is_dir():
                count = sum(1 for name in os.listdir(entry.path) if name.endswith(".dcm"))
                if count:
                    found[entry.name] = count
        return dict(sorted(found.items()))

    def depth(self) -> int:
        """Instances received and not yet recorded."""
        return sum(
            1
            for study in os.scandir(self.incoming)
            if study.is_dir()
            for entry in os.scandir(study.path)
            if entry.name.endswith(".dcm")
        )


def _fsync_folder(folder: Path) -> None:
    """Make a rename inside ``folder`` durable (POSIX; a no-op where folders cannot be opened)."""
    try:
        descriptor = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(descriptor)
    except OSError:
        pass
    finally:
        os.close(descriptor)
