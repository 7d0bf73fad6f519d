"""The model architectures ``python -m train --arch NAME`` can train.

Each architecture is one module here exposing:

* ``NAME``: the name ``--arch`` takes and the training contract records;
* ``default_preprocess() -> mammo_edge.images.preprocess.PreprocessConfig``: how pixels become
  this architecture's input;
* ``build(config, seed) -> keras.Model``: a compiled model for the input ``config`` makes.

To add one, write the module and list it in ``_MODULES``.
"""

from __future__ import annotations

import importlib
from types import ModuleType

#: architecture name -> module (imported on first use: building Keras models is slow).
_MODULES = {
    "seed": "train.architectures.seed",
    "lite0": "train.architectures.lite0",
}
DEFAULT_ARCHITECTURE = "seed"


class UnknownArchitecture(ValueError):
    """No architecture of that name."""


def names() -> list[str]:
    """Every architecture name, sorted."""
    return sorted(_MODULES)


def get(name: str) -> ModuleType:
    """The module of architecture ``name``.

    Raises:
        UnknownArchitecture: ``name`` is not one of ``names()``.
    """
    if name not in _MODULES:
        raise UnknownArchitecture(
            f"unknown architecture {name!r}; choose one of: {', '.join(names())}"
        )
    module = importlib.import_module(_MODULES[name])
    if module.NAME != name:
        raise UnknownArchitecture(f"{_MODULES[name]} declares NAME {module.NAME!r}, not {name!r}")
    return module


def preprocess_for(name: str, image_size: int | None = None):
    """Architecture ``name``'s preprocessing, its input side (a non-square input's height,
    the width in proportion) set to ``image_size`` if given."""
    import dataclasses

    config = get(name).default_preprocess()
    if image_size is None:
        return config
    if config.input_height and config.input_width:
        # A non-square input (lite0's 512x256) keeps its shape: image_size is its height.
        width = max(8, round(image_size * config.input_width / config.input_height))
        return dataclasses.replace(
            config, input_size=image_size, input_height=image_size, input_width=width
        )
    return dataclasses.replace(config, input_size=image_size)
