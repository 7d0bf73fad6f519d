"""What a received DICOM object is, and whether the service scores it.

The header is read without the pixel data; the pixels are decoded later by the same
reader ``mammo-edge predict`` uses (:func:`mammo_edge.images.pipeline.load_input`), so a received
image and the same file given to ``predict`` get the same probability.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from mammo_edge.errors import ErrorCode
from mammo_edge.images.dicom_tags import laterality, view_position

#: Storage SOP classes the service scores (PS3.4 B.5), by UID.
MG_FOR_PRESENTATION = "1.2.840.10008.5.1.4.1.1.1.2"
MG_FOR_PROCESSING = "1.2.840.10008.5.1.4.1.1.1.2.1"
DX_FOR_PRESENTATION = "1.2.840.10008.5.1.4.1.1.1.1"
DX_FOR_PROCESSING = "1.2.840.10008.5.1.4.1.1.1.1.1"
CR_IMAGE = "1.2.840.10008.5.1.4.1.1.1"
SECONDARY_CAPTURE = "1.2.840.10008.5.1.4.1.1.7"
SCORED_SOP_CLASSES = frozenset(
    {
        MG_FOR_PRESENTATION,
        MG_FOR_PROCESSING,
        DX_FOR_PRESENTATION,
        DX_FOR_PROCESSING,
        CR_IMAGE,
        SECONDARY_CAPTURE,
    }
)
FOR_PROCESSING_SOP_CLASSES = frozenset({MG_FOR_PROCESSING, DX_FOR_PROCESSING})

#: (0008,0070) Manufacturer of the objects the service itself writes. Such an object sent
#: back to the node (a PACS routing everything) is not scored, so results never loop.
OWN_MANUFACTURER = "mammo-edge"


@dataclass(frozen=True)
class InstanceHeader:
    """The identity of a received instance and why it cannot be scored, if it cannot.

    Attributes:
        sop_instance_uid, sop_class_uid, study_instance_uid, series_instance_uid,
        patient_id, laterality, view: see :class:`~mammo_edge.serve.records.ServeRecord`.
        own_output: written by mammo-edge (an SR or overlay routed back): not scored.
        refusal: ``(code, message)`` when the object is readable but not a scorable
            mammogram; ``None`` when it should be decoded and scored.
    """

    sop_instance_uid: str | None
    sop_class_uid: str | None
    study_instance_uid: str | None
    series_instance_uid: str | None
    patient_id: str | None
    laterality: str | None
    view: str | None
    own_output: bool = False
    refusal: tuple[ErrorCode, str] | None = None


def read_header(path: Path) -> InstanceHeader:
    """Read a spooled instance's header (no pixel data). Never raises.

    An unreadable header gives an :class:`InstanceHeader` of ``None`` values without a
    refusal: decoding the file then produces the precise error record (``CORRUPT``,
    ``TRUNCATED``...).
    """
    import pydicom

    try:
        # Large values (the pixels) are left on disk: only their presence is needed here.
        dataset = pydicom.dcmread(path, force=True, defer_size=4096)
        return header_of(dataset, has_pixels="PixelData" in dataset)
    except Exception:  # a damaged header is reported by the decoder's error record
        return InstanceHeader(None, None, None, None, None, None, None)


def header_of(dataset, has_pixels: bool = True) -> InstanceHeader:
    """The :class:`InstanceHeader` of a pydicom dataset."""
    sop_class = _text(dataset.get("SOPClassUID")) or _text(
        getattr(getattr(dataset, "file_meta", None), "MediaStorageSOPClassUID", None)
    )
    header = dict(
        sop_instance_uid=_text(dataset.get("SOPInstanceUID")),
        sop_class_uid=sop_class,
        study_instance_uid=_text(dataset.get("StudyInstanceUID")),
        series_instance_uid=_text(dataset.get("SeriesInstanceUID")),
        patient_id=_text(dataset.get("PatientID")),
        laterality=laterality(dataset),
        view=view_position(dataset),
        own_output=_text(dataset.get("Manufacturer")) == OWN_MANUFACTURER,
    )
    return InstanceHeader(**header, refusal=_refusal(dataset, sop_class, has_pixels))


def _refusal(dataset, sop_class: str | None, has_pixels: bool) -> tuple[ErrorCode, str] | None:
    if not has_pixels:
        return None  # the decoder says DICOM_NO_PIXELS, naming the SOP class
    if sop_class not in SCORED_SOP_CLASSES:
        return (
            ErrorCode.NOT_A_MAMMOGRAM,
            f"SOP class {sop_class or 'unknown'} is not one this service scores "
            "(MG, DX, CR or Secondary Capture image storage)",
        )
    intent = (_text(dataset.get("PresentationIntentType")) or "").upper()
    if sop_class in FOR_PROCESSING_SOP_CLASSES or intent == "FOR PROCESSING":
        return (
            ErrorCode.DICOM_FOR_PROCESSING,
            "a 'FOR PROCESSING' (raw detector) image; send the 'FOR PRESENTATION' image "
            "the modality makes from it",
        )
    modality = (_text(dataset.get("Modality")) or "").upper()
    body_part = (_text(dataset.get("BodyPartExamined")) or "").upper()
    if modality != "MG" and body_part != "BREAST":
        return (
            ErrorCode.NOT_A_MAMMOGRAM,
            f"not a mammogram: (0008,0060) Modality is {modality or 'empty'} and "
            f"(0018,0015) Body Part Examined is {body_part or 'empty'} (expected MG or BREAST)",
        )
    return None


def _text(value) -> str | None:
    if value is None:
        return None
    text = str(value).strip()
    return text or None
