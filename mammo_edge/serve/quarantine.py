"""A study whose scoring or outputs keep failing: bounded retries, then quarantine.

Before, a study whose SR could not be written (an image without (0010,0030) Patient's
Birth Date was enough) was retried every few seconds for ever: it stayed in the spool,
nothing was sent and results.jsonl said nothing. Now a failing study is tried again after
:data:`FIRST_RETRY_DELAY` seconds, then twice as long each time, at most
:data:`MAX_ATTEMPTS` times in all; other studies are scored meanwhile. Then it is
quarantined:

- each of its received instances gets a ``STUDY_QUARANTINED`` row in results.jsonl, whose
  message says why;
- the reason is logged once;
- its files move to ``spool/failed/<study>/`` and ``spool/failed/<study>.json`` records why,
  when and after how many attempts. A restart does not retry it (it is no longer in
  ``incoming/``); an operator retries it by moving the folder back to ``spool/incoming/``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from mammo_edge.errors import ErrorCode
from mammo_edge.images.pipeline import LoadedImage
from mammo_edge.records.record import RecordContext, build_record
from mammo_edge.serve.instances import read_header
from mammo_edge.serve.records import ResultsLog, ServeRecord
from mammo_edge.serve.spool import Spool, SpooledInstance

#: Attempts at one study (the first included) before it is quarantined.
MAX_ATTEMPTS = 4
#: Seconds before the second attempt; each later wait is twice the one before.
FIRST_RETRY_DELAY = 2.0


@dataclass
class _Failures:
    attempts: int
    retry_at: float


class StudyAttempts:
    """Failed attempts per study and when each may be tried again (in this process).

    Args:
        max_attempts: attempts before :meth:`failed` answers that the study is spent.
        first_delay: seconds before the second attempt (then doubled each time).
    """

    def __init__(
        self, max_attempts: int = MAX_ATTEMPTS, first_delay: float = FIRST_RETRY_DELAY
    ) -> None:
        if max_attempts < 1:
            raise ValueError(f"max_attempts must be at least 1, got {max_attempts}")
        self.max_attempts = max_attempts
        self.first_delay = first_delay
        self._failures: dict[str, _Failures] = {}

    def due(self, study_key: str, now: float | None = None) -> bool:
        """Whether the study may be tried now (never failed, or its back-off is over)."""
        failures = self._failures.get(study_key)
        return failures is None or (now or time.monotonic()) >= failures.retry_at

    def failed(self, study_key: str) -> tuple[int, float | None]:
        """Count a failed attempt: ``(attempts so far, seconds until the next)``.

        The delay is ``None`` once ``max_attempts`` attempts failed: quarantine the study.
        """
        failures = self._failures.setdefault(study_key, _Failures(0, 0.0))
        failures.attempts += 1
        # Also when spent: should quarantining fail too, the study waits before the next try.
        delay = self.first_delay * 2 ** min(failures.attempts - 1, self.max_attempts - 2)
        failures.retry_at = time.monotonic() + delay
        return failures.attempts, (None if failures.attempts >= self.max_attempts else delay)

    def forget(self, study_key: str) -> None:
        """The study succeeded or was quarantined: its next failure counts from one."""
        self._failures.pop(study_key, None)


def quarantine_records(
    spool: Spool,
    out_dir: Path,
    instances: list[SpooledInstance],
    context: RecordContext,
    results: ResultsLog,
    reason: str,
) -> list[ServeRecord]:
    """One ``STUDY_QUARANTINED`` record per instance of a study about to be quarantined.

    Args:
        spool, out_dir: the service's spool and output folder (``path`` is where each
            instance goes in ``spool/failed/``, relative to ``out_dir``).
        instances: the study's instances in ``incoming/``.
        context: the model's record context (name, version, SHA-256, threshold).
        results: results.jsonl; the rows carry the revision the failed attempt scored (the
            next one when an instance was not recorded yet, else the latest).
        reason: the failure, for ``error_message``.
    """
    entries = [(instance, read_header(instance.path)) for instance in instances]
    study_key = instances[0].study_key if instances else ""
    study_uid = next((h.study_instance_uid for _, h in entries if h.study_instance_uid), None)
    fresh = any(not results.is_recorded(header.sop_instance_uid) for _, header in entries)
    revision = results.revision(study_uid) + (1 if fresh else 0)
    message = (
        f"the study could not be finished ({reason}); its instances are in spool/failed/"
        f"{study_key}/: move that folder back to spool/incoming/ to try again"
    )
    records = []
    for instance, header in entries:
        item = LoadedImage(
            path=spool.failed_path(instance).relative_to(out_dir).as_posix(),
            model_input=None,
            image_format="dicom",
            error_code=ErrorCode.STUDY_QUARANTINED.value,
            error_message=message,
        )
        # As a line of results.jsonl: the header's fields land where the record keeps them.
        line = {
            **build_record(item, context).as_dict(),
            "laterality": header.laterality,
            "view": header.view,
            "sop_instance_uid": header.sop_instance_uid,
            "study_instance_uid": header.study_instance_uid or study_uid,
            "series_instance_uid": header.series_instance_uid,
            "patient_id": header.patient_id,
            "sop_class_uid": header.sop_class_uid,
            "revision": revision,
        }
        records.append(ServeRecord.from_dict(line))
    return records


def quarantine_note(study_uid: str | None, reason: str, attempts: int, instances: int) -> dict:
    """What ``spool/failed/<study>.json`` says."""
    return {
        "study_instance_uid": study_uid,
        "reason": reason,
        "attempts": attempts,
        "instances": instances,
        "quarantined_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "error_code": ErrorCode.STUDY_QUARANTINED.value,
        "retry": "move this study's folder back to spool/incoming/",
    }
