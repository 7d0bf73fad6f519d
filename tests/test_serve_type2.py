"""The SR and the overlay are written whatever type-2 attribute the scored image lacks.

An image without (0010,0030) Patient's Birth Date used to make the SR writer raise
``AttributeError``, for ever: the study was never reported. Each type-2 patient or study
attribute is removed, emptied or given a value its VR does not allow, one at a time; the
SR (TID 1500) and the Secondary Capture must still be written, read back by pydicom and
highdicom, carry the attribute (the image's value, or empty), and pass DCMTK's ``dsrdump``
where it is installed.
"""

from __future__ import annotations

import shutil
import subprocess

import numpy as np
import pytest

pytest.importorskip("pynetdicom", reason="the serve extra is not installed")
pytest.importorskip("highdicom", reason="the serve extra is not installed")

import pydicom  # noqa: E402
from pydicom.uid import generate_uid  # noqa: E402

from mammo_edge.serve.source_header import TYPE2_PATIENT_STUDY  # noqa: E402
from tests.serve_fixtures import (  # noqa: E402
    EXAMPLES,
    in_process_scorer,
    mammogram_dataset,
    read_pgm,
    read_results,
    spool_dataset,
)

#: Values the VR does not allow, which highdicom refuses as well.
MALFORMED = {
    "PatientSex": "female",
    "PatientBirthDate": "1970",
    "StudyDate": "2026-01-01",
    "StudyTime": "12:00",
}
PIXELS = np.full((64, 48), 90, dtype=np.uint8)


def source_image(keyword: str, mode: str):
    """A mammogram whose ``keyword`` is absent, empty or malformed, with the others set."""
    dataset = mammogram_dataset(PIXELS, study_uid=generate_uid())
    dataset.PatientBirthDate = "19700101"
    dataset.ReferringPhysicianName = "Doe^Jane"
    if mode == "absent":
        del dataset[keyword]
    elif mode == "empty":
        setattr(dataset, keyword, None)
    else:
        setattr(dataset, keyword, MALFORMED[keyword])
    return dataset


def scored_record(dataset):
    """A scored record of ``dataset``, as a line of results.jsonl holds it."""
    from mammo_edge.serve.records import ServeRecord

    return ServeRecord.from_dict(
        {
            "path": "spool/scored/x.dcm",
            "status": "ok",
            "probability": 0.7,
            "label": "abnormal",
            "threshold": 0.5,
            "model_name": "test",
            "model_version": "1",
            "model_sha256": "ab" * 32,
            "provider": "CPUExecutionProvider",
            "laterality": "L",
            "view": "MLO",
            "breast_probability": 0.7,
            "exam_probability": 0.7,
            "sop_instance_uid": dataset.SOPInstanceUID,
            "study_instance_uid": dataset.StudyInstanceUID,
            "series_instance_uid": dataset.SeriesInstanceUID,
            "patient_id": dataset.get("PatientID"),
            "sop_class_uid": dataset.SOPClassUID,
            "revision": 1,
            "peak_x": 10.0,
            "peak_y": 20.0,
            "peak_value": 0.9,
        }
    )


def check_copied(written, source, keyword: str, mode: str) -> None:
    """The written object has ``keyword``: the source's value, or empty where it had none."""
    assert keyword in written, f"{keyword} missing from the written object"
    value = written[keyword].value
    if mode == "kept":
        assert str(value) == str(source[keyword].value)
    else:
        assert value in (None, ""), f"{keyword}: {value!r} written for an {mode} source value"


def dsrdump_ok(path) -> None:
    """DCMTK's SR dump reads the file without error (skipped where DCMTK is absent)."""
    if shutil.which("dsrdump") is None:
        return
    result = subprocess.run(["dsrdump", str(path)], capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr
    assert "Imaging Measurement Report" in result.stdout


CASES = [(keyword, mode) for keyword in TYPE2_PATIENT_STUDY for mode in ("absent", "empty")]
CASES += [(keyword, "malformed") for keyword in MALFORMED]


@pytest.mark.parametrize(("keyword", "mode"), CASES)
def test_sr_is_written_without_the_attribute(tmp_path, keyword, mode):
    import highdicom as hd

    from mammo_edge.serve.structured_report import build_report, read_probabilities

    source = source_image(keyword, mode)
    report = build_report([scored_record(source)], [source], 1, threshold=0.5)
    path = tmp_path / "sr.dcm"
    report.save_as(path, enforce_file_format=True)
    written = pydicom.dcmread(path)
    assert written.Modality == "SR" and written.StudyInstanceUID == source.StudyInstanceUID
    check_copied(written, source, keyword, mode)
    for other in TYPE2_PATIENT_STUDY:
        if other != keyword:
            check_copied(written, source, other, "kept")
    hd.sr.ComprehensiveSR.from_dataset(written)
    assert read_probabilities(written) == {source.SOPInstanceUID: pytest.approx(0.7)}
    assert (keyword in source) is (mode != "absent"), "the image itself must not change"
    if mode == "malformed":
        assert source[keyword].value == MALFORMED[keyword]
    dsrdump_ok(path)


@pytest.mark.parametrize(("keyword", "mode"), CASES)
def test_overlay_is_written_without_the_attribute(tmp_path, keyword, mode):
    from mammo_edge.images.preprocess import Geometry
    from mammo_edge.serve.overlay import build_overlay

    source = source_image(keyword, mode)
    rgb = np.zeros((64, 48, 3), dtype=np.uint8)
    geometry = Geometry(48, 64, False, None, 48, 64)
    overlay = build_overlay(source, rgb, geometry, 1)
    path = tmp_path / "overlay.dcm"
    overlay.save_as(path, enforce_file_format=True)
    written = pydicom.dcmread(path)
    assert written.SOPClassUID == "1.2.840.10008.5.1.4.1.1.7"
    assert written.pixel_array.shape == (64, 48, 3)
    check_copied(written, source, keyword, mode)


def test_a_study_lacking_every_type2_attribute_gets_its_sr(tmp_path):
    """Through the node's scorer: no patient or study attribute at all, SR and overlay made."""
    out = tmp_path / "out"
    scorer = in_process_scorer(out)
    study = generate_uid()
    dataset = mammogram_dataset(read_pgm(EXAMPLES / "mdb003.pgm")[::4, ::4].copy(), study_uid=study)
    for keyword in TYPE2_PATIENT_STUDY:
        if keyword in dataset:
            del dataset[keyword]
    spool_dataset(scorer, dataset)
    records = scorer.score_study(study)
    assert [record.prediction.status for record in records] == ["ok"]
    report = pydicom.dcmread(out / study / "sr-r1.dcm")
    overlay = pydicom.dcmread(next((out / study).glob("overlay-*.dcm")))
    for written in (report, overlay):
        for keyword in TYPE2_PATIENT_STUDY:
            check_copied(written, dataset, keyword, "absent")
    assert [row["status"] for row in read_results(out)] == ["ok"]
    assert not list((out / "spool" / "incoming").glob("*/*.dcm"))
    dsrdump_ok(out / study / "sr-r1.dcm")
