"""One Comprehensive SR per scored study, following TID 1500 (Measurement Report), by highdicom.

Content (docs/serve.md shows it in a viewer)::

    Imaging Measurement Report (TID 1500)
    ├─ observer: device "mammo-edge", the model's name as model name
    ├─ procedure reported: Mammography (SCT 71651007)
    └─ Imaging Measurements
       ├─ per scored image, a Planar ROI group (TID 1410):
       │    tracking id "image <SOPInstanceUID>", algorithm (name, version, parameters
       │    "sha256=...", "threshold=..."), finding site breast + laterality,
       │    region: SCOORD POINT at the heatmap peak, referencing the image;
       │    NUM "Probability of abnormality" {probability} (0..1);
       │    qualitative "Assessment at model threshold": Abnormal / Normal (SCT)
       ├─ per breast (L, R), when the study has more than one image: an image-level group
       │    (TID 1501) whose NUM is the record's ``breast_probability`` (the highest among
       │    that breast's images, :mod:`mammo_edge.exams`), referencing them
       └─ per exam, likewise: ``exam_probability``

Each revision of a study is a new SR instance in one series; its UIDs are derived from the
study UID and revision, so writing a revision again (after a crash) makes the same object.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from mammo_edge.serve.records import ServeRecord
from mammo_edge.serve.source_header import writable_header

#: Private coding scheme for the concepts no standard vocabulary names exactly.
SCHEME = "99MAMMOEDGE"
#: The warning every object carries (ASCII: it goes into DICOM strings of the default
#: character repertoire).
RESEARCH_USE = "research use - not for diagnosis"
SR_SERIES_NUMBER = 9901


class NothingToReport(ValueError):
    """The study has no scored image with a heatmap peak (only error rows): no SR."""


def probability_concept():
    import highdicom as hd

    return hd.sr.CodedConcept("ABNPROB", SCHEME, "Probability of abnormality")


def assessment_concept():
    import highdicom as hd

    return hd.sr.CodedConcept("ASSESSMENT", SCHEME, "Assessment at model threshold")


def derived_uid(study_instance_uid: str, *parts: object) -> str:
    """A UID determined by the study and ``parts`` (2.25 form, PS3.5 B.2)."""
    from pydicom.uid import generate_uid

    return generate_uid(prefix=None, entropy_srcs=[study_instance_uid, *map(str, parts)])


def build_report(
    records: Sequence[ServeRecord],
    evidence: Sequence,
    revision: int,
    *,
    threshold: float,
):
    """The SR of one study revision.

    Args:
        records: the study's records so far (error records are left out of the content).
        evidence: the pydicom datasets (headers suffice) of the scored images, same study.
        revision: the study revision (1, 2, ...).
        threshold: the decision threshold the records used.

    Returns:
        a ``highdicom.sr.ComprehensiveSR``; its patient and study attributes are the first
        image's, empty where it lacks them (:func:`~.source_header.writable_header`).

    Raises:
        NothingToReport: no record of ``records`` is a scored image found in ``evidence``.
    """
    import highdicom as hd

    scored = [record for record in records if record.ok and record.peak_x is not None]
    by_uid = {str(dataset.get("SOPInstanceUID", "")): dataset for dataset in evidence}
    scored = [record for record in scored if record.sop_instance_uid in by_uid]
    if not scored:
        raise NothingToReport("no scored image to report")
    # The report copies patient and study from its evidence: absent type-2 values are empty.
    by_uid = {uid: writable_header(by_uid[uid]) for uid in {r.sop_instance_uid for r in scored}}
    study_uid = scored[0].study_instance_uid
    first = scored[0].prediction
    algorithm = hd.sr.AlgorithmIdentification(
        name=first.model_name,
        version=first.model_version,
        parameters=[f"sha256={first.model_sha256}", f"threshold={threshold:.6f}"],
    )
    groups: list = []
    for record in scored:
        groups.append(_image_group(record, by_uid[record.sop_instance_uid], algorithm))
    # Per-breast and per-exam values are the records' own (mammo_edge.exams): the latest
    # record of a breast or exam carries the value over every image before it.
    for side in ("L", "R"):
        side_records = [record for record in scored if record.prediction.laterality == side]
        if side_records and side_records[-1].prediction.breast_probability is not None:
            value = side_records[-1].prediction.breast_probability
            groups.append(
                _summary_group(side_records, by_uid, algorithm, f"breast {side}", value, side)
            )
    if scored[-1].prediction.exam_probability is not None:
        value = scored[-1].prediction.exam_probability
        groups.append(_summary_group(scored, by_uid, algorithm, "exam", value, None))

    report = hd.sr.MeasurementReport(
        observation_context=hd.sr.ObservationContext(observer_device_context=_observer(first)),
        procedure_reported=hd.sr.CodedConcept("71651007", "SCT", "Mammography"),
        imaging_measurements=groups,
    )
    return hd.sr.ComprehensiveSR(
        evidence=[by_uid[record.sop_instance_uid] for record in scored],
        content=report,
        series_instance_uid=derived_uid(study_uid, "sr-series"),
        series_number=SR_SERIES_NUMBER,
        sop_instance_uid=derived_uid(study_uid, "sr", revision),
        instance_number=revision,
        manufacturer="mammo-edge",
        series_description=f"mammo-edge results ({RESEARCH_USE})"[:64],
        is_complete=True,
        is_final=False,
    )


def _observer(first):
    """The device observer (mammo-edge, the model that scored) of the report's content."""
    import highdicom as hd
    from pydicom.sr.codedict import codes

    return hd.sr.ObserverContext(
        observer_type=codes.DCM.Device,
        observer_identifying_attributes=hd.sr.DeviceObserverIdentifyingAttributes(
            uid=derived_uid(first.model_sha256, "device"),
            name="mammo-edge",
            manufacturer_name="mammo-edge",
            model_name=first.model_name,
        ),
    )


