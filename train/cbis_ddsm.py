"""CBIS-DDSM's description CSVs turned into a dataset manifest (``python -m train manifest
--cbis-ddsm CSV... --images ROOT --out DIR``).

CBIS-DDSM (TCIA, Lee et al. 2017) describes its images in four CSVs,
``mass_case_description_{train,test}_set.csv`` and ``calc_case_description_{...}.csv``,
one row per abnormality, with the header::

    patient_id, breast_density (mass; "breast density" in calc), left or right breast,
    image view, abnormality id, abnormality type, mass shape | calc type,
    mass margins | calc distribution, assessment, pathology, subtlety,
    image file path, cropped image file path, ROI mask file path

Read here: ``patient_id`` (patient), ``left or right breast`` (LEFT/RIGHT -> laterality),
``image view`` (CC/MLO), ``abnormality type`` and ``pathology`` (finding, label),
``breast_density`` (group ``density N``), ``image file path`` (image) and ``ROI mask file
path`` (mask). One manifest row per abnormality: the lesion is its ROI mask. The study is
the patient (a DDSM case is one screening exam). An image that is in both the mass and the
calc CSVs (the same mammogram under two series names) is one image with all its lesions.

Paths: the CSV's path is tried under ROOT first; TCIA downloads made with newer NBIA
retrievers name the folders differently (``Mass-Training_P_00001_LEFT_CC/07-20-2016-
DDSM-74994/1.000000-full mammogram images-24515/1-1.dcm``), so when it is absent the
DICOMs under ``ROOT/<the path's first folder>`` are searched: the only one for a full
mammogram; for a mask, the one whose series says ``ROI mask`` (else the largest; the
CSV's "cropped" and "ROI mask" columns are known to be swapped on some rows). Rows whose
files are not found are written as given: the manifest reader then lists them as missing.

Labels: CBIS-DDSM has no normal images. ``--label abnormal`` (default) marks every image
1, as MIAS marks any finding, so such a manifest trains only together with normal images
from elsewhere; ``--label malignant`` marks an image 1 when any of its findings is
malignant, else 0 (its benign lesions are then written without geometry).
"""

from __future__ import annotations

import csv
import os
from collections.abc import Sequence
from pathlib import Path, PurePosixPath

from .manifest_writer import MANIFEST_COLUMNS, manifest_text, write_atomically

#: The CSV columns the converter reads (both density spellings accepted).
CBIS_COLUMNS = (
    "patient_id",
    "left or right breast",
    "image view",
    "abnormality type",
    "pathology",
    "image file path",
    "roi mask file path",
)
LATERALITY = {"LEFT": "L", "RIGHT": "R"}


class CbisError(ValueError):
    """A description CSV is missing, not CBIS-DDSM's layout, or names no usable row."""


def read_description(path: Path) -> list[dict[str, str]]:
    """The rows of one description CSV, keys lower-cased, cells stripped of whitespace and
    the stray newlines CBIS-DDSM's path cells carry.

    Raises:
        CbisError: the file is missing or lacks a column of :data:`CBIS_COLUMNS`.
    """
    if not path.is_file():
        raise CbisError(f"{path}: no such CSV")
    with path.open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.DictReader(handle)
        names = [name.strip().lower() for name in reader.fieldnames or ()]
        missing = [column for column in CBIS_COLUMNS if column not in names]
        if missing:
            raise CbisError(
                f"{path}: not a CBIS-DDSM description CSV: no column(s) {', '.join(missing)} "
                f"(found {', '.join(names)})"
            )
        return [
            {
                key.strip().lower(): (value or "").strip().strip('"').strip()
                for key, value in row.items()
            }
            for row in reader
        ]


def _dicoms_under(folder: Path) -> list[Path]:
    return (
        sorted(path for path in folder.rglob("*.dcm") if path.is_file()) if folder.is_dir() else []
    )


def _series_text(path: Path) -> str:
    """The series folder name and (0008,103E) Series Description, lower-cased."""
    text = path.parent.name
    try:
        import pydicom

        header = pydicom.dcmread(str(path), stop_before_pixels=True, force=True)
        text += " " + str(header.get("SeriesDescription", ""))
        size = int(header.get("Rows", 0) or 0) * int(header.get("Columns", 0) or 0)
    except Exception:  # an unreadable file: the manifest reader will say so
        size = 0
    return f"{text.lower()}\t{size}"


