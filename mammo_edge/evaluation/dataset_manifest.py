"""The dataset manifest: your own labelled mammograms as one CSV, read into a :class:`Dataset`.

One row per image, or one row per lesion (several rows per image), columns as
:mod:`mammo_edge.evaluation.manifest_rows` parses them (``docs/datasets.md`` has the format and an
example). Training (``python -m train --data DATASET.csv``), ``mammo-edge evaluate
--labels`` and ``mammo-edge calibrate`` read a manifest through here and
:mod:`mammo_edge.evaluation.labels`, so they agree on every image's label, patient and lesions.

Where a row leaves ``patient``, ``study``, ``laterality`` or ``view`` empty, a DICOM image's
header fills it: (0010,0020) Patient ID, (0020,000D) Study Instance UID, (0020,0062) Image
Laterality (else (0020,0060) Laterality) and (0018,5101) View Position (else (0054,0220)
View Code Sequence). Only headers are read (pydicom ``stop_before_pixels``); other formats
are checked by their header (:mod:`mammo_edge.images.headers`) without decoding pixels. A value the
CSV gives wins over the header's.

Nothing is dropped silently: a row that cannot be used lands in :attr:`Dataset.rejected`
with its line and reason (missing file, unreadable image, unknown label, duplicate image,
rows of one image that disagree, a patient in two splits...).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from mammo_edge.evaluation.manifest_rows import (
    MANIFEST_REQUIRED,
    CsvTable,
    LabelsError,
    ManifestRow,
    RowProblem,
    parse_table,
    read_text,
)
from mammo_edge.images.facts import ImageFacts, inspect_image_file

#: Image-level columns every row of one image must agree on (empty cells agree with all).
IMAGE_FIELDS = ("label", "patient", "study", "laterality", "view", "group", "split")
#: Fields a DICOM header fills when the CSV leaves them empty.
DICOM_FIELDS = ("patient", "study", "laterality", "view")


@dataclass(frozen=True)
class Lesion:
    """Where an abnormality is: a circle (pixels, origin top-left) or a binary mask file.

    Attributes:
        x, y, radius: the circle, or ``None`` when the lesion is a mask.
        mask: the mask image's path, or ``None``.
        finding: what the row says the lesion is, or ``None``.
        line: the manifest line it came from.
    """

    x: float | None
    y: float | None
    radius: float | None
    mask: Path | None
    finding: str | None
    line: int


@dataclass(frozen=True)
class DatasetImage:
    """One usable image of a manifest.

    Attributes:
        path: the image file (the manifest's folder joined with ``image``).
        image: the ``image`` cell as written (a path relative to the manifest).
        label: 0 normal, 1 abnormal.
        patient: patient identifier (the CSV's, else the DICOM Patient ID).
        study, laterality (``L``/``R``), view (``CC``, ``MLO``...), group, split:
            ``None`` when neither the CSV nor the DICOM header gives one.
        finding: the rows' findings, ``+``-joined in order, or ``None``.
        lesions: lesion geometry, empty when the manifest gives none (image-level label).
        lines: the manifest lines of the image's rows.
        from_dicom: the fields the DICOM header filled in.
    """

    path: Path
    image: str
    label: int
    patient: str  # never None in a manifest; labels files may leave it empty
    study: str | None
    laterality: str | None
    view: str | None
    finding: str | None
    group: str | None
    split: str | None
    lesions: tuple[Lesion, ...]
    lines: tuple[int, ...]
    from_dicom: tuple[str, ...] = ()


@dataclass(frozen=True)
class RejectedRow:
    """A manifest row that was not used: its line, its ``image`` cell and the reason."""

    line: int
    image: str
    reason: str


@dataclass(frozen=True)
class DatasetCounts:
    """How much of each class a dataset holds (a patient may count in both classes)."""

    images: int
    normal_images: int
    abnormal_images: int
    patients: int
    normal_patients: int
    abnormal_patients: int

    def describe(self) -> str:
        return (
            f"{self.images} images ({self.abnormal_images} abnormal, {self.normal_images} "
            f"normal) of {self.patients} patients ({self.abnormal_patients} with an abnormal "
            f"image, {self.normal_patients} with a normal image)"
        )


@dataclass(frozen=True)
class Dataset:
    """A read manifest: the usable images (in file order) and every rejected row."""

    source: Path
    images: tuple[DatasetImage, ...]
    rejected: tuple[RejectedRow, ...]

    def counts(self) -> DatasetCounts:
        normal = {image.patient for image in self.images if image.label == 0}
        abnormal = {image.patient for image in self.images if image.label == 1}
        labels = [image.label for image in self.images]
        return DatasetCounts(
            images=len(labels),
            normal_images=labels.count(0),
            abnormal_images=labels.count(1),
            patients=len(normal | abnormal),
            normal_patients=len(normal),
            abnormal_patients=len(abnormal),
        )

    def rejected_report(self, limit: int = 20) -> str:
        """The rejected rows, one per line (``limit`` shown), for a person to fix."""
        lines = [f"  line {row.line} ({row.image}): {row.reason}" for row in self.rejected]
        more = len(lines) - limit
        return "\n".join(lines[:limit] + ([f"  ... and {more} more"] if more > 0 else []))


#: ``inspect(path)`` -> the file's :class:`ImageFacts`, or why it cannot be used.
Inspector = Callable[[Path], "ImageFacts | str"]


def read_dataset(path: str | os.PathLike) -> Dataset:
    """Read a dataset manifest CSV; image and mask paths are relative to its folder.

    Raises:
        LabelsError: the file is missing, unreadable, empty, or its header lacks
            ``image``, ``label`` or ``patient``. Problems of single rows are not raised:
            they are listed in :attr:`Dataset.rejected`.
    """
    source = Path(path)
    table = parse_table(read_text(source), source, MANIFEST_REQUIRED)
    return dataset_from_table(table, source, source.parent, inspect_image_file)


def dataset_from_table(
    table: CsvTable,
    source: Path,
    root: Path,
    inspect: Inspector,
    exists: Callable[[Path], bool] = Path.is_file,
    manifest: bool = True,
) -> Dataset:
    """The :class:`Dataset` of parsed rows whose paths are relative to ``root``.

    ``inspect`` checks each image (:func:`inspect_image_file` for files on disk; training
    passes its own to read MIAS inside its archive) and ``exists`` each mask path. With
    ``manifest`` False (a labels file for ``evaluate``) an image needs no patient and the
    split column is not checked.
    """
    rejected: list[RejectedRow] = []
    by_image: dict[str, list[ManifestRow]] = {}
    for row in table.rows:
        if isinstance(row, RowProblem):
            rejected.append(RejectedRow(row.line, row.image, row.reason))
        else:
            by_image.setdefault(_key(row.image), []).append(row)
    images = []
    for rows in by_image.values():
        image, problems = _image_of(rows, root, inspect, exists, manifest)
        rejected.extend(problems)
        if image is not None:
            images.append(image)
    if manifest:
        images, split_problems = _check_splits(images)
        rejected.extend(split_problems)
    rejected.sort(key=lambda row: row.line)
    return Dataset(source, tuple(images), tuple(rejected))


def _key(image: str) -> str:
    """One spelling per file: ``./a/b.png``, ``a//b.png`` and ``a\\b.png`` are one image."""
    return os.path.normpath(image.replace("\\", "/"))


def _image_of(rows: list[ManifestRow], root: Path, inspect: Inspector, exists, manifest: bool):
    """(the image of one file's rows or ``None``, the rows rejected)."""
    first = rows[0]
    if len(rows) > 1 and not all(row.has_geometry for row in rows):
        kept = [first] + [row for row in rows[1:] if row.has_geometry and first.has_geometry]
        duplicates = [row for row in rows if row not in kept]
        problems = [
            RejectedRow(
                row.line,
                row.image,
                f"{row.image!r} is labelled again (first on line {first.line}): a duplicate "
                "image; several rows for one image must each give a lesion (x, y, radius or "
                "mask), else keep one row per image",
            )
            for row in duplicates
        ]
        if any(row.label != first.label for row in duplicates):
            problems.append(
                RejectedRow(first.line, first.image, "the image is labelled both 0 and 1")
            )
            return None, problems
        image, more = _image_of(kept, root, inspect, exists, manifest)
        return image, problems + more
    merged: dict[str, object] = {}
    for name in IMAGE_FIELDS:
        values = list(dict.fromkeys(v for v in (getattr(r, name) for r in rows) if v is not None))
        if len(values) > 1:
            reason = (
                f"the rows of this image disagree on {name} ({', '.join(map(str, values))}; "
                f"lines {', '.join(str(row.line) for row in rows)})"
            )
            return None, [RejectedRow(row.line, row.image, reason) for row in rows]
        merged[name] = values[0] if values else None

    path = root / first.image.replace("\\", "/")
    facts = inspect(path)
    if isinstance(facts, str):
        return None, [RejectedRow(row.line, row.image, facts) for row in rows]
    filled = []
    for name in DICOM_FIELDS:
        if merged[name] is None and getattr(facts, name) is not None:
            merged[name] = getattr(facts, name)
            filled.append(name)
    if merged["patient"] is None and manifest:
        reason = "no patient: the patient cell is empty and no DICOM (0010,0020) Patient ID"
        return None, [RejectedRow(row.line, row.image, reason) for row in rows]
    lesions = []
    outside = _outside(rows, facts)
    if outside is not None:
        return None, [RejectedRow(row.line, row.image, outside) for row in rows]
    for row in rows:
        mask = None if row.mask is None else root / row.mask.replace("\\", "/")
        if mask is not None and not exists(mask):
            reason = f"missing mask file {row.mask} (looked for {mask})"
            return None, [RejectedRow(r.line, r.image, reason) for r in rows]
        if row.has_geometry:
            lesions.append(Lesion(row.x, row.y, row.radius, mask, row.finding, row.line))
    findings = list(dict.fromkeys(row.finding for row in rows if row.finding))
    image = DatasetImage(
        path=path,
        image=first.image,
        label=int(merged["label"]),  # type: ignore[arg-type]
        patient=merged["patient"],  # type: ignore[arg-type]
        study=merged["study"],  # type: ignore[arg-type]
        laterality=merged["laterality"],  # type: ignore[arg-type]
        view=merged["view"],  # type: ignore[arg-type]
        finding="+".join(findings) or None,
        group=merged["group"],  # type: ignore[arg-type]
        split=merged["split"],  # type: ignore[arg-type]
        lesions=tuple(lesions),
        lines=tuple(row.line for row in rows),
        from_dicom=tuple(filled),
    )
    return image, []


def _outside(rows: list[ManifestRow], facts: ImageFacts) -> str | None:
    """Why a lesion circle lies outside the image (a bottom-left origin?), or ``None``."""
    if facts.width is None or facts.height is None:
        return None
    for row in rows:
        if (
            row.x is not None
            and row.y is not None
            and not (row.x < facts.width and row.y < facts.height)
        ):
            return (
                f"lesion centre x={row.x:g} y={row.y:g} (line {row.line}) lies outside the "
                f"{facts.width}x{facts.height} image; x, y are pixels from the top-left corner"
            )
    return None


def _check_splits(images: list[DatasetImage]):
    """Refuse a patient in two splits, and images without a split when others have one."""
    if not any(image.split is not None for image in images):
        return images, []
    splits_of: dict[str, set[str | None]] = {}
    for image in images:
        splits_of.setdefault(image.patient, set()).add(image.split)
    kept, problems = [], []
    for image in images:
        splits = splits_of[image.patient]
        if image.split is None:
            reason = "no split, while other rows give one (the split column fixes the folds)"
        elif len(splits - {None}) > 1:
            shown = ", ".join(sorted(str(split) for split in splits - {None}))
            reason = f"patient {image.patient} is in several splits ({shown})"
        else:
            kept.append(image)
            continue
        problems.extend(RejectedRow(line, image.image, reason) for line in image.lines)
    return kept, problems


__all__ = [
    "Dataset",
    "DatasetCounts",
    "DatasetImage",
    "ImageFacts",
    "LabelsError",
    "Lesion",
    "RejectedRow",
    "dataset_from_table",
    "inspect_image_file",
    "read_dataset",
]
