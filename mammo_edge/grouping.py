"""Both breasts of one exam: which images belong together, and per-breast/per-exam values.

A reader judges an exam, not a lone image: a finding in one breast is weighed against the
other. The runtime groups the records of one run by exam and breast:

- **DICOM**: exam = (0010,0020) Patient ID + (0020,000D) Study Instance UID; breast =
  (0020,0062) Image Laterality (else (0020,0060) Laterality);
- **mini-MIAS names** (``mdb001.pgm``...): images ``2k-1`` and ``2k`` are patient ``k``'s
  left (odd) and right (even) breasts (the database's own rule);
- anything else stands alone: its record says ``view_group = "single_view"``.

Every image keeps its own record. When a group exists the record also carries
``breast_probability`` (the highest probability among the views of that breast),
``exam_probability`` (the highest among the exam's breasts), ``partner`` (the paths of the
exam's other images, ``;``-separated) and ``view_group = "exam"``.

Records stream: a record waits until its exam is complete (MIAS: both breasts seen) or
until :data:`GROUP_WINDOW` further inputs passed without another image of its exam (DICOM
studies have no fixed size), then it is released in input order.
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from pathlib import PurePath

from .stacking import logit

#: Inputs a record may wait for the rest of its exam (sorted folders keep exams together).
GROUP_WINDOW = 64
GROUP_BY_CHOICES = ("auto", "none")
EXAM = "exam"
SINGLE_VIEW = "single_view"

#: MIAS exams are complete with both breasts; DICOM studies have no fixed size.
MIAS_EXAM_PREFIX = "mias patient "
_MIAS_NAME = re.compile(r"^mdb(\d{3})$", re.IGNORECASE)


@dataclass(frozen=True)
class View:
    """Which exam and breast (``L``/``R``, ``None`` when unknown) an image belongs to."""

    exam: str
    laterality: str | None


def mias_view(path: str) -> View | None:
    """The exam of a mini-MIAS file name (``mdb003.pgm`` -> patient 2, left), else ``None``."""
    match = _MIAS_NAME.match(PurePath(str(path)).stem)
    if not match:
        return None
    number = int(match.group(1))
    if number == 0:
        return None
    patient = (number + 1) // 2
    return View(f"{MIAS_EXAM_PREFIX}{patient}", "L" if number % 2 else "R")


def dicom_view(
    patient_id: str | None, study_uid: str | None, laterality: str | None
) -> View | None:
    """The exam of a DICOM image from its tags; ``None`` without a patient or study."""
    if not patient_id or not study_uid:
        return None
    side = laterality if laterality in ("L", "R") else None
    return View(f"{patient_id}/{study_uid}", side)


def group_records(
    records: Iterable,
    window: int = GROUP_WINDOW,
    pair_head=None,
    class_names: tuple[str, str] = ("normal", "abnormal"),
) -> Iterator:
    """Add the exam fields to records (see module notes), keeping their order.

    Args:
        records: :class:`~mammo_edge.predictor.PredictionResult` items whose ``exam`` and
            ``laterality`` were filled from the input (``None`` when unknown).
        window: how many later records an exam may wait for its next image.
        pair_head: a stacking head reading ``cnn_logit_minus_other``
            (:mod:`mammo_edge.stacking`): an image whose other breast was scored in the
            run gets the head's probability with the difference of its network logit to
            the other breast's (the highest over that breast's views), and its label at
            its threshold anew; alone, the difference is 0 (how the scoring set it).
        class_names: ``(negative, positive)`` labels, for relabelling.

    Yields:
        The same records, in the same order, with ``view_group``, ``partner``,
        ``breast_probability`` and ``exam_probability`` set (error records unchanged).
    """
    waiting: deque = deque()
    exams: dict[str, list] = {}
    last_seen: dict[str, int] = {}

    def release(record):
        return _with_exam_fields(record, exams, pair_head, class_names)

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


def _with_exam_fields(record, exams: dict, pair_head, class_names):
    if not record.ok:
        return record
    group = exams.get(record.exam, []) if record.exam else []
    others = [member for member in group if member is not record]
    if not others:
        return replace(record, view_group=SINGLE_VIEW)
    probability = {id(member): _paired(member, group, pair_head) for member in group}
    own = probability[id(record)]
    same_breast = [probability[id(m)] for m in group if m.laterality == record.laterality]
    negative, positive = class_names
    return replace(
        record,
        probability=own,
        label=positive if own >= record.threshold else negative,
        view_group=EXAM,
        partner=";".join(member.path for member in others),
        breast_probability=max(same_breast),
        exam_probability=max(probability.values()),
    )


def _paired(member, group: list, pair_head) -> float:
    """``member``'s probability given the other breast's images (unchanged without a head)."""
    if pair_head is None or member.network_probability is None or member.laterality is None:
        return member.probability
    other = [
        m.network_probability
        for m in group
        if m.laterality not in (None, member.laterality) and m.network_probability is not None
    ]
    if not other:
        return member.probability
    own = logit(member.network_probability)
    return pair_head.probability(
        {"cnn_logit": own, "cnn_logit_minus_other": own - logit(max(other))}
    )
