"""Both breasts of one exam: which images belong together, and the exam fields of a record.

A reader judges an exam, not a lone image: a finding in one breast is weighed against the
other. The runtime groups the records of one run by exam and breast:

- **DICOM**: exam = (0010,0020) Patient ID + (0020,000D) Study Instance UID (a prior study
  of the same patient is another exam); breast = (0020,0062) Image Laterality (else
  (0020,0060) Laterality); view = (0018,5101) View Position, else (0054,0220) View Code
  Sequence (``CC``, ``MLO``...);
- **mini-MIAS names** (``mdb001.pgm``...): images ``2k-1`` and ``2k`` are patient ``k``'s
  left (odd) and right (even) breasts (the database's own rule), both MLO;
- anything else stands alone.

Which image of the other breast an image is weighed against (docs/runtime.md has the
table): the same view of the other breast when the exam has it (L-CC with R-CC, L-MLO with
R-MLO; the highest when it holds several), else the other breast's highest view. An image
of unknown laterality, or whose exam holds no image of the other breast, is scored alone.

:func:`exam_fields` is the one function that computes the exam fields, for every caller
(predict, evaluate, explain, report, the Ray engine, the HTTP service and the DICOM node),
with the model's :class:`ExamScoring`:

- ``view_group``: ``exam`` when the image was weighed against the other breast (the
  model's pair head and paired operating point), ``single_view`` when it was scored alone
  (the single-view head and point);
- ``probability``, ``label``, ``threshold`` and ``operating_point`` accordingly;
- ``partner`` (the paths of the exam's other images, ``;``-separated),
  ``breast_probability`` (the highest probability among that breast's views) and
  ``exam_probability`` (the highest among the exam's breasts) when the exam holds other
  images.

The function is idempotent: it recomputes every value from the records' network
probabilities, so the DICOM node can run it again over a study's earlier and new images.
Records stream through :func:`group_records`: a record waits until its exam is complete
(MIAS: both breasts seen) or until :data:`GROUP_WINDOW` further inputs passed without
another image of its exam (DICOM studies have no fixed size), then it is released in
input order.
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import PurePath

from mammo_edge.model.heads import PAIR_FEATURE, Head, logit

#: Inputs a record may wait for the rest of its exam (sorted folders keep exams together).
GROUP_WINDOW = 64
GROUP_BY_CHOICES = ("auto", "none")
EXAM = "exam"
SINGLE_VIEW = "single_view"

#: MIAS exams are complete with both breasts; DICOM studies have no fixed size.
MIAS_EXAM_PREFIX = "mias patient "
#: Every mini-MIAS image is a medio-lateral oblique view.
MIAS_VIEW = "MLO"
_MIAS_NAME = re.compile(r"^mdb(\d{3})$", re.IGNORECASE)


@dataclass(frozen=True)
class View:
    """Which exam, breast (``L``/``R``) and view (``CC``, ``MLO``...) an image belongs to
    (``None`` when unknown)."""

    exam: str
    laterality: str | None
    view: str | None = None


def mias_view(path: str) -> View | None:
    """The exam of a mini-MIAS file name (``mdb003.pgm`` -> patient 2, left), else ``None``."""
    match = _MIAS_NAME.match(PurePath(str(path)).stem)
    if not match:
        return None
    number = int(match.group(1))
    if number == 0:
        return None
    patient = (number + 1) // 2
    return View(f"{MIAS_EXAM_PREFIX}{patient}", "L" if number % 2 else "R", MIAS_VIEW)


def dicom_view(
    patient_id: str | None,
    study_uid: str | None,
    laterality: str | None,
    view: str | None = None,
) -> View | None:
    """The exam of a DICOM image from its tags; ``None`` without a patient or study."""
    if not patient_id or not study_uid:
        return None
    side = laterality if laterality in ("L", "R") else None
    return View(f"{patient_id}/{study_uid}", side, view or None)


@dataclass(frozen=True)
class ExamScoring:
    """How a model scores an image with, or without, the other breast.

    Built by :attr:`mammo_edge.predictor.Predictor.exam_scoring` from the model's heads and
    the run's operating point; callers pass it on and never build their own.

    Attributes:
        pair_head: the head reading ``cnn_logit_minus_other``; ``None`` when the model has
            none (its probabilities are then never changed here).
        single_head: the head scoring an image alone from its network logit (for a model
            with a pair head but no single-view head: the pair head with a zero difference).
        paired_threshold, paired_point: the threshold and operating-point name of an image
            weighed against the other breast.
        single_threshold, single_point: those of an image scored alone.
        class_names: ``(negative, positive)`` labels.
    """

    pair_head: Head | None = None
    single_head: Head | None = None
    paired_threshold: float = 0.5
    paired_point: str | None = None
    single_threshold: float = 0.5
    single_point: str | None = None
    class_names: tuple[str, str] = ("normal", "abnormal")

    def alone(self, record) -> tuple[float, float, str | None]:
        """``(probability, threshold, point)`` of a record scored alone."""
        probability = record.probability
        if self.pair_head is not None and record.network_probability is not None:
            head = self.single_head or self.pair_head
            own = logit(record.network_probability)
            probability = head.probability({"cnn_logit": own, PAIR_FEATURE: 0.0})
        return probability, self.single_threshold, self.single_point

    def paired(self, record, other_network_probability: float):
        """``(probability, threshold, point)`` of a record weighed against the other breast."""
        probability = record.probability
        if self.pair_head is not None and record.network_probability is not None:
            own = logit(record.network_probability)
            probability = self.pair_head.probability(
                {"cnn_logit": own, PAIR_FEATURE: own - logit(other_network_probability)}
            )
        return probability, self.paired_threshold, self.paired_point


def counterparts(member, group: Sequence) -> list:
    """The images of the other breast that ``member`` is weighed against (docs/runtime.md).

    The same view of the other breast when the exam has it, else every view of the other
    breast (the caller takes the highest); empty when ``member``'s laterality is unknown
    or the exam holds no scored image of the other breast.
    """
    if member.laterality not in ("L", "R"):
        return []
    other = [
        m
        for m in group
        if m.ok and m.laterality in ("L", "R") and m.laterality != member.laterality
    ]
    matched = [m for m in other if member.view and m.view == member.view]
    return matched or other


def _weight(record) -> float:
    """What a counterpart contributes: its network probability (the pair head's input)."""
    return (
        record.network_probability if record.network_probability is not None else record.probability
    )


def exam_fields(group: Sequence, scoring: ExamScoring) -> list:
    """The records of one exam (or one record without an exam) with their exam fields.

    Args:
        group: the ok and error records of one exam, any order; ``exam`` may be ``None``
            for a lone image (then pass it alone).
        scoring: the model's :class:`ExamScoring`.

    Returns:
        The records in the same order: error records unchanged; every ok record with
        ``probability``, ``label``, ``threshold``, ``operating_point`` and ``view_group``
        set, and ``partner``/``breast_probability``/``exam_probability`` when the exam holds
        other scored images (module notes).
    """
    scored = [member for member in group if member.ok]
    values = {}
    for member in scored:
        partners = counterparts(member, scored)
        if partners:
            values[id(member)] = (*scoring.paired(member, max(map(_weight, partners))), EXAM)
        else:
            values[id(member)] = (*scoring.alone(member), SINGLE_VIEW)
    negative, positive = scoring.class_names
    result = []
    for record in group:
        if not record.ok:
            result.append(record)
            continue
        probability, threshold, point, view_group = values[id(record)]
        others = [member for member in scored if member is not record]
        same_breast = [values[id(m)][0] for m in scored if m.laterality == record.laterality]
        result.append(
            replace(
                record,
                probability=probability,
                label=positive if probability >= threshold else negative,
                threshold=threshold,
                operating_point=point,
                view_group=view_group,
                partner=";".join(member.path for member in others) if others else None,
                breast_probability=max(same_breast) if others else None,
                exam_probability=max(v[0] for v in values.values()) if others else None,
            )
        )
    return result


def partner_network_probabilities(records: Sequence) -> list[float | None]:
    """Per record, the network probability of the other breast it is weighed against
    (:func:`counterparts`, the highest), or ``None`` when it is scored alone; records
    without an exam stand alone. For fitting a pair head on a site's records."""
    exams: dict[str, list] = {}
    for record in records:
        if record.ok and record.exam:
            exams.setdefault(record.exam, []).append(record)
    result: list[float | None] = []
    for record in records:
        partners = (
            counterparts(record, exams.get(record.exam, [])) if record.ok and record.exam else []
        )
        result.append(max(map(_weight, partners)) if partners else None)
    return result


def group_records(
    records: Iterable,
    scoring: ExamScoring | None = None,
    window: int = GROUP_WINDOW,
) -> Iterator:
    """Add the exam fields to records (:func:`exam_fields`), keeping their order.

    Args:
        records: :class:`~mammo_edge.records.record.PredictionResult` items whose ``exam``,
            ``laterality`` and ``view`` were filled from the input (``None`` when unknown).
        scoring: the model's :class:`ExamScoring` (default: no head, threshold 0.5).
        window: how many later records an exam may wait for its next image.

    Yields:
        The same records, in the same order, with the exam fields set.
    """
    scoring = scoring or ExamScoring()
    waiting: deque = deque()
    exams: dict[str, list] = {}
    last_seen: dict[str, int] = {}

    def release(record):
        group = exams.get(record.exam, [record]) if record.ok and record.exam else [record]
        return exam_fields(group, scoring)[next(i for i, m in enumerate(group) if m is record)]

    for position, record in enumerate(records):
        if record.ok and record.exam:
            exams.setdefault(record.exam, []).append(record)
            last_seen[record.exam] = position
        waiting.append(record)
        while waiting and _ready(waiting[0], exams, position - window, last_seen):
            yield release(waiting.popleft())
    while waiting:
        yield release(waiting.popleft())


def _ready(record, exams: dict, horizon: int, last_seen: dict) -> bool:
    """May ``record`` leave: no exam, its exam complete, or none of it seen for a window."""
    if not (record.ok and record.exam):
        return True
    if record.exam.startswith(MIAS_EXAM_PREFIX):
        if len({member.laterality for member in exams[record.exam]}) >= 2:
            return True
    return last_seen[record.exam] <= horizon
