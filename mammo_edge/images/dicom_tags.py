"""What a DICOM header says about an image's exam, breast, view and geometry.

Read from the dataset's attributes only (never the pixels), by the decoder
(:mod:`mammo_edge.images.dicom`), the header-only facts of a dataset manifest
(:mod:`mammo_edge.images.facts`) and the DICOM node (:mod:`mammo_edge.serve.instances`),
so all three agree on an image's laterality and view.
"""

from __future__ import annotations


def chest_wall_from_orientation(dataset) -> str | None:
    """The side of the image the chest wall is on, from (0020,0020) Patient Orientation.

    Its first value is the patient direction along a row (increasing column): ``A``
    (anterior, towards the nipple) means the chest wall is on the left of the image, ``P``
    on the right. Mammography images (MG IOD) must carry it; ImageLaterality alone does not
    say how the image is displayed, so it is recorded but not used for the side.
    """
    orientation = dataset.get("PatientOrientation")
    if not orientation:
        return None
    values = list(orientation) if not isinstance(orientation, str) else orientation.split("\\")
    row_direction = str(values[0]).upper() if values else ""
    if row_direction.startswith("A"):
        return "left"
    if row_direction.startswith("P"):
        return "right"
    return None


def exam_ids(dataset) -> tuple[str | None, str | None]:
    """(0010,0020) Patient ID and (0020,000D) Study Instance UID, ``None`` when empty."""
    return (
        str(dataset.get("PatientID", "") or "").strip() or None,
        str(dataset.get("StudyInstanceUID", "") or "").strip() or None,
    )


def pixel_spacing(dataset) -> float | None:
    """Mean mm per pixel from (0018,1164) Imager or (0028,0030) Pixel Spacing, if sane."""
    for keyword in ("ImagerPixelSpacing", "PixelSpacing"):
        try:
            values = [float(value) for value in dataset.get(keyword) or ()]
        except (TypeError, ValueError):
            continue
        if len(values) == 2 and all(0.005 <= value <= 2.0 for value in values):
            return sum(values) / 2
    return None


def laterality(dataset) -> str | None:
    """``L``/``R`` from (0020,0062) Image Laterality, else (0020,0060) Laterality."""
    for keyword in ("ImageLaterality", "Laterality"):
        value = str(dataset.get(keyword, "") or "").strip().upper()
        if value in ("L", "R"):
            return value
    return None


#: (0054,0220) View Code Sequence codes (SNOMED-RT and SNOMED CT) of the common views.
_VIEW_CODES = {
    "R-10242": "CC",
    "399162004": "CC",
    "R-10226": "MLO",
    "399368009": "MLO",
    "R-10224": "ML",
    "399260004": "ML",
    "R-10228": "LM",
    "399352003": "LM",
    "R-1024A": "XCCL",
    "399192003": "XCCL",
    "R-1024B": "XCCM",
    "399101009": "XCCM",
}
_VIEW_MEANINGS = {
    "cranio-caudal": "CC",
    "medio-lateral oblique": "MLO",
    "medio-lateral": "ML",
    "latero-medial": "LM",
    "exaggerated cranio-caudal": "XCC",
}


def view_position(dataset) -> str | None:
    """The view (``CC``, ``MLO``, ``ML``...) from (0018,5101) View Position, else the first
    item of (0054,0220) View Code Sequence (its code, else its meaning); ``None`` when
    neither says. Upper-case abbreviations, so that L-CC and R-CC compare equal."""
    position = str(dataset.get("ViewPosition", "") or "").strip().upper()
    if position:
        return position
    sequence = dataset.get("ViewCodeSequence")
    if not sequence:
        return None
    item = sequence[0]
    code = str(item.get("CodeValue", "") or "").strip()
    if code in _VIEW_CODES:
        return _VIEW_CODES[code]
    meaning = str(item.get("CodeMeaning", "") or "").strip()
    return _VIEW_MEANINGS.get(meaning.lower(), meaning.upper() or None)
