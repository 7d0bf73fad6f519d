"""Writing a dataset manifest (``docs/datasets.md``): its columns and its CSV text, for the
converters (:mod:`train.mias_manifest`, :mod:`train.cbis_ddsm`)."""

from __future__ import annotations

import csv
import io
import os
from pathlib import Path

#: The columns the converters write (the reader's own; MIAS adds ``severity``).
MANIFEST_COLUMNS = [
    "image",
    "label",
    "patient",
    "study",
    "laterality",
    "view",
    "finding",
    "group",
    "split",
    "x",
    "y",
    "radius",
    "mask",
]


def manifest_text(rows: list[dict[str, str]], columns: list[str]) -> str:
    """The CSV text of ``rows`` (missing cells empty)."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n", restval="")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


def write_atomically(path: Path, data: bytes) -> None:
    partial = path.with_name(path.name + ".partial")
    partial.write_bytes(data)
    os.replace(partial, path)
