"""The two evaluation protocols: the seed study's leaky split and the honest patient split.

Seed protocol (as published): one sample per Info.txt row, the first 84 NORM rows dropped,
every sample rotated N times, and only then a random 80/20 split - so rotated copies of one
mammogram land on both sides. Patient protocol: stratified K-fold grouped by patient.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sklearn.model_selection import StratifiedGroupKFold, train_test_split

from .mias import AbnormalityRow, ImageRecord

SEED_RANDOM_STATE = 42
SEED_DROPPED_NORMAL_ROWS = 84
SEED_TEST_FRACTION = 0.2
SEED_VALIDATION_SPLIT = 0.2
SEED_FULL_ROTATIONS = 180


@dataclass(frozen=True)
class SeedSample:
    """One augmented sample of the seed protocol: an Info.txt row at one rotation angle."""

    reference: str
    patient_id: int
    label: int
    angle: float
    line_number: int


def seed_rows(rows: list[AbnormalityRow]) -> tuple[list[AbnormalityRow], list[AbnormalityRow]]:
    """Split Info.txt rows as the seed did: (kept rows, the first 84 NORM rows it dropped)."""
    kept, dropped = [], []
    for row in rows:
        if row.abnormality_class == "NORM" and len(dropped) < SEED_DROPPED_NORMAL_ROWS:
            dropped.append(row)
        else:
            kept.append(row)
    return kept, dropped


def seed_angles(rotations: int) -> np.ndarray:
    """``rotations`` evenly spaced angles in [0, 360); 180 gives the seed's 0, 2, ..., 358."""
    if not 1 <= rotations <= 360:
        raise ValueError(f"rotations must be between 1 and 360, got {rotations}")
    return np.arange(rotations) * (360.0 / rotations)


def seed_samples(kept_rows: list[AbnormalityRow], rotations: int) -> list[SeedSample]:
    """Every kept row at every angle, in the seed's order (row-major, then angle)."""
    from .mias import patient_of

    return [
        SeedSample(
            reference=row.reference,
            patient_id=patient_of(row.reference),
            label=0 if row.abnormality_class == "NORM" else 1,
            angle=float(angle),
            line_number=row.line_number,
        )
        for row in kept_rows
        for angle in seed_angles(rotations)
    ]


def seed_split(samples: list[SeedSample]) -> tuple[np.ndarray, np.ndarray]:
    """The seed's random 80/20 split of augmented samples (``random_state=42``).

    Returns:
        (train indices, test indices) into ``samples``.
    """
    indices = np.arange(len(samples))
    train_indices, test_indices = train_test_split(
        indices, test_size=SEED_TEST_FRACTION, random_state=SEED_RANDOM_STATE
    )
    return np.asarray(train_indices), np.asarray(test_indices)


@dataclass(frozen=True)
class LeakReport:
    """How much of a test set has a relative in training."""

    test_samples: int
    test_with_same_image_in_train: int
    test_with_same_patient_in_train: int
    test_images_absent_from_train: int

    def as_dict(self) -> dict:
        return {
            "test_samples": self.test_samples,
            "test_with_same_image_in_train": self.test_with_same_image_in_train,
            "fraction_with_same_image_in_train": (
                self.test_with_same_image_in_train / self.test_samples if self.test_samples else 0.0
            ),
            "test_with_same_patient_in_train": self.test_with_same_patient_in_train,
            "test_images_absent_from_train": self.test_images_absent_from_train,
        }


