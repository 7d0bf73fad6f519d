"""A package's public names, imported when first used.

``mammo-edge --help`` and ``import mammo_edge`` must not load numpy, OpenCV or
onnxruntime, yet each subpackage's ``__init__`` names what it offers (``from
mammo_edge.model import Model`` works). :func:`exports` gives a package the module
``__getattr__`` (PEP 562) that imports a name's module on first use.
"""

from __future__ import annotations

from collections.abc import Callable
from importlib import import_module


def exports(package: str, public: dict[str, str]) -> tuple[list[str], Callable[[str], object]]:
    """``(__all__, __getattr__)`` for ``package``.

    Args:
        package: the package's ``__name__``.
        public: each public name and the submodule (relative to ``package``) defining it.
    """

    def attribute(name: str) -> object:
        if name not in public:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        return getattr(import_module(f"{package}.{public[name]}"), name)

    return sorted(public), attribute
