"""The heatmap overlay of one scored image as an RGB Secondary Capture (highdicom).

The picture is :func:`mammo_edge.explain.explainer.render_overlay`'s (the image in gray, the heatmap
in colour, the peak circled; longer side at most 1024 px), with "RESEARCH USE - NOT FOR
DIAGNOSIS" burned in at the top, and the same words in (0008,103E) Series Description and
(0020,4000) Image Comments. (0028,0301) Burned In Annotation is YES.
"""

from __future__ import annotations

import cv2
import numpy as np

from mammo_edge.explain.explainer import HeatmapGrid, Peak, render_overlay
from mammo_edge.images.preprocess import Geometry
from mammo_edge.serve.source_header import writable_header
from mammo_edge.serve.structured_report import RESEARCH_USE, derived_uid

OVERLAY_SERIES_NUMBER = 9902
BANNER = RESEARCH_USE.upper()


def overlay_pixels(
    pixels: np.ndarray, grid: HeatmapGrid, geometry: Geometry, peak: Peak
) -> np.ndarray:
    """``(h, w, 3)`` uint8 RGB: the explain overlay with the research-use banner."""
    bgr = render_overlay(pixels, grid, geometry, peak)
    height, width = bgr.shape[:2]
    scale = max(0.35, width / 1400)
    thickness = max(1, round(scale * 2))
    (text_width, text_height), baseline = cv2.getTextSize(
        BANNER, cv2.FONT_HERSHEY_SIMPLEX, scale, thickness
    )
    band = text_height + baseline + 8
    cv2.rectangle(bgr, (0, 0), (width, band), (0, 0, 0), cv2.FILLED)
    origin = (max(2, (width - text_width) // 2), text_height + 4)
    cv2.putText(
        bgr,
        BANNER,
        origin,
        cv2.FONT_HERSHEY_SIMPLEX,
        scale,
        (255, 255, 255),
        thickness,
        cv2.LINE_AA,
    )
    return np.ascontiguousarray(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))


def build_overlay(source, rgb: np.ndarray, geometry: Geometry, instance_number: int):
    """The Secondary Capture of ``rgb``, in the source image's study, one series per study.

    Args:
        source: the pydicom dataset of the scored image (header suffices).
        rgb: ``(h, w, 3)`` uint8 from :func:`overlay_pixels`.
        geometry: the image's preprocessing geometry (where the chest wall was found).
        instance_number: position of the image in the study's scoring.

    Returns:
        a ``highdicom.sc.SCImage`` whose UIDs are derived from the source's, so writing it
        again after a crash makes the same object.
    """
    import highdicom as hd

    # highdicom copies patient and study from the source: absent type-2 values are empty.
    source = writable_header(source)
    study_uid = str(source.StudyInstanceUID)
    laterality = str(source.get("ImageLaterality", "") or source.get("Laterality", "") or "")
    image = hd.sc.SCImage.from_ref_dataset(
        ref_dataset=source,
        pixel_array=rgb,
        photometric_interpretation=hd.PhotometricInterpretationValues.RGB,
        bits_allocated=8,
        coordinate_system=hd.CoordinateSystemNames.PATIENT,
        series_instance_uid=derived_uid(study_uid, "overlay-series"),
        series_number=OVERLAY_SERIES_NUMBER,
        sop_instance_uid=derived_uid(str(source.SOPInstanceUID), "overlay"),
        instance_number=instance_number,
        manufacturer="mammo-edge",
        laterality=laterality if laterality in ("L", "R") else None,
        patient_orientation=_orientation(source, geometry),
    )
    image.SeriesDescription = f"mammo-edge heatmap ({RESEARCH_USE})"[:64]
    image.ImageComments = (
        f"{RESEARCH_USE}. Heatmap of the abnormality model over image "
        f"{source.SOPInstanceUID}; the circle marks its peak."
    )
    image.BurnedInAnnotation = "YES"
    image.ImageType = ["DERIVED", "SECONDARY"]
    return image


def _orientation(source, geometry: Geometry) -> tuple[str, str]:
    """(0020,0020) Patient Orientation of the overlay, which has the source's geometry.

    highdicom takes one direction letter per axis, so the source's first letters are kept
    (``A\\FR`` becomes ``A\\F``). A source without one gets the row direction from where
    the model found the chest wall (``A`` when on the left, ``P`` when on the right) and
    ``F`` (feet) down the columns, as mammograms are displayed.
    """
    values = source.get("PatientOrientation")
    if values and len(values) == 2:
        first = [str(value)[:1].upper() for value in values]
        if all(letter in "APLRHF" and letter for letter in first):
            return first[0], first[1]
    return ("P" if geometry.flipped else "A"), "F"
