"""The images training reads: a dataset manifest, or MIAS through the same manifest reader.

``python -m train --data`` takes a manifest CSV (``docs/datasets.md``) or the MIAS folder or
``all-mias.tar.gz``. Both become a :class:`TrainingSet` through
:func:`mammo_edge.evaluation.dataset_manifest.dataset_from_table`, the reader ``mammo-edge
evaluate``
and ``calibrate`` use: MIAS is turned into the very manifest rows ``python -m train
manifest --mias`` writes (:func:`train.mias_manifest.mias_manifest_text`), read in place from the
archive. So a MIAS run from the archive and one from its converted manifest see the same
images, labels, patients, lesion circles, splits and model inputs (tested).

Pixels come from the runtime's decoder (``mammo_edge.images.decode``) and the preprocessing
contract (``mammo_edge.images.preprocess.prepare``, with the chest-wall side a DICOM's Patient
Orientation gives). Lesions are circles in image pixels, origin top-left; a mask becomes one
circle per connected region (its centroid and the radius of a disc of its area).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import numpy as np

from mammo_edge.errors import InputError
from mammo_edge.evaluation.dataset_manifest import (
    Dataset,
    DatasetImage,
    ImageFacts,
    dataset_from_table,
    read_dataset,
)
from mammo_edge.evaluation.manifest_rows import MANIFEST_REQUIRED, LabelsError, parse_table
from mammo_edge.images.decode import DecodedImage, decode_image_bytes, load_image
from mammo_edge.images.preprocess import PreparedImage, PreprocessConfig, prepare

from .mias import MiasDataset, MiasError, open_mias

#: A training set needs at least this many patients of each class (normal, abnormal).
MINIMUM_PATIENTS_PER_CLASS = 10


class DatasetError(MiasError):
    """The training data cannot be used; the message says what was found and what to do."""


@dataclass(frozen=True)
class LesionCircle:
    """One lesion in original-image pixels (origin top-left)."""

    x: float
    y: float
    radius: float
    finding: str | None


@dataclass(frozen=True)
class TrainingImage:
    """One image as the protocols read it.

    Attributes:
        reference: the image's name in predictions.csv: the manifest's ``image`` cell
            without its suffix (``mdb001`` for MIAS).
        patient_id: the patient (an int when every patient of the set is an integer, as
            MIAS's pair numbers are, so the folds sort patients as the archive path did).
        label: 0 normal, 1 abnormal.
        tissue: the manifest's ``group`` (MIAS: the background tissue).
        image: the manifest's entry (path, study, laterality, view, split, lesions...).
    """

    reference: str
    patient_id: int | str
    label: int
    tissue: str | None
    image: DatasetImage

    @property
    def split(self) -> str | None:
        return self.image.split

    @property
    def findings(self) -> set[str]:
        """The abnormality names of an abnormal image (``+``-separated in ``finding``)."""
        if self.label == 0 or not self.image.finding:
            return set()
        return set(self.image.finding.split("+"))


class TrainingSet:
    """The usable images of a manifest, in file order, with a pixel reader.

    Attributes:
        source: the manifest (or the MIAS folder/archive).
        dataset: what the manifest reader returned (images and rejected rows).
        records: one :class:`TrainingImage` per usable image.
    """

    def __init__(
        self,
        source: Path,
        dataset: Dataset,
        read_bytes: Callable[[DatasetImage], bytes] | None = None,
        fingerprint: Callable[[], str] | None = None,
    ) -> None:
        self.source = source
        self.dataset = dataset
        self._read_bytes = read_bytes
        self._fingerprint = fingerprint
        references = [_reference(image.image) for image in dataset.images]
        if len(set(references)) != len(references):
            references = [image.image for image in dataset.images]
        patients = [image.patient for image in dataset.images]
        numeric = all(patient.isdigit() and str(int(patient)) == patient for patient in patients)
        self.records = [
            TrainingImage(
                reference=reference,
                patient_id=int(image.patient) if numeric else image.patient,
                label=image.label,
                tissue=image.group,
                image=image,
            )
            for reference, image in zip(references, dataset.images, strict=True)
        ]
        self._by_reference = {record.reference: record for record in self.records}

    def __len__(self) -> int:
        return len(self.records)

    def record(self, reference: str) -> TrainingImage:
        return self._by_reference[reference]

    def read_decoded(self, reference: str) -> DecodedImage:
        """The image decoded to 8 bits by the runtime's reader.

        Raises:
            DatasetError: the file is missing, truncated or cannot be decoded.
        """
        image = self.record(reference).image
        try:
            if self._read_bytes is None:
                return load_image(image.path)
            return decode_image_bytes(self._read_bytes(image), suffix=image.path.suffix.lower())
        except InputError as error:
            kind = error.code.value.lower().replace("_", " ")
            raise DatasetError(f"{image.path}: {kind}: {error.message}") from None

    def read_image(self, reference: str) -> np.ndarray:
        """The ``(H, W)`` uint8 image."""
        return self.read_decoded(reference).pixels

    def prepare(self, reference: str, config: PreprocessConfig) -> PreparedImage:
        """Model input and geometry of one image under ``config``."""
        decoded = self.read_decoded(reference)
        return prepare(decoded.pixels, config, chest_wall=decoded.chest_wall)

    def lesion_circles(
        self, record: TrainingImage, image_shape: tuple[int, int]
    ) -> list[LesionCircle]:
        """The image's lesions as circles in original pixels (masks turned into circles).

        Args:
            image_shape: the image's ``(height, width)``, to which a mask is scaled.
        """
        circles = []
        for lesion in record.image.lesions:
            if lesion.mask is None:
                circles.append(LesionCircle(lesion.x, lesion.y, lesion.radius, lesion.finding))
                continue
            shape = image_shape
            circles.extend(
                LesionCircle(x, y, radius, lesion.finding)
                for x, y, radius in mask_circles(_read_mask(lesion.mask), shape)
            )
        return circles

    def verify_images(self) -> None:
        """Decode every image once, so bad data fails before any training starts.

        Raises:
            DatasetError: listing every image that cannot be decoded.
        """
        problems = []
        for record in self.records:
            try:
                self.read_decoded(record.reference)
            except DatasetError as error:
                problems.append(str(error))
        if problems:
            shown = "\n  ".join(problems[:10])
            more = f"\n  ... and {len(problems) - 10} more" if len(problems) > 10 else ""
            raise DatasetError(f"{len(problems)} unusable image(s):\n  {shown}{more}")

    def check_enough(self, minimum: int = MINIMUM_PATIENTS_PER_CLASS) -> None:
        """Refuse a set with fewer than ``minimum`` patients of either class.

        Raises:
            DatasetError: naming the counts found.
        """
        counts = self.dataset.counts()
        if min(counts.normal_patients, counts.abnormal_patients) < minimum:
            raise DatasetError(
                f"{self.source}: too little data to train and judge a model: "
                f"{counts.describe()}; at least {minimum} patients with an abnormal image "
                f"and {minimum} with a normal image are needed"
            )

    def sha256(self) -> str:
        """SHA-256 of the data: the MIAS archive's, or the manifest and every image file."""
        if self._fingerprint is not None:
            return self._fingerprint()
        digest = hashlib.sha256(self.source.read_bytes())
        for record in self.records:
            with record.image.path.open("rb") as handle:
                for block in iter(lambda: handle.read(1 << 20), b""):
                    digest.update(block)
        return digest.hexdigest()


def _reference(image: str) -> str:
    path = PurePosixPath(image.replace("\\", "/"))
    return str(path.with_suffix("")) if path.suffix else str(path)


def _read_mask(path: Path) -> np.ndarray:
    try:
        return load_image(path).pixels
    except InputError as error:
        raise DatasetError(f"{path}: lesion mask unreadable: {error.message}") from None


def mask_circles(
    mask: np.ndarray, image_shape: tuple[int, int]
) -> list[tuple[float, float, float]]:
    """One (x, y, radius) per connected region of a binary mask, in image pixels.

    A mask of another size than its image (CBIS-DDSM has a few) is scaled to the image.
    Pixels at or above half the mask's maximum are lesion.
    """
    import cv2

    if mask.max() == 0:
        return []
    binary = (mask >= max(1, int(mask.max()) // 2)).astype(np.uint8)
    count, _, stats, centroids = cv2.connectedComponentsWithStats(binary, connectivity=8)
    scale_y = image_shape[0] / mask.shape[0]
    scale_x = image_shape[1] / mask.shape[1]
    circles = []
    for index in range(1, count):
        area = float(stats[index, cv2.CC_STAT_AREA]) * scale_x * scale_y
        x, y = centroids[index]
        circles.append((float(x) * scale_x, float(y) * scale_y, float(np.sqrt(area / np.pi))))
    return circles


def open_training_set(path: str | Path) -> TrainingSet:
    """The training set at ``path``: a manifest ``.csv``, else MIAS (folder or archive).

    Raises:
        DatasetError / MiasError: unreadable data, naming the file (and line).
    """
    source = Path(path)
    if source.suffix.lower() == ".csv":
        try:
            dataset = read_dataset(source)
        except LabelsError as error:
            raise DatasetError(str(error)) from None
        return TrainingSet(source, dataset)
    return mias_training_set(open_mias(source))


def mias_training_set(mias: MiasDataset) -> TrainingSet:
    """MIAS as a :class:`TrainingSet`: its manifest rows read by the manifest reader."""
    from .mias_manifest import mias_manifest_text

    source = mias.source / "manifest.csv"
    table = parse_table(mias_manifest_text(mias), source, MANIFEST_REQUIRED)
    dataset = dataset_from_table(table, source, mias.source, inspect=lambda _: ImageFacts("pnm"))
    if dataset.rejected:
        raise DatasetError(f"{mias.source}: MIAS rows rejected:\n{dataset.rejected_report()}")
    return TrainingSet(
        mias.source,
        dataset,
        read_bytes=lambda image: mias.read_bytes(PurePosixPath(image.image).stem),
        fingerprint=mias.sha256,
    )


def as_training_set(dataset: TrainingSet | MiasDataset) -> TrainingSet:
    """``dataset`` itself, or MIAS turned into a training set through the manifest reader."""
    return mias_training_set(dataset) if isinstance(dataset, MiasDataset) else dataset
