"""Ground-truth labels for ``mammo-edge evaluate``: read a labels file, match it to inputs.

Three formats, told apart by content (not by file name):

* a labels CSV with a header naming the columns ``image`` and ``label``, and optionally
  ``patient``, ``group`` and ``finding`` (other columns are ignored). ``image`` is a file
  name (``mdb003.pgm``), a stem (``mdb003``) or a path (``scans/left/mdb003.pgm``);
  ``label`` is ``0``/``1`` or ``normal``/``abnormal``. Comma or semicolon separated,
  UTF-8 (a byte-order mark is fine);
* a dataset manifest (``docs/datasets.md``), which is such a CSV with more columns and
  possibly several rows per image (one per lesion): its rows are consolidated by the
  manifest's own rules (:func:`mammo_edge.evaluation.dataset_manifest.dataset_from_table`), so an
  image's label is what training reads. :func:`read_dataset` reads a manifest for training
  and calibration (files checked, DICOM tags filling empty cells, rejected rows listed);
* the MIAS ``Info.txt`` (:mod:`mammo_edge.evaluation.mias_info`, the one parser of its rows): an
image
  is abnormal when any of its rows is not ``NORM``; its patient is its left/right pair
  (mdb001 and mdb002 are patient 1); its group is the background tissue (fatty,
  fatty-glandular, dense-glandular) and its finding the abnormality class(es).

For ``evaluate`` a CSV row that cannot be used is an error naming its line. Matching never
drops anything silently: inputs without a label and labels without an input are returned
for the caller to report, and a label that could belong to two inputs, or two labels for
one input, is an error naming the line.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path, PurePath

from mammo_edge.evaluation.dataset_manifest import (
    Dataset,
    DatasetImage,
    ImageFacts,
    Lesion,
    RejectedRow,
    dataset_from_table,
    read_dataset,
)
from mammo_edge.evaluation.manifest_rows import (
    CSV_OPTIONAL,
    CSV_REQUIRED,
    LABEL_VALUES,
    LabelsError,
    first_content_line,
    header_columns,
    parse_table,
    read_text,
)
from mammo_edge.evaluation.mias_info import (
    MIAS_CLASS_CODES,
    MIAS_IMAGE_SIZE,
    MIAS_REFERENCE,
    MIAS_SEVERITY_CODES,
    MIAS_TISSUE_CODES,
    MiasRow,
    group_mias_rows,
    looks_like_mias_info,
    mias_image_labels,
    mias_patient_of,
    parse_mias_info,
)

__all__ = [
    "CSV_OPTIONAL",
    "CSV_REQUIRED",
    "LABEL_VALUES",
    "MIAS_CLASS_CODES",
    "MIAS_IMAGE_SIZE",
    "MIAS_REFERENCE",
    "MIAS_SEVERITY_CODES",
    "MIAS_TISSUE_CODES",
    "Dataset",
    "DatasetImage",
    "LabelMatch",
    "LabelRecord",
    "Labels",
    "LabelsError",
    "Lesion",
    "MiasRow",
    "RejectedRow",
    "group_mias_rows",
    "labels_of",
    "match_labels",
    "mias_patient_of",
    "parse_mias_info",
    "read_dataset",
    "read_labels",
]


@dataclass(frozen=True)
class LabelRecord:
    """The truth for one image.

    Attributes:
        image: the image reference as written (name, stem or path; ``mdbNNN`` for MIAS).
        label: 0 normal, 1 abnormal.
        line: line of the labels file it came from (the first row, for MIAS).
        patient: patient identifier, or ``None`` (then the image is its own patient).
        group: subgroup for per-group metrics (MIAS: background tissue), or ``None``.
        finding: what the truth is (MIAS: the abnormality class codes), or ``None``;
            carried to the output, not used by any metric.
    """

    image: str
    label: int
    line: int
    patient: str | None = None
    group: str | None = None
    finding: str | None = None


@dataclass(frozen=True)
class Labels:
    """A parsed labels file: ``file_format`` is ``"csv"`` or ``"mias-info"``."""

    records: tuple[LabelRecord, ...]
    source: Path
    file_format: str


@dataclass(frozen=True)
class LabelMatch:
    """Inputs paired with their labels, and everything that did not pair.

    Attributes:
        matched: ``(input path, record)`` in input order.
        inputs_without_label: input paths no label row names, in input order.
        labels_without_input: label rows no input matches, in file order.
    """

    matched: tuple[tuple[str, LabelRecord], ...]
    inputs_without_label: tuple[str, ...]
    labels_without_input: tuple[LabelRecord, ...]


def read_labels(path: str | os.PathLike) -> Labels:
    """Read a labels CSV, a dataset manifest or a MIAS Info.txt (recognised by content).

    Raises:
        LabelsError: the file is missing, unreadable, of neither format, or has a bad or
            duplicated row (the message names the line).
    """
    source = Path(path)
    text = read_text(source)
    header = first_content_line(text)
    if header is None:
        raise LabelsError(f"{source}: the labels file is empty")
    line_number, first = header
    _, columns = header_columns(first)
    if "image" in columns or "label" in columns:
        return Labels(_csv_records(text, source), source, "csv")
    if looks_like_mias_info(text):
        records = tuple(
            LabelRecord(m.image, m.label, m.line, m.patient, m.group, m.finding)
            for m in mias_image_labels(text, source)
        )
        return Labels(records, source, "mias-info")
    raise LabelsError(
        f"{source}: not a labels file. Expected a CSV whose header names the columns "
        f"{','.join(CSV_REQUIRED)} (optional {','.join(CSV_OPTIONAL)}), or a MIAS Info.txt "
        f"(rows 'mdbNNN TISSUE CLASS ...'); line {line_number} reads {first[:60]!r}"
    )


def _csv_records(text: str, source: Path) -> tuple[LabelRecord, ...]:
    """One record per image of a labels CSV or manifest; the first bad row is an error.

    The manifest's rules consolidate the rows (lesion rows of one image become one record),
    but no file is opened: ``evaluate`` matches the records to its inputs afterwards.
    """
    table = parse_table(text, source, CSV_REQUIRED)
    dataset = dataset_from_table(
        table,
        source,
        source.parent,
        inspect=lambda _: ImageFacts("unknown"),
        exists=lambda _: True,
        manifest=False,
    )
    if dataset.rejected:
        shown = "; ".join(f"line {row.line}: {row.reason}" for row in dataset.rejected[:5])
        more = len(dataset.rejected) - 5
        raise LabelsError(f"{source} {shown}" + (f"; and {more} more" if more > 0 else ""))
    return labels_of(dataset)


def labels_of(dataset: Dataset) -> tuple[LabelRecord, ...]:
    """The label record of each of a dataset's images (its first line names the row)."""
    return tuple(
        LabelRecord(
            image=image.image,
            label=image.label,
            line=image.lines[0],
            patient=image.patient,
            group=image.group,
            finding=image.finding,
        )
        for image in dataset.images
    )


