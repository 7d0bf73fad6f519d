"""Images: from a path or an array to the model's input, one contract for every caller.

:mod:`.inputs` expands what the user named (files, folders, globs, ``@list`` files);
:mod:`.decode` reads the bytes of any supported format to 8-bit gray (PGM, PNG, JPEG,
TIFF, BMP, and DICOM through :mod:`.dicom` and :mod:`.headers`, with :mod:`.bitdepth` for
high-bit-depth containers, :mod:`.dicom_tags` for what a header says of the exam, breast
and view); :mod:`.guard` refuses what is not a mammogram;
:mod:`.breast` segments the breast and :mod:`.preprocess` turns it into model input (the
one place pixels are resized; ``train`` imports it); :mod:`.calcifications` measures the
full-resolution evidence a head may read; :mod:`.facts` reads headers without decoding;
:mod:`.pipeline` runs the chain for one input and scores a batch (:class:`LoadedImage`).
"""

from ..lazy import exports

__all__, __getattr__ = exports(
    __name__,
    {
        "LoadedImage": "pipeline",
        "load_input": "pipeline",
        "PreprocessConfig": "preprocess",
        "Geometry": "preprocess",
        "DecodedImage": "decode",
        "load_image": "decode",
        "iter_inputs": "inputs",
        "expand_inputs": "inputs",
    },
)