def _image_group(record: ServeRecord, dataset, algorithm):
    import highdicom as hd

    region = hd.sr.ImageRegion(
        graphic_type=hd.sr.GraphicTypeValues.POINT,
        graphic_data=np.array([[record.peak_x, record.peak_y]], dtype=np.float64),
        source_image=hd.sr.SourceImageForRegion.from_source_image(dataset),
    )
    return hd.sr.PlanarROIMeasurementsAndQualitativeEvaluations(
        tracking_identifier=hd.sr.TrackingIdentifier(
            uid=derived_uid(record.sop_instance_uid, "tracking"),
            identifier=f"image {record.sop_instance_uid}"[:64],
        ),
        referenced_region=region,
        finding_type=hd.sr.CodedConcept("404684003", "SCT", "Clinical finding"),
        algorithm_id=algorithm,
        finding_sites=_finding_sites(record.prediction.laterality),
        measurements=[_probability(record.prediction.probability, algorithm)],
        qualitative_evaluations=[_assessment(record.prediction.label)],
    )


def _summary_group(records, by_uid, algorithm, name, value, laterality):
    import highdicom as hd

    study_uid = records[0].study_instance_uid
    top = max(records, key=lambda record: record.prediction.probability)  # holds ``value``
    return hd.sr.MeasurementsAndQualitativeEvaluations(
        tracking_identifier=hd.sr.TrackingIdentifier(
            uid=derived_uid(study_uid, "tracking", name), identifier=f"{name} (highest image)"
        ),
        algorithm_id=algorithm,
        finding_sites=_finding_sites(laterality) if laterality else None,
        measurements=[_probability(value, algorithm)],
        qualitative_evaluations=[_assessment(top.prediction.label)],
        source_images=[
            hd.sr.SourceImageForMeasurementGroup.from_source_image(by_uid[record.sop_instance_uid])
            for record in records
        ],
    )


def _probability(value: float, algorithm):
    import highdicom as hd

    return hd.sr.Measurement(
        name=probability_concept(),
        value=float(value),
        unit=hd.sr.CodedConcept("{probability}", "UCUM", "probability"),
        algorithm_id=algorithm,
    )


def _assessment(label: str | None):
    """SCT Abnormal when the value is at or above the threshold (``label`` not normal)."""
    import highdicom as hd

    abnormal = label is not None and label != "normal"
    value = (
        hd.sr.CodedConcept("263654008", "SCT", "Abnormal")
        if abnormal
        else hd.sr.CodedConcept("17621005", "SCT", "Normal")
    )
    return hd.sr.QualitativeEvaluation(name=assessment_concept(), value=value)


def _finding_sites(laterality: str | None):
    import highdicom as hd
    from pydicom.sr.codedict import codes

    side = {"L": codes.SCT.Left, "R": codes.SCT.Right}.get(laterality or "")
    return [hd.sr.FindingSite(anatomic_location=codes.SCT.Breast, laterality=side)]


def read_probabilities(dataset) -> dict[str, float]:
    """``{SOPInstanceUID: probability}`` of the per-image groups of an SR this module wrote.

    Reads the SR back through highdicom, as a consumer of the report would.
    """
    import highdicom as hd

    report = hd.sr.ComprehensiveSR.from_dataset(dataset)
    found: dict[str, float] = {}
    for group in report.content.get_planar_roi_measurement_groups():
        source = group.roi.ContentSequence[0]  # the IMAGE item the SCOORD is selected from
        uid = source.ReferencedSOPSequence[0].ReferencedSOPInstanceUID
        for measurement in group.get_measurements(name=probability_concept()):
            found[uid] = float(measurement.value)
    return found