def count_leak(
    train_references: list[str], test_references: list[str], patient_of=None
) -> tuple[LeakReport, np.ndarray]:
    """Count test samples whose source image (or patient) also feeds training.

    Args:
        train_references: source image reference of each training sample.
        test_references: source image reference of each test sample.
        patient_of: maps a reference to its patient; defaults to the MIAS pairing.

    Returns:
        The report and a boolean mask over test samples: True where the source image is
        absent from training (the only test samples that measure generalisation).
    """
    if patient_of is None:
        from .mias import patient_of
    train_images = set(train_references)
    train_patients = {patient_of(reference) for reference in train_references}
    unseen = np.array([reference not in train_images for reference in test_references], bool)
    same_patient = sum(patient_of(reference) in train_patients for reference in test_references)
    report = LeakReport(
        test_samples=len(test_references),
        test_with_same_image_in_train=int((~unseen).sum()),
        test_with_same_patient_in_train=int(same_patient),
        test_images_absent_from_train=int(unseen.sum()),
    )
    return report, unseen


def patient_folds(
    records: list[ImageRecord], folds: int, seed: int
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Stratified K-fold grouped by patient: a patient's two images never straddle folds.

    Returns:
        ``folds`` pairs of (train indices, test indices) into ``records``.
    """
    labels = np.array([record.label for record in records])
    groups = np.array([record.patient_id for record in records])
    if folds < 2:
        raise ValueError(f"folds must be at least 2, got {folds}")
    if len(set(groups)) < folds:
        raise ValueError(f"{len(set(groups))} patients cannot fill {folds} folds")
    splitter = StratifiedGroupKFold(n_splits=folds, shuffle=True, random_state=seed)
    return [
        (np.asarray(train), np.asarray(test))
        for train, test in splitter.split(np.zeros(len(records)), labels, groups)
    ]


def dataset_folds(records, folds: int, seed: int, log=None) -> list[tuple[np.ndarray, np.ndarray]]:
    """The cross-validation folds of a training set.

    A manifest's ``split`` column, when given, fixes them: one fold per distinct value, in
    sorted order, testing the images of that value (the manifest reader has checked that no
    patient straddles two values). Otherwise :func:`patient_folds` with ``folds`` and
    ``seed`` (MIAS and manifests without splits).

    Raises:
        ValueError: fewer than two distinct splits, or too few patients for ``folds``.
    """
    splits = np.array([str(getattr(record, "split", None) or "") for record in records])
    if not splits.any():
        return patient_folds(records, folds, seed)
    names = sorted(set(splits.tolist()))
    if len(names) < 2:
        raise ValueError(f"the split column holds one value ({names[0]!r}); give two or more")
    if log is not None:
        shown = ", ".join(
            f"{number} = {name!r} ({(splits == name).sum()} images)"
            for number, name in enumerate(names, start=1)
        )
        log(f"folds from the manifest's split column (--folds ignored): {shown}")
    return [(np.flatnonzero(splits != name), np.flatnonzero(splits == name)) for name in names]


def validation_patients(
    records: list[ImageRecord], train_indices: np.ndarray, fraction: float, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Hold out ``fraction`` of the training patients for early stopping.

    Patients are stratified by whether any of their images is abnormal.

    Returns:
        (fit indices, validation indices), both subsets of ``train_indices``.
    """
    patients = sorted({records[index].patient_id for index in train_indices})
    patient_label = {
        patient: max(records[i].label for i in train_indices if records[i].patient_id == patient)
        for patient in patients
    }
    stratify = [patient_label[patient] for patient in patients]
    if min(np.bincount(stratify, minlength=2)) < 2:
        stratify = None
    _, validation = train_test_split(
        patients, test_size=fraction, random_state=seed, stratify=stratify
    )
    validation = set(validation)
    in_validation = np.array([records[i].patient_id in validation for i in train_indices])
    return train_indices[~in_validation], train_indices[in_validation]


def class_weights(labels: np.ndarray) -> dict[int, float]:
    """Balanced class weights ``n / (2 * n_class)`` so no normal image need be thrown away."""
    counts = np.bincount(labels.astype(int), minlength=2)
    if (counts == 0).any():
        return {0: 1.0, 1: 1.0}
    return {label: float(len(labels) / (2 * count)) for label, count in enumerate(counts)}