def resolve(root: Path, cell: str, mask: bool) -> Path | None:
    """The file a CSV path names under ``root`` (see the module docstring), or ``None``."""
    relative = PurePosixPath(cell.replace("\\", "/"))
    direct = root / relative
    if direct.is_file():
        if not mask:
            return direct
    candidates = _dicoms_under(root / relative.parts[0]) if relative.parts else []
    if not mask:
        return candidates[0] if len(candidates) == 1 else None
    if len(candidates) <= 1:
        return candidates[0] if candidates else (direct if direct.is_file() else None)
    described = {path: _series_text(path) for path in candidates}
    masks = [path for path, text in described.items() if "roi mask" in text.split("\t")[0]]
    if len(masks) == 1:
        return masks[0]
    return max(candidates, key=lambda path: int(described[path].split("\t")[1]))


def _label(pathologies: list[str], label_by: str) -> int:
    if label_by == "abnormal":
        return 1
    return int(any(pathology.upper() == "MALIGNANT" for pathology in pathologies))


def cbis_manifest_rows(
    csv_paths: Sequence[Path], root: Path, out: Path, label_by: str, official_split: bool
) -> tuple[list[dict[str, str]], list[str]]:
    """(manifest rows with paths relative to ``out``, notes on files not found)."""
    by_image: dict[tuple[str, str, str], list[dict[str, str]]] = {}
    for csv_path in csv_paths:
        for row in read_description(csv_path):
            key = (
                row["patient_id"],
                row["left or right breast"].upper(),
                row["image view"].upper(),
            )
            by_image.setdefault(key, []).append(row)
    rows, notes = [], []

    def relative(cell: str, mask: bool, found: Path | None = None) -> str:
        found = found or resolve(root, cell, mask)
        if found is None:
            notes.append(f"not found under {root}: {cell}")
            found = root / cell
        return PurePosixPath(os.path.relpath(found, out)).as_posix()

    for (patient, side, view), lesions in by_image.items():
        label = _label([row["pathology"] for row in lesions], label_by)
        # The same mammogram under a mass and a calc series: the first copy on disk.
        cells = list(dict.fromkeys(row["image file path"] for row in lesions))
        found = next((path for cell in cells if (path := resolve(root, cell, False))), None)
        cell = cells[0] if found is None else next(c for c in cells if resolve(root, c, False))
        series = PurePosixPath(cell).parts[0] if cell else ""
        base = {
            "image": relative(cell, mask=False, found=found),
            "label": str(label),
            "patient": patient,
            "study": patient,
            "laterality": LATERALITY.get(side, ""),
            "view": view,
            "group": _density(lesions[0]),
            "split": ("test" if "-Test" in series else "train") if official_split else "",
        }
        findings = [f"{row['abnormality type']} {row['pathology']}".lower() for row in lesions]
        if label == 0:
            # Benign only (--label malignant): one image-level row, no geometry (a lesion
            # on a normal-labelled image is refused by the reader).
            rows.append({**base, "finding": "+".join(dict.fromkeys(findings)), "mask": ""})
            continue
        located = [
            (row, finding)
            for row, finding in zip(lesions, findings, strict=True)
            if label_by == "abnormal" or row["pathology"].upper() == "MALIGNANT"
        ]
        others = [
            finding
            for (row, finding) in zip(lesions, findings, strict=True)
            if all(row is not kept for kept, _ in located)
        ]
        for index, (row, finding) in enumerate(located):
            shown = "+".join([finding, *others]) if index == 0 and others else finding
            rows.append(
                {**base, "finding": shown, "mask": relative(row["roi mask file path"], mask=True)}
            )
    return rows, notes


def _density(row: dict[str, str]) -> str:
    value = row.get("breast_density") or row.get("breast density") or ""
    return f"density {value}" if value else ""


def write_cbis_manifest(
    csv_paths: Sequence[Path], root: Path, out: Path, label_by: str, official_split: bool, log=print
) -> Path:
    """Write ``OUT/manifest.csv`` for the CBIS-DDSM images under ``root`` (not copied).

    Raises:
        CbisError: a CSV is missing or not CBIS-DDSM's, or ``root`` is not a folder.
    """
    if not root.is_dir():
        raise CbisError(f"--images {root}: no such folder (the downloaded CBIS-DDSM images)")
    out.mkdir(parents=True, exist_ok=True)
    rows, notes = cbis_manifest_rows(csv_paths, root, out, label_by, official_split)
    path = out / "manifest.csv"
    write_atomically(path, manifest_text(rows, MANIFEST_COLUMNS).encode())
    images = len({row["image"] for row in rows})
    log(f"wrote {path}: {images} images, {len(rows)} rows (labels: {label_by})")
    for note in notes[:20]:
        log(f"  {note}")
    if len(notes) > 20:
        log(f"  ... and {len(notes) - 20} more files not found")
    return path
