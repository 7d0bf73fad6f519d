"""MIAS as a dataset manifest: ``python -m train manifest --mias all-mias.tar.gz --out DIR``.

``DIR/manifest.csv`` and the images as they are in the archive (``DIR/mdbNNN.pgm``, the
same bytes). One row per Info.txt row; the lesion circles' y turned to a top-left origin
(``1023 - y``); laterality from the database's pairing (odd numbers left, even right), view
MLO, group the background tissue, finding the class code (``NORM`` for normal), and the
severity (``B``/``M``) in an extra column the reader ignores. Training on the archive reads
these very rows (:func:`train.dataset.mias_training_set`).
"""

from __future__ import annotations

from pathlib import Path

from mammo_edge.evaluation.mias_info import MIAS_TISSUE_CODES

from .manifest_writer import MANIFEST_COLUMNS, manifest_text, write_atomically
from .mias import MiasDataset

#: The MIAS manifest's columns: no masks; the severity as an extra column.
MIAS_COLUMNS = [column for column in MANIFEST_COLUMNS if column != "mask"] + ["severity"]


def mias_manifest_rows(mias: MiasDataset) -> list[dict[str, str]]:
    """One manifest row per Info.txt row, images in reference order.

    An image with several rows gets one per located lesion; a row without coordinates
    (``*NOTE 3*``, mdb059) is an image-level row. (An image mixing both kinds does not occur
    in MIAS; its unlocated rows would be left out of the geometry, their finding kept.)
    """
    rows = []
    for record in mias.records:
        number = int(record.reference[3:])
        base = {
            "image": f"{record.reference}.pgm",
            "label": str(record.label),
            "patient": str(record.patient_id),
            "laterality": "L" if number % 2 else "R",
            "view": "MLO",
            "group": MIAS_TISSUE_CODES[record.tissue],
        }
        located = [row for row in record.rows if row.x is not None]
        chosen = located if located and len(record.rows) > 1 else record.rows
        for row in chosen:
            circle = {}
            if row.x is not None and row.radius is not None:
                circle = {"x": str(row.x), "y": str(row.row_from_top), "radius": str(row.radius)}
            rows.append(
                {
                    **base,
                    "finding": row.abnormality_class,
                    "severity": row.severity or "",
                    **circle,
                }
            )
    return rows


def mias_manifest_text(mias: MiasDataset) -> str:
    """The manifest CSV of MIAS, as ``train manifest --mias`` writes it."""
    return manifest_text(mias_manifest_rows(mias), MIAS_COLUMNS)


def write_mias_manifest(mias: MiasDataset, out: Path, log=print) -> Path:
    """Write ``OUT/manifest.csv`` and every listed image (the archive's bytes).

    Returns:
        The manifest's path.
    """
    out.mkdir(parents=True, exist_ok=True)
    for record in mias.records:
        target = out / f"{record.reference}.pgm"
        data = mias.read_bytes(record.reference)
        if not (target.is_file() and target.read_bytes() == data):
            write_atomically(target, data)
    path = out / "manifest.csv"
    write_atomically(path, mias_manifest_text(mias).encode())
    log(f"wrote {path}: {len(mias.records)} images, {len(mias.rows)} Info.txt rows")
    return path
