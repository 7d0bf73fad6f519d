"""The site's labelled images for calibration: read, paired with the scored records, counted
and dealt to patient folds.

The labels come from the one reader of truth (:mod:`mammo_edge.evaluation.labels`): a dataset
manifest
(docs/datasets.md; read with :func:`~mammo_edge.evaluation.dataset_manifest.read_dataset`, so DICOM
tags fill empty patient cells and unusable rows are listed), a labels CSV or a MIAS
``Info.txt``. An image's patient is the labels' ``patient``, else its exam (DICOM Patient ID
and Study, or the mini-MIAS pair), else the image alone. A manifest's ``split`` column, when
every used image has one, fixes the folds; otherwise whole patients are dealt to
:data:`FOLDS` folds.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mammo_edge.errors import MammoEdgeError
from mammo_edge.model.heads import PAIR_FEATURE, logit

#: Fewer than these and calibrate refuses (the issue's floor; intervals are wide even so).
MIN_ABNORMAL_IMAGES = 10
MIN_NORMAL_IMAGES = 10
MIN_PATIENTS = 10
#: Patient folds of the cross-fitting, and the seed that deals patients to them.
FOLDS = 5
FOLD_SEED = 0
DEALT_FOLDS = "patients dealt in turn to folds (those with an abnormal image first), seed 0"
SPLIT_FOLDS = "the labels' split column"


class CalibrationError(MammoEdgeError):
    """Too little labelled data, or a model whose head calibrate cannot refit."""


@dataclass(frozen=True)
class SiteImages:
    """The site's labelled, scored images as arrays, one entry per image.

    Attributes:
        paths: the input paths.
        labels: ``(N,)`` 0/1.
        patients: ``(N,)`` patient identifiers (an unnamed patient is its image's path).
        network: ``(N,)`` the network's own probability.
        partner: ``(N,)`` the other breast's network probability, ``nan`` without one.
        folds: ``(N,)`` the patient fold of each image (:func:`patient_folds`).
        fold_rule: how the folds were made (:data:`DEALT_FOLDS` or :data:`SPLIT_FOLDS`).
    """

    paths: tuple[str, ...]
    labels: np.ndarray
    patients: np.ndarray
    network: np.ndarray
    partner: np.ndarray
    folds: np.ndarray
    fold_rule: str = DEALT_FOLDS

    @property
    def paired(self) -> np.ndarray:
        """``(N,)`` bool: the other breast was scored in the run."""
        return ~np.isnan(self.partner)

    def feature(self, name: str, index: np.ndarray) -> np.ndarray:
        """Head feature ``name`` of the images ``index``, as the runtime computes it
        (an image without a partner has difference 0, as when scored alone)."""
        own = np.array([logit(float(p)) for p in self.network[index]])
        if name == "cnn_logit":
            return own
        if name == PAIR_FEATURE:
            other = self.partner[index]
            partner = np.array([logit(float(p)) if p == p else 0.0 for p in other])
            return np.where(np.isnan(other), 0.0, own - partner)
        raise CalibrationError(
            f"the head reads {name!r}, which calibrate cannot compute from the records "
            "(only cnn_logit and cnn_logit_minus_other); calibrate a model without it"
        )


def site_images(
    pairs: Sequence[tuple[object, object, float | None]],
    splits: Mapping[str, str | None] | None = None,
) -> SiteImages:
    """:class:`SiteImages` from ``(ok record, label record, partner probability)`` triples.

    Args:
        pairs: each scored record (:class:`~mammo_edge.records.record.PredictionResult`), its label
            row (:class:`~mammo_edge.evaluation.labels.LabelRecord`) and the other breast's network
            probability (``None`` without one).
        splits: the manifest's ``split`` by label ``image`` cell; it fixes the folds when
            every image has one and there are at least two.
    """
    paths = tuple(record.path for record, _, _ in pairs)
    labels = np.array([int(truth.label) for _, truth, _ in pairs], dtype=np.int64)
    patients = np.array(
        [truth.patient or record.exam or record.path for record, truth, _ in pairs], dtype=object
    ).astype(str)
    network = np.array(
        [
            record.probability if record.network_probability is None else record.network_probability
            for record, _, _ in pairs
        ],
        dtype=np.float64,
    )
    partner = np.array([np.nan if p is None else p for _, _, p in pairs], dtype=np.float64)
    given = [(splits or {}).get(truth.image) for _, truth, _ in pairs]
    if all(given) and len(set(given)) >= 2:
        names = sorted(set(given))
        folds, rule = np.array([names.index(split) for split in given]), SPLIT_FOLDS
    else:
        folds, rule = patient_folds(patients, labels), DEALT_FOLDS
    return SiteImages(paths, labels, patients, network, partner, folds, rule)


def check_enough(site: SiteImages) -> None:
    """Refuse too little data, saying what was found.

    Raises:
        CalibrationError: fewer than 10 abnormal images, 10 normal images or 10 patients,
            fewer than 2 patients with an abnormal (or a normal) image to cross-fit, or a
            fold whose complement holds one class only.
    """
    short = _shortfalls(site.labels, site.patients)
    for fold in np.unique(site.folds):
        if len(set(site.labels[site.folds != fold].tolist())) < 2:
            short.append(f"fold {fold}'s other folds hold one class only (give more patients)")
    if short:
        raise CalibrationError(
            f"too little labelled data to calibrate: {len(site.labels)} labelled, scored "
            f"images of {len(set(site.patients.tolist()))} patients, with "
            f"{'; '.join(short)}. Nothing was written."
        )


def check_label_counts(records: Sequence) -> None:
    """Refuse before any scoring when the labels file itself holds too little (every row
    counted, an image without a patient as its own: the most scoring could leave).

    Raises:
        CalibrationError: as :func:`check_enough`, naming the labels file's counts.
    """
    labels = np.array([int(record.label) for record in records], dtype=np.int64)
    patients = np.array([record.patient or record.image for record in records]).astype(str)
    short = _shortfalls(labels, patients)
    if short:
        raise CalibrationError(
            f"too little labelled data to calibrate: the labels hold {len(labels)} images of "
            f"{len(set(patients.tolist()))} patients, with {'; '.join(short)}. Nothing was "
            "scored or written."
        )


def _shortfalls(labels: np.ndarray, patients: np.ndarray) -> list[str]:
    abnormal = int(labels.sum())
    normal = int(len(labels) - abnormal)
    count = len(set(patients.tolist()))
    short = []
    if abnormal < MIN_ABNORMAL_IMAGES:
        short.append(f"{abnormal} abnormal images (at least {MIN_ABNORMAL_IMAGES} needed)")
    if normal < MIN_NORMAL_IMAGES:
        short.append(f"{normal} normal images (at least {MIN_NORMAL_IMAGES} needed)")
    if count < MIN_PATIENTS:
        short.append(f"{count} patients (at least {MIN_PATIENTS} needed)")
    for label, word in ((1, "an abnormal"), (0, "a normal")):
        with_label = len(set(patients[labels == label].tolist()))
        if with_label < 2:
            short.append(f"{with_label} patient(s) with {word} image (at least 2 to cross-fit)")
    return short


def patient_folds(
    patients: np.ndarray, labels: np.ndarray, folds: int = FOLDS, seed: int = FOLD_SEED
) -> np.ndarray:
    """``(N,)`` fold numbers: whole patients dealt in turn, those with an abnormal image
    first, each group shuffled by ``seed``, so every fold's complement holds both classes
    whenever two patients of each do. At most one fold per patient."""
    patients = np.asarray(patients).astype(str)
    unique = sorted(set(patients.tolist()))
    has_abnormal = {p: bool(labels[patients == p].max()) for p in unique}
    rng = np.random.default_rng(seed)
    order: list[str] = []
    for group in (True, False):
        members = [p for p in unique if has_abnormal[p] == group]
        order += [members[i] for i in rng.permutation(len(members))]
    count = max(2, min(folds, len(unique)))
    fold_of = {patient: position % count for position, patient in enumerate(order)}
    return np.array([fold_of[p] for p in patients], dtype=np.int64)


@dataclass(frozen=True)
class SiteLabels:
    """The truth calibrate reads.

    Attributes:
        labels: the records for :func:`~mammo_edge.evaluation.labels.match_labels`.
        splits: a manifest's ``split`` by ``image`` cell (empty for other files).
        rejected: a manifest's unusable rows, worded for a person (never used silently).
        sha256: the SHA-256 of the file's bytes.
    """

    labels: object
    splits: dict[str, str | None]
    rejected: tuple[str, ...]
    sha256: str


def read_site_labels(path: Path) -> SiteLabels:
    """A dataset manifest (its header names ``image``, ``label`` and ``patient``) through
    :func:`~mammo_edge.evaluation.dataset_manifest.read_dataset`, anything else through
    :func:`~mammo_edge.evaluation.labels.read_labels`.

    Raises:
        LabelsError: the file cannot be read (the message names file and line).
    """
    from mammo_edge.evaluation.dataset_manifest import read_dataset
    from mammo_edge.evaluation.labels import Labels, LabelsError, labels_of, read_labels
    from mammo_edge.evaluation.manifest_rows import (
        MANIFEST_REQUIRED,
        first_content_line,
        header_columns,
        read_text,
    )

    try:
        sha256 = hashlib.sha256(Path(path).read_bytes()).hexdigest()
    except OSError as error:
        raise LabelsError(f"{path}: cannot read: {error.strerror}") from None
    header = first_content_line(read_text(Path(path)))
    columns = header_columns(header[1])[1] if header else []
    if not all(name in columns for name in MANIFEST_REQUIRED):
        return SiteLabels(read_labels(path), {}, (), sha256)
    dataset = read_dataset(path)
    records = labels_of(dataset)
    rejected = tuple(f"line {row.line} ({row.image}): {row.reason}" for row in dataset.rejected)
    splits = {image.image: image.split for image in dataset.images}
    return SiteLabels(Labels(records, Path(path), "csv"), splits, rejected, sha256)
