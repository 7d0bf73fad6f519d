"""The dataset manifest: every column, DICOM tags filling empty cells, every refusal reason,
and ``evaluate --labels`` reading the same file."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from conftest import write_dicom

from mammo_edge.evaluation.dataset_manifest import read_dataset
from mammo_edge.evaluation.labels import LabelsError, match_labels, read_labels

HEADER = "image,label,patient,study,laterality,view,finding,group,split,x,y,radius,mask\n"


def png16(path: Path, seed: int = 0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    assert cv2.imwrite(str(path), rng.integers(0, 65535, (40, 30)).astype(np.uint16))
    return path


def write_manifest(folder: Path, rows: str, header: str = HEADER) -> Path:
    path = folder / "dataset.csv"
    path.write_text(header + rows)
    return path


def test_every_column_is_read_and_lesion_rows_become_one_image(tmp_path):
    png16(tmp_path / "scans" / "a.png")
    png16(tmp_path / "scans" / "b.png", 1)
    png16(tmp_path / "masks" / "b_roi.png", 2)
    manifest = write_manifest(
        tmp_path,
        "scans/a.png,1,p1,s1,left,cc,mass,dense,1,10,20,5,\n"
        "scans/a.png,abnormal,p1,s1,L,CC,calcification,dense,1,20.5,12,2,\n"
        "scans/b.png,normal,p1,s1,R,CC,,dense,1,,,,\n",
    )
    dataset = read_dataset(manifest)
    assert dataset.rejected == ()
    first, second = dataset.images
    assert first.path == tmp_path / "scans" / "a.png" and first.image == "scans/a.png"
    assert (first.label, first.patient, first.study, first.laterality, first.view) == (
        1,
        "p1",
        "s1",
        "L",
        "CC",
    )
    assert (first.group, first.split, first.finding) == ("dense", "1", "mass+calcification")
    assert [(lesion.x, lesion.y, lesion.radius, lesion.line) for lesion in first.lesions] == [
        (10.0, 20.0, 5.0, 2),
        (20.5, 12.0, 2.0, 3),
    ]
    assert first.lines == (2, 3) and first.from_dicom == ()
    assert (second.label, second.laterality, second.lesions) == (0, "R", ())
    counts = dataset.counts()
    assert (counts.images, counts.abnormal_images, counts.patients) == (2, 1, 1)
    assert (counts.normal_patients, counts.abnormal_patients) == (1, 1)


def test_a_mask_is_a_lesion_resolved_beside_the_manifest(tmp_path):
    png16(tmp_path / "a.png")
    png16(tmp_path / "roi" / "a_mask.png", 3)
    dataset = read_dataset(write_manifest(tmp_path, "a.png,1,p1,,,,mass,,,,,,roi/a_mask.png\n"))
    (lesion,) = dataset.images[0].lesions
    assert lesion.mask == tmp_path / "roi" / "a_mask.png" and lesion.radius is None


def test_dicom_tags_fill_empty_cells_and_the_csv_wins_where_given(tmp_path):
    stored = np.arange(48 * 40, dtype=np.uint16).reshape(48, 40)
    tags = {
        "PatientID": "DCM-7",
        "StudyInstanceUID": "1.2.3.4",
        "ImageLaterality": "R",
        "ViewPosition": "MLO",
    }
    write_dicom(tmp_path / "one.dcm", stored, extra=tags)
    write_dicom(tmp_path / "two.dcm", stored, extra=tags)
    manifest = write_manifest(
        tmp_path, "one.dcm,0,,,,,,,,,,,\ntwo.dcm,1,csv-patient,,L,CC,,,,,,,\n"
    )
    one, two = read_dataset(manifest).images
    assert (one.patient, one.study, one.laterality, one.view) == ("DCM-7", "1.2.3.4", "R", "MLO")
    assert set(one.from_dicom) == {"patient", "study", "laterality", "view"}
    assert (two.patient, two.laterality, two.view, two.study) == (
        "csv-patient",
        "L",
        "CC",
        "1.2.3.4",
    )
    assert two.from_dicom == ("study",)


def test_a_view_code_sequence_gives_the_view_when_view_position_is_absent(tmp_path):
    from pydicom.dataset import Dataset

    code = Dataset()
    code.CodeValue, code.CodeMeaning = "R-10242", "cranio-caudal"
    write_dicom(
        tmp_path / "a.dcm",
        np.zeros((32, 32), np.uint8),
        extra={"PatientID": "x", "ViewCodeSequence": [code]},
    )
    (image,) = read_dataset(write_manifest(tmp_path, "a.dcm,0,,,,,,,,,,,\n")).images
    assert image.view == "CC"


@pytest.mark.parametrize(
    ("rows", "line", "reason"),
    [
        ("a.png,maybe,p1,,,,,,,,,,\n", 2, "label 'maybe' for 'a.png' must be 0, 1"),
        ("gone.png,1,p1,,,,,,,,,,\n", 2, "missing file"),
        ("junk.png,1,p1,,,,,,,,,,\n", 2, "unreadable image"),
        ("empty.png,1,p1,,,,,,,,,,\n", 2, "unreadable image: the file is empty"),
        ("cut.png,1,p1,,,,,,,,,,\n", 2, "unreadable image"),
        ("a.png,1,p1,,,,,,,,,,\na.png,1,p1,,,,,,,,,,\n", 3, "labelled again (first on line 2)"),
        ("a.png,1,p1,,,,,,,,,,\n./a.png,1,p1,,,,,,,,,,\n", 3, "a duplicate image"),
        ("a.png,1,,,,,,,,,,,\n", 2, "no patient"),
        ("a.png,1,p1,,up,,,,,,,,\n", 2, "laterality 'up' must be L, R"),
        ("a.png,1,p1,,,,,,,1,2,,\n", 2, "needs x, y and radius"),
        ("a.png,1,p1,,,,,,,a,2,3,\n", 2, "must be numbers"),
        ("a.png,1,p1,,,,,,,-1,2,3,\n", 2, "must be >= 0 and radius > 0"),
        ("a.png,1,p1,,,,,,,1,2,3,m.png\n", 2, "not both"),
        ("a.png,1,p1,,,,,,,,,,gone.png\n", 2, "missing mask file gone.png"),
        ("a.png,0,p1,,,,,,,1,2,3,\n", 2, "lesion geometry on an image labelled normal"),
        ("a.png,1,p1,,,,,,,10,45,3,\n", 2, "lies outside the 30x40 image"),
        ("a.png,1,p1\n", 2, "expected 13 cells, found 3"),
        (",1,p1,,,,,,,,,,\n", 2, "the image cell is empty"),
        ("a.png,1,p1,,,,,,,1,2,3,\na.png,1,p2,,,,,,,4,5,6,\n", 2, "disagree on patient (p1, p2"),
        ("a.png,1,p1,,,,,,,1,2,3,\na.png,0,p1,,,,,,,,,,\n", 3, "a duplicate image"),
        ("a.png,1,p1,,,,,,1,,,,\nb.png,0,p1,,,,,,2,,,,\n", 2, "patient p1 is in several splits"),
        ("a.png,1,p1,,,,,,1,,,,\nb.png,0,p2,,,,,,,,,,\n", 3, "no split, while other rows"),
    ],
)
def test_each_unusable_row_is_listed_with_its_reason(tmp_path, rows, line, reason):
    png16(tmp_path / "a.png")
    png16(tmp_path / "b.png", 1)
    png16(tmp_path / "m.png", 2)
    (tmp_path / "junk.png").write_bytes(b"this is not an image at all" * 10)
    (tmp_path / "empty.png").write_bytes(b"")
    (tmp_path / "cut.png").write_bytes((tmp_path / "a.png").read_bytes()[:60])
    dataset = read_dataset(write_manifest(tmp_path, rows))
    assert any(row.line == line and reason in row.reason for row in dataset.rejected), (
        dataset.rejected
    )
    used = {line for image in dataset.images for line in image.lines}
    assert not used & {row.line for row in dataset.rejected}  # never both used and rejected
    assert dataset.rejected_report()  # a report a person can read


def test_a_manifest_needs_the_patient_column(tmp_path):
    with pytest.raises(LabelsError, match="header lacks column\\(s\\) patient"):
        read_dataset(write_manifest(tmp_path, "a.png,1\n", header="image,label\n"))


def test_evaluate_reads_a_manifest_with_lesion_rows_as_one_label_per_image(tmp_path):
    manifest = write_manifest(
        tmp_path,
        "scans/a.png,1,p1,,,,mass,dense,,10,20,5,\n"
        "scans/a.png,1,p1,,,,calc,dense,,30,12,2,\n"
        "scans/b.png,0,p1,,,,,dense,,,,,\n",
    )
    labels = read_labels(manifest)  # no file is opened: evaluate matches inputs afterwards
    assert [(r.image, r.label, r.patient, r.group, r.finding, r.line) for r in labels.records] == [
        ("scans/a.png", 1, "p1", "dense", "mass+calc", 2),
        ("scans/b.png", 0, "p1", "dense", None, 4),
    ]
    inputs = [str(tmp_path / "scans" / "b.png"), str(tmp_path / "scans" / "a.png")]
    match = match_labels(inputs, labels)
    assert [(path, record.label) for path, record in match.matched] == [
        (inputs[0], 0),
        (inputs[1], 1),
    ]


def test_evaluate_refuses_a_manifest_row_that_training_would_reject(tmp_path):
    manifest = write_manifest(tmp_path, "a.png,0,p1,,,,,,,1,2,3,\n")
    with pytest.raises(LabelsError, match="line 2: lesion geometry on an image labelled normal"):
        read_labels(manifest)