def match_labels(inputs: Sequence[str], labels: Labels) -> LabelMatch:
    """Pair each input path with its label row.

    A label's ``image`` matches an input by path (when it holds a ``/``: the input's path
    ends with those components, or both resolve to the same file, relative to the working
    folder or to the labels file's folder), else by file name, else by stem.

    Raises:
        LabelsError: a label row matches two inputs, or two rows match one input.
    """
    by_name: dict[str, list[int]] = {}
    by_stem: dict[str, list[int]] = {}
    for index, path in enumerate(inputs):
        pure = PurePath(path)
        by_name.setdefault(pure.name, []).append(index)
        by_stem.setdefault(pure.stem, []).append(index)
    resolved = [os.path.normcase(os.path.abspath(path)) for path in inputs]
    owner: dict[int, LabelRecord] = {}
    without_input: list[LabelRecord] = []
    for record in labels.records:
        found = _candidates(record.image, inputs, resolved, by_name, by_stem, labels.source)
        where = f"{labels.source} line {record.line}"
        if len(found) > 1:
            shown = ", ".join(inputs[index] for index in found[:4])
            raise LabelsError(
                f"{where}: {record.image!r} matches {len(found)} inputs ({shown}); "
                f"name the image by a longer path, or pass each file once"
            )
        if not found:
            without_input.append(record)
            continue
        index = found[0]
        if index in owner:
            raise LabelsError(
                f"{where}: {record.image!r} labels {inputs[index]}, already labelled by "
                f"{owner[index].image!r} on line {owner[index].line}"
            )
        owner[index] = record
    matched = tuple((inputs[index], owner[index]) for index in sorted(owner))
    unlabelled = tuple(path for index, path in enumerate(inputs) if index not in owner)
    return LabelMatch(matched, unlabelled, tuple(without_input))


def _candidates(
    image: str,
    inputs: Sequence[str],
    resolved: list[str],
    by_name: dict[str, list[int]],
    by_stem: dict[str, list[int]],
    labels_source: Path,
) -> list[int]:
    normalised = image.replace("\\", "/")
    if "/" not in normalised:
        return by_name.get(image) or by_stem.get(image) or []
    key_parts = [part for part in PurePath(normalised).parts if part not in (".", "")]
    targets = {
        os.path.normcase(os.path.abspath(normalised)),
        os.path.normcase(os.path.abspath(labels_source.parent / normalised)),
    }
    found = []
    for index, path in enumerate(inputs):
        parts = PurePath(path.replace("\\", "/")).parts
        ends_with = ".." not in key_parts and tuple(parts[-len(key_parts) :]) == tuple(key_parts)
        if resolved[index] in targets or ends_with:
            found.append(index)
    return found
