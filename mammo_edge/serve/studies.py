"""Score a study once no instance of it has arrived for ``stable_after`` seconds.

One thread takes studies from the spool when they are quiet, in this order, so a crash at
any point loses nothing and records nothing twice:

1. read each incoming instance's header; objects that are not scorable mammograms get an
   error record without being decoded, objects mammo-edge wrote itself are dropped;
2. score the rest and find their heatmap peaks (:class:`~mammo_edge.explain.explainer.Explainer`,
the
   code ``mammo-edge explain`` runs, so probabilities equal ``predict``'s);
3. append one record per new instance to ``results.jsonl`` and flush it to disk;
4. write the study's SR (this revision) and each image's overlay under ``DIR/<StudyUID>/``
   and queue them for sending (:mod:`.outbox`);
5. move the instances to ``scored/``.

After a crash between 3 and 5 the instances are still in ``incoming/`` but already
recorded: they are not recorded again; their SR and overlays are written again (same UIDs,
so the peer receives the same objects). A study that receives instances after it was
scored is scored again when quiet, as the next revision; the SR of a revision covers every
scored image of the study.

A study whose scoring or outputs raise is tried again with back-off a bounded number of
times, other studies going on meanwhile, then quarantined (:mod:`.quarantine`).
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import replace
from pathlib import Path

from mammo_edge.exams import exam_fields
from mammo_edge.explain.explainer import Explainer
from mammo_edge.images.pipeline import LoadedImage
from mammo_edge.records.record import build_record
from mammo_edge.serve.instances import InstanceHeader, read_header
from mammo_edge.serve.metrics import Metrics
from mammo_edge.serve.outbox import Outbox
from mammo_edge.serve.quarantine import StudyAttempts, quarantine_note, quarantine_records
from mammo_edge.serve.records import ResultsLog, ServeRecord
from mammo_edge.serve.spool import Spool, SpooledInstance

logger = logging.getLogger("mammo_edge.serve")


class StudyScorer:
    """The thread that scores quiet studies.

    Args:
        explainer: the model (``explainer.predictor``) and its heatmap.
        spool, results, outbox, metrics: the service's parts.
        out_dir: ``DIR``; SRs and overlays go to ``DIR/<StudyUID>/``.
        stable_after: seconds without a new instance before a study is scored.
        attempts: how often and how soon a failing study is tried again before it is
            quarantined (:mod:`.quarantine`; default 4 attempts, 2 s, 4 s, 8 s apart).
    """

    def __init__(
        self,
        explainer: Explainer,
        spool: Spool,
        results: ResultsLog,
        outbox: Outbox,
        metrics: Metrics,
        out_dir: Path,
        stable_after: float,
        attempts: StudyAttempts | None = None,
    ) -> None:
        self.explainer = explainer
        self.spool = spool
        self.results = results
        self.outbox = outbox
        self.metrics = metrics
        self.out_dir = Path(out_dir)
        self.stable_after = stable_after
        self.attempts = attempts or StudyAttempts()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.studies_scored = 0

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="mammo-scorer", daemon=True)
        self._thread.start()

    def stop(self, timeout: float) -> bool:
        """Finish the study being scored, then stop; True when the thread ended in time."""
        self._stop.set()
        if self._thread is None:
            return True
        self._thread.join(timeout)
        return not self._thread.is_alive()

    def _run(self) -> None:
        poll = min(0.2, max(0.02, self.stable_after / 4))
        while not self._stop.is_set():
            quiet = [
                study
                for study in self.spool.pending_studies()
                if self.spool.quiet_for(study) >= self.stable_after and self.attempts.due(study)
            ]
            for study in quiet:
                if self._stop.is_set():
                    return
                try:
                    self.score_study(study)
                except Exception as error:  # a bug or a bad object must not stop the node
                    self._failed(study, error)
                else:
                    self.attempts.forget(study)
            self._stop.wait(poll)

    def _failed(self, study_key: str, error: Exception) -> None:
        """Schedule the study's next attempt, or quarantine it when attempts are spent."""
        attempts, delay = self.attempts.failed(study_key)
        if delay is not None:
            logger.warning(
                "study %s: attempt %d of %d failed (%s); trying again in %.3g s",
                study_key,
                attempts,
                self.attempts.max_attempts,
                type(error).__name__,
                delay,
            )
            return
        reason = f"{type(error).__name__}: {error}"
        try:
            count = self.quarantine(study_key, reason, attempts)
        except Exception:  # the disk itself fails: keep the study, try again much later
            logger.exception("study %s: cannot quarantine it; it stays in the spool", study_key)
            return
        self.attempts.forget(study_key)
        logger.error(
            "study %s quarantined after %d failed attempts: %s. Its %d instance(s) are in "
            "spool/failed/%s/, each with a STUDY_QUARANTINED line in results.jsonl; move "
            "that folder back to spool/incoming/ to try again",
            study_key,
            attempts,
            reason,
            count,
            study_key,
            exc_info=error,
        )

    def quarantine(self, study_key: str, reason: str, attempts: int) -> int:
        """Record and move the study's incoming instances to ``spool/failed/``; how many."""
        instances = self.spool.incoming_instances(study_key)
        context = self.explainer.predictor.record_context
        records = quarantine_records(
            self.spool, self.out_dir, instances, context, self.results, reason
        )
        self.results.append(records)  # before the move: a crash between retries the study
        study_uid = next((r.study_instance_uid for r in records if r.study_instance_uid), None)
        note = quarantine_note(study_uid, reason, attempts, len(records))
        self.spool.quarantine(study_key, instances, note)
        self.metrics.instance("quarantined", len(records))
        return len(records)

    def score_study(self, study_key: str) -> list[ServeRecord]:
        """Score the study's incoming instances; returns the records written."""
        started = time.monotonic()
        instances = self.spool.incoming_instances(study_key)
        if not instances:
            return []
        headers = [read_header(instance.path) for instance in instances]
        fresh: list[tuple[SpooledInstance, InstanceHeader]] = []
        recovered: list[tuple[SpooledInstance, InstanceHeader]] = []
        for instance, header in zip(instances, headers, strict=True):
            if header.own_output:
                logger.info("ignoring %s: an object mammo-edge wrote", instance.path.name)
                instance.path.unlink(missing_ok=True)
            elif self.results.is_recorded(header.sop_instance_uid):
                recovered.append((instance, header))
            else:
                fresh.append((instance, header))
        study_uid = next(
            (h.study_instance_uid for _, h in fresh + recovered if h.study_instance_uid), None
        )
        revision = self.results.revision(study_uid) + (1 if fresh else 0)

        explained = self._score(fresh + recovered, revision)
        new_records, updated = self._with_exam_fields(
            study_uid, [record for record, _ in explained[: len(fresh)]], revision
        )
        self.results.append([*updated, *new_records])
        failed = sum(not record.ok for record in new_records)
        self.metrics.instance("scored", len(new_records) - failed)
        self.metrics.instance("failed", failed)

        written = self._write_outputs(study_key, study_uid, revision, explained, fresh + recovered)
        self.outbox.enqueue(written)
        for instance, _ in fresh + recovered:
            if instance.path.exists():
                self.spool.mark_scored(instance)
        self.spool.finish_study(study_key)
        self.studies_scored += 1
        self._log(study_uid or study_key, revision, new_records, written, started)
        return new_records

    def _with_exam_fields(
        self, study_uid: str | None, records: list[ServeRecord], revision: int
    ) -> tuple[list[ServeRecord], list[ServeRecord]]:
        """The new records with ``predict``'s exam fields over the whole study so far, and
        the earlier images' records whose values this revision changed.

        :func:`mammo_edge.exams.exam_fields` (with the model's pair head and operating
        points, :attr:`~mammo_edge.predictor.Predictor.exam_scoring`) runs over the latest
        record of every image of the study, so the latest row of each instance in
        ``results.jsonl`` equals ``predict`` on the study's files.
        """
        earlier = self.results.latest_study_records(study_uid)
        predictions = [record.prediction for record in (*earlier, *records)]
        scoring = self.explainer.predictor.exam_scoring
        exams: dict[str, list[int]] = {}
        for index, prediction in enumerate(predictions):
            exams.setdefault(prediction.exam or f"alone {index}", []).append(index)
        grouped = list(predictions)
        for members in exams.values():
            for index, value in zip(
                members, exam_fields([predictions[i] for i in members], scoring), strict=True
            ):
                grouped[index] = value
        new = [
            replace(record, prediction=prediction)
            for record, prediction in zip(records, grouped[len(earlier) :], strict=True)
        ]
        updated = [
            replace(record, prediction=prediction, revision=revision)
            for record, prediction in zip(earlier, grouped, strict=False)
            if prediction != record.prediction
        ]
        return new, updated

    def _score(
        self, entries: list[tuple[SpooledInstance, InstanceHeader]], revision: int
    ) -> list[tuple[ServeRecord, object]]:
        """A record (and the explanation, for the overlay) per entry, in order."""
        context = self.explainer.predictor.record_context
        scorable = [index for index, (_, header) in enumerate(entries) if header.refusal is None]
        explanations = dict(
            zip(
                scorable,
                self.explainer.iter_explain([str(entries[index][0].path) for index in scorable]),
                strict=True,
            )
        )
        out = []
        for index, (instance, header) in enumerate(entries):
            label = self.spool.scored_path(instance).relative_to(self.out_dir).as_posix()
            explanation = explanations.get(index)
            if explanation is None:
                code, message = header.refusal
                item = LoadedImage(
                    path=label,
                    model_input=None,
                    image_format="dicom",
                    error_code=code.value,
                    error_message=message,
                )
                # Not decoded, so the reader did not fill it: the header says which breast.
                prediction = replace(
                    build_record(item, context), laterality=header.laterality, view=header.view
                )
            else:
                prediction = replace(explanation.record, path=label)
            peak = explanation.peak if explanation is not None and prediction.ok else None
            record = ServeRecord(
                prediction=prediction,
                sop_instance_uid=header.sop_instance_uid,
                study_instance_uid=header.study_instance_uid,
                series_instance_uid=header.series_instance_uid,
                patient_id=header.patient_id,
                sop_class_uid=header.sop_class_uid,
                revision=revision,
                peak_x=round(peak.x, 1) if peak else None,
                peak_y=round(peak.y, 1) if peak else None,
                peak_value=round(peak.value, 6) if peak else None,
            )
            out.append((record, explanation))
        return out

    def _write_outputs(
        self,
        study_key: str,
        study_uid: str | None,
        revision: int,
        explained: list[tuple[ServeRecord, object]],
        entries: list[tuple[SpooledInstance, InstanceHeader]],
    ) -> list[Path]:
        """Write the overlays of this round's scored images and the study's SR; their paths."""
        import pydicom

        from mammo_edge.serve.overlay import build_overlay, overlay_pixels
        from mammo_edge.serve.structured_report import NothingToReport, build_report

        if study_uid is None:
            return []
        folder = self.out_dir / study_key
        headers: dict[str, object] = {}
        for instance in self.spool.scored_instances(study_key):
            headers.setdefault(instance.sop_key, instance.path)
        for instance, _ in entries:
            headers[instance.sop_key] = instance.path
        evidence = []
        for path in headers.values():
            try:
                evidence.append(pydicom.dcmread(path, stop_before_pixels=True, force=True))
            except Exception:  # an unreadable instance has an error record, not a reference
                continue
        evidence_by_uid = {str(ds.get("SOPInstanceUID", "")): ds for ds in evidence}
        written: list[Path] = []
        study_records = self.results.latest_study_records(study_uid)
        order = {record.sop_instance_uid: number for number, record in enumerate(study_records, 1)}
        for record, explanation in explained:
            source = evidence_by_uid.get(record.sop_instance_uid or "")
            if not record.ok or explanation is None or source is None or explanation.grid is None:
                continue
            item = explanation.item
            rgb = overlay_pixels(item.pixels, explanation.grid, item.geometry, explanation.peak)
            overlay = build_overlay(
                source, rgb, item.geometry, order.get(record.sop_instance_uid, 1)
            )
            written.append(_save(overlay, folder / f"overlay-{_short(record)}.dcm"))
        try:
            report = build_report(
                study_records, evidence, revision, threshold=self.explainer.predictor.threshold
            )
        except NothingToReport:  # only error rows in the study: no SR
            return written
        written.append(_save(report, folder / f"sr-r{revision}.dcm"))
        return written

    def _log(self, study, revision, records, written, started) -> None:
        scored = [record for record in records if record.ok]
        top = max(scored, key=lambda record: record.prediction.probability, default=None)
        highest = (
            f"highest {top.prediction.probability:.3f} ({top.prediction.label})"
            if top
            else "none scored"
        )
        logger.info(
            "study %s revision %d: %d new instance(s), %d scored, %d error(s), %s; "
            "%d object(s) written; %.2f s",
            study,
            revision,
            len(records),
            len(scored),
            len(records) - len(scored),
            highest,
            len(written),
            time.monotonic() - started,
        )


def _short(record: ServeRecord) -> str:
    from mammo_edge.serve.spool import uid_file_name

    return uid_file_name(record.sop_instance_uid)


def _save(dataset, path: Path) -> Path:
    """Write a DICOM object atomically (a crash never leaves half a file to send)."""
    import os

    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".part")
    dataset.save_as(partial, enforce_file_format=True)
    os.replace(partial, path)
    return path
