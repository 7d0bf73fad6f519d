"""``mammo-edge serve`` as a DICOM node, against real peers on 127.0.0.1.

A pynetdicom SCU sends mammograms (examples/*.pgm wrapped as MG DICOM) and bad objects to
a ``serve`` process; a test SCP receives its SR and overlays. The SR is read back with
highdicom and its probabilities must equal ``predict``'s for the same pixels.
"""

from __future__ import annotations

import signal
import time
from dataclasses import replace

import numpy as np
import pytest

pytest.importorskip("pynetdicom", reason="the serve extra is not installed")
pytest.importorskip("highdicom", reason="the serve extra is not installed")

from pydicom.uid import generate_uid  # noqa: E402

from tests.serve_fixtures import (  # noqa: E402
    EXAMPLES,
    ReceivingScp,
    mammogram_dataset,
    read_pgm,
    read_results,
    send_datasets,
    start_serve,
    write_dataset,
)

STABLE = "0.5"


def wait_for(condition, timeout: float = 60.0, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def predict_dicoms(datasets, folder) -> dict:
    """``mammo-edge predict`` on the study's files, records by SOP Instance UID."""
    from mammo_edge import Predictor

    for dataset in datasets:
        write_dataset(dataset, folder / f"{dataset.SOPInstanceUID}.dcm")
    return {
        record.path.rsplit("/", 1)[-1].removesuffix(".dcm"): record
        for record in Predictor().iter_predict_paths([str(folder)])
    }


@pytest.fixture(scope="module")
def predict_probabilities():
    from mammo_edge import Predictor

    predictor = Predictor()
    return {
        name: predictor.predict(str(EXAMPLES / f"{name}.pgm")).probability
        for name in ("mdb003", "mdb004", "mdb005")
    }


@pytest.fixture()
def receiver():
    scp = ReceivingScp()
    yield scp
    scp.close()


def start_node(out, send_to: str):
    """A node on a free port that scores after STABLE seconds and sends to ``send_to``."""
    return start_serve(out, "--dicom-port", "0", "--stable-after", STABLE, "--send-to", send_to)


@pytest.fixture()
def node(tmp_path, receiver):
    out = tmp_path / "out"
    process, info = start_node(out, f"{receiver.ae_title}@127.0.0.1:{receiver.port}")
    yield out, process, info
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        process.wait(20)


def _summary_values(dataset) -> dict[str, float]:
    """``{tracking identifier: probability}`` of the SR's per-breast and per-exam groups."""
    import highdicom as hd

    from mammo_edge.serve.structured_report import probability_concept

    report = hd.sr.ComprehensiveSR.from_dataset(dataset)
    return {
        group.tracking_identifier: float(
            group.get_measurements(name=probability_concept())[0].value
        )
        for group in report.content.get_image_measurement_groups()
    }


def bad_datasets(study_uid: str) -> dict[str, object]:
    """Objects that must each give an error row: what error code each must get."""
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.encaps import encapsulate
    from pydicom.uid import ExplicitVRLittleEndian, JPEG2000Lossless

    pixels = read_pgm(EXAMPLES / "mdb005.pgm")[::4, ::4].copy()
    for_processing = mammogram_dataset(
        pixels,
        study_uid=study_uid,
        sop_class_uid="1.2.840.10008.5.1.4.1.1.1.2.1",
        intent="FOR PROCESSING",
    )
    chest = mammogram_dataset(
        pixels,
        study_uid=study_uid,
        sop_class_uid="1.2.840.10008.5.1.4.1.1.1.1",
        modality="DX",
    )
    corrupt = mammogram_dataset(pixels, study_uid=study_uid)
    corrupt.file_meta.TransferSyntaxUID = JPEG2000Lossless
    corrupt.PixelData = encapsulate([b"\xff\x4f\xff\x51" + b"\x00garbage" * 64])
    corrupt["PixelData"].VR = "OB"

    no_pixels = Dataset()
    no_pixels.file_meta = FileMetaDataset()
    no_pixels.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    no_pixels.SOPClassUID = "1.2.840.10008.5.1.4.1.1.88.11"  # Basic Text SR
    no_pixels.file_meta.MediaStorageSOPClassUID = no_pixels.SOPClassUID
    no_pixels.SOPInstanceUID = generate_uid()
    no_pixels.file_meta.MediaStorageSOPInstanceUID = no_pixels.SOPInstanceUID
    no_pixels.StudyInstanceUID = study_uid
    no_pixels.SeriesInstanceUID = generate_uid()
    no_pixels.Modality = "SR"
    no_pixels.PatientID = "MIAS-TEST"

    ct = mammogram_dataset(
        pixels, study_uid=study_uid, sop_class_uid="1.2.840.10008.5.1.4.1.1.2", modality="CT"
    )
    return {
        "DICOM_FOR_PROCESSING": for_processing,
        "NOT_A_MAMMOGRAM": chest,
        "CORRUPT": corrupt,
        "DICOM_NO_PIXELS": no_pixels,
        "NOT_A_MAMMOGRAM ": ct,  # an image class the node accepts but does not score
    }


def test_echo(node):
    from pynetdicom import AE
    from pynetdicom.sop_class import Verification

    _, _, info = node
    ae = AE(ae_title="TESTSCU")
    ae.add_requested_context(Verification)
    association = ae.associate("127.0.0.1", info["dicom_port"], ae_title="MAMMOEDGE")
    assert association.is_established
    assert association.send_c_echo().Status == 0x0000
    association.release()


def test_round_trip_sr_overlays_and_revision(node, receiver, tmp_path):
    """Two views scored, SR and overlays sent; a third view later makes revision 2.

    Each revision's SR and the latest row of each instance equal ``predict`` on the
    study's files so far: the pair head weighs each breast against the other.
    """
    from mammo_edge.serve.structured_report import read_probabilities

    out, process, info = node
    study = generate_uid()
    first = [
        mammogram_dataset(read_pgm(EXAMPLES / "mdb003.pgm"), study_uid=study, laterality="L"),
        mammogram_dataset(read_pgm(EXAMPLES / "mdb004.pgm"), study_uid=study, laterality="R"),
    ]
    expected = predict_dicoms(first, tmp_path / "first")
    assert {record.view_group for record in expected.values()} == {"exam"}
    assert send_datasets(info["dicom_port"], first) == [0, 0]

    reports = wait_for(lambda: receiver.by_modality("SR"), what="the SR")
    overlays = wait_for(
        lambda: len(receiver.by_modality("OT")) == 2 and receiver.by_modality("OT"),
        what="two overlays",
    )
    sr = reports[0]
    found = read_probabilities(sr)
    assert set(found) == set(expected)
    for uid, probability in found.items():
        assert probability == pytest.approx(expected[uid].probability, abs=1e-6)
    assert sr.StudyInstanceUID == study and sr.InstanceNumber == 1
    for overlay in overlays:
        assert overlay.SOPClassUID == "1.2.840.10008.5.1.4.1.1.7"
        assert overlay.PhotometricInterpretation == "RGB"
        assert "not for diagnosis" in overlay.SeriesDescription
        assert overlay.BurnedInAnnotation == "YES"
        assert overlay.StudyInstanceUID == study

    records = read_results(out)
    assert len(records) == 2
    for record in records:
        reference = expected[record["sop_instance_uid"]]
        assert record["status"] == "ok"
        for field in ("probability", "breast_probability", "exam_probability", "threshold"):
            assert record[field] == pytest.approx(getattr(reference, field), abs=1e-6)
        assert record["view_group"] == reference.view_group == "exam"
        assert record["study_instance_uid"] == study
        assert record["patient_id"] == "MIAS-TEST"
        assert record["view"] == "MLO"
        assert record["laterality"] == reference.laterality
        assert record["revision"] == 1
        assert record["model_name"] and record["model_sha256"]
        assert (out / record["path"]).is_file()
    assert (out / study / "sr-r1.dcm").is_file()
    summaries = _summary_values(sr)
    by_side = {record.laterality: record.probability for record in expected.values()}
    assert summaries["breast L (highest image)"] == pytest.approx(by_side["L"], abs=1e-6)
    assert summaries["breast R (highest image)"] == pytest.approx(by_side["R"], abs=1e-6)
    assert summaries["exam (highest image)"] == pytest.approx(max(by_side.values()), abs=1e-6)

    later = mammogram_dataset(read_pgm(EXAMPLES / "mdb005.pgm"), study_uid=study, laterality="L")
    expected = predict_dicoms([*first, later], tmp_path / "second")
    assert send_datasets(info["dicom_port"], [later]) == [0]
    wait_for(lambda: len(receiver.by_modality("SR")) == 2, what="the second revision's SR")
    revised = [ds for ds in receiver.by_modality("SR") if ds.InstanceNumber == 2][0]
    found = read_probabilities(revised)
    assert set(found) == set(expected)
    for uid, probability in found.items():
        assert probability == pytest.approx(expected[uid].probability, abs=1e-6)
    records = read_results(out)
    latest = {record["sop_instance_uid"]: record for record in records}
    assert latest[later.SOPInstanceUID]["revision"] == 2
    assert [record["revision"] for record in records[:2]] == [1, 1]
    for uid, record in latest.items():
        for field in ("probability", "breast_probability", "exam_probability"):
            assert record[field] == pytest.approx(getattr(expected[uid], field), abs=1e-6)
    left = max(record.probability for record in expected.values() if record.laterality == "L")
    assert _summary_values(revised)["breast L (highest image)"] == pytest.approx(left, abs=1e-6)
    assert process.poll() is None


def test_bad_instances_give_error_rows(node, receiver):
    out, process, info = node
    study = generate_uid()
    bad = bad_datasets(study)
    good = mammogram_dataset(read_pgm(EXAMPLES / "mdb003.pgm")[::2, ::2].copy(), study_uid=study)
    statuses = send_datasets(info["dicom_port"], [*bad.values(), good])
    assert statuses == [0] * (len(bad) + 1)  # stored first, judged when scored
    records = wait_for(lambda: len(read_results(out)) == len(bad) + 1 and read_results(out))
    by_uid = {record["sop_instance_uid"]: record for record in records}
    for code, dataset in bad.items():
        record = by_uid[dataset.SOPInstanceUID]
        assert record["status"] == "error"
        assert record["error_code"] == code.strip()
        assert record["probability"] is None and record["error_message"]
    assert by_uid[good.SOPInstanceUID]["status"] == "ok"
    # the SR covers the one good image only
    sr = wait_for(lambda: receiver.by_modality("SR"), what="the SR")[0]
    from mammo_edge.serve.structured_report import read_probabilities

    assert list(read_probabilities(sr)) == [good.SOPInstanceUID]
    assert process.poll() is None


def test_compressed_transfer_syntaxes(node, predict_probabilities):
    """RLE and JPEG 2000 lossless instances decode to the same pixels, so the same score."""
    from pydicom.uid import JPEG2000Lossless, RLELossless

    out, _, info = node
    study = generate_uid()
    pixels = read_pgm(EXAMPLES / "mdb004.pgm")
    datasets = []
    for syntax in (RLELossless, JPEG2000Lossless):
        dataset = mammogram_dataset(pixels, study_uid=study)
        dataset.compress(syntax)
        datasets.append(dataset)
    assert send_datasets(info["dicom_port"], datasets) == [0, 0]
    records = wait_for(lambda: len(read_results(out)) == 2 and read_results(out))
    for record in records:
        assert record["status"] == "ok", record
        assert record["probability"] == pytest.approx(predict_probabilities["mdb004"], abs=1e-6)


def test_results_are_the_predict_fields_then_dicom_ones():
    from mammo_edge.records.record import RESULT_FIELDS, PredictionResult
    from mammo_edge.serve.records import SERVE_FIELDS, ServeRecord

    prediction = PredictionResult(
        path="spool/scored/1/2.dcm",
        status="ok",
        probability=0.25,
        label="normal",
        threshold=0.5,
        model_name="m",
        model_version="1",
        model_sha256="0" * 64,
        provider="CPUExecutionProvider",
        image_format="dicom",
    )
    prediction = replace(prediction, view="CC")
    record = ServeRecord(prediction, "2", "1", "1.1", "P", "1.2.840", 1, 3.0, 4.0, 0.5)
    as_dict = record.as_dict()
    assert list(as_dict)[: len(RESULT_FIELDS)] == list(RESULT_FIELDS)
    assert set(SERVE_FIELDS) <= set(as_dict)
    assert ServeRecord.from_dict(as_dict) == record
    assert np.isclose(as_dict["probability"], 0.25)


def test_failed_send_is_retried_until_the_peer_answers(tmp_path):
    """The peer is down when the SR is ready: it is kept, retried, and arrives later."""
    from tests.serve_fixtures import free_port

    out = tmp_path / "out"
    peer_port = free_port()
    process, info = start_node(out, f"LATE@127.0.0.1:{peer_port}")
    try:
        study = generate_uid()
        image = mammogram_dataset(
            read_pgm(EXAMPLES / "mdb006.pgm")[::2, ::2].copy(), study_uid=study
        )
        assert send_datasets(info["dicom_port"], [image]) == [0]
        wait_for(
            lambda: "to LATE@127.0.0.1" in (out.parent / "out.log").read_text(),
            what="a failed send",
        )
        assert len(list((out / "outbox").glob("*.json"))) == 2  # the SR and the overlay wait
        late = ReceivingScp("LATE", port=peer_port)
        try:
            wait_for(lambda: len(late.received) == 2, timeout=90, what="the retried send")
            assert {ds.Modality for ds in late.received} == {"SR", "OT"}
        finally:
            late.close()
        wait_for(lambda: not list((out / "outbox").glob("*.json")), what="an empty outbox")
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(20)
