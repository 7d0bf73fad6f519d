"""The source image's header as the SR and SC writers copy it: every type-2 attribute there.

highdicom copies the patient and study of the SR and Secondary Capture from the scored
image, and reads (0010,0010) Patient's Name, (0010,0020) Patient ID, (0010,0030) Patient's
Birth Date, (0010,0040) Patient's Sex, (0008,0020) Study Date, (0008,0030) Study Time,
(0008,0050) Accession Number, (0008,0090) Referring Physician's Name and (0020,0010)
Study ID as attributes: one absent from the image raised ``AttributeError`` and the
study's SR was never written. All nine are type 2 in the Patient and General Study
modules (PS3.3 C.7.1.1, C.7.2.1): they must be present but may be empty. Research exports
often drop them, and some carry values their VR does not allow (``2026-01-01`` as a DA,
``female`` as Patient's Sex), which highdicom refuses as well.

:func:`writable_header` copies what the image has and writes empty what it lacks or holds
in a form the standard does not allow; the image itself is never changed.
"""

from __future__ import annotations

import copy

#: The type-2 attributes of the Patient and General Study modules the writers copy.
TYPE2_PATIENT_STUDY = (
    "PatientName",
    "PatientID",
    "PatientBirthDate",
    "PatientSex",
    "StudyDate",
    "StudyTime",
    "AccessionNumber",
    "ReferringPhysicianName",
    "StudyID",
)
#: (0010,0040) Patient's Sex: its defined terms (PS3.3 C.7.1.1).
PATIENT_SEX_TERMS = frozenset({"M", "F", "O"})


def writable_header(dataset):
    """A copy of ``dataset`` whose type-2 patient and study attributes are present and valid.

    Args:
        dataset: the pydicom dataset of a scored image (its header suffices).

    Returns:
        a new dataset (the header's elements copied, the pixel data left out) in which each of
        :data:`TYPE2_PATIENT_STUDY` holds the image's value, or is empty where the image
        lacks it or holds a value its VR does not allow. (0008,0060) Modality, type 1 in
        the image but read by highdicom only to check the image is not itself an SR, is
        empty when absent.
    """
    from pydicom.dataset import Dataset

    # Elements are copied, not shared: a writer that sets one must not change the image.
    header = Dataset()
    for element in dataset:
        if element.keyword != "PixelData":
            header.add(copy.deepcopy(element))
    if getattr(dataset, "file_meta", None) is not None:
        header.file_meta = copy.deepcopy(dataset.file_meta)
    for keyword in TYPE2_PATIENT_STUDY:
        value = header.get(keyword)
        if keyword == "PatientSex" and value is not None:
            value = str(value).strip().upper()
        if value is None or not _conformant(keyword, value):
            value = None  # present and empty (zero length)
        setattr(header, keyword, value)
    if "Modality" not in header:
        header.Modality = None
    return header


def _conformant(keyword: str, value) -> bool:
    """Whether highdicom accepts ``value`` for ``keyword`` (an empty value always is)."""
    from pydicom.valuerep import DA, TM

    text = str(value).strip()
    if not text:
        return True
    if keyword == "PatientSex":
        return text in PATIENT_SEX_TERMS
    converter = {"PatientBirthDate": DA, "StudyDate": DA, "StudyTime": TM}.get(keyword)
    if converter is None:
        return True
    try:
        converter(text)
    except ValueError:
        return False
    return True
