"""Options the verbs share, declared once: which model, where it runs, how it batches.

Each is a ``typing.Annotated`` alias, so a verb says ``model: ModelOption = None`` and
every verb's ``--help`` reads the same.
"""

from __future__ import annotations

from enum import Enum
from typing import Annotated

import typer


class Device(str, Enum):
    auto = "auto"
    cpu = "cpu"
    cuda = "cuda"


ModelOption = Annotated[
    str | None,
    typer.Option(
        "--model",
        "-m",
        help="Installed model name (lite0, the default; seed, seed-int8, seed-published; see "
        "`mammo-edge info`), model folder, or .onnx file. "
        "Default: $MAMMO_EDGE_MODEL, else the shipped default.",
    ),
]
ThresholdOption = Annotated[
    float | None,
    typer.Option(
        min=0.0,
        max=1.0,
        help="Decision threshold for 'abnormal' (probability >= threshold). "
        "Default: the model's own threshold.",
    ),
]
BatchSizeOption = Annotated[
    int | None,
    typer.Option(
        min=1,
        help="Images per inference call (default: sized from the model's input: "
        "16 for the seed, 2 for lite0).",
        show_default=False,
    ),
]
ThreadsOption = Annotated[
    int | None,
    typer.Option(min=1, help="onnxruntime intra-op threads. Default: one per core."),
]
DeviceOption = Annotated[Device, typer.Option(help="auto takes CUDA when onnxruntime offers it.")]
