"""The model: which file, verified how, run where, and what it promises.

A model is one ONNX file that describes itself. :mod:`.registry` finds it (a shipped name,
a folder with a ``manifest.json``, a file) and checks its SHA-256; :mod:`.providers` opens
the onnxruntime session on the device asked for; :mod:`.metadata` reads the contract the
file carries (preprocessing, classes, operating points, figures); :mod:`.heads` holds the
small logistic heads applied after the network (single view, pair) and :mod:`.logistic`
fits them; :mod:`.onnx_model` ties these into :class:`Model` (``load``, ``score``);
:mod:`.onnx_props` rewrites a file's metadata without the ``onnx`` package (calibrate);
:mod:`.info` is what ``mammo-edge info`` shows.
"""

from ..lazy import exports

__all__, __getattr__ = exports(
    __name__,
    {
        "Model": "onnx_model",
        "ModelMetadata": "metadata",
        "MetadataError": "metadata",
        "resolve_model": "registry",
        "create_session": "providers",
    },
)
