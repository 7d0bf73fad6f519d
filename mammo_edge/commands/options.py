"""Options the verbs share, declared once: which model, where it runs, how it batches.

Each is a ``typing.Annotated`` alias, so a verb says ``model: ModelOption = None`` and
every verb's ``--help`` reads the same.
"""

from __future__ import annotations

from enum import Enum
from pathlib import Path
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
        help="Installed model name (see `mammo-edge info` for the list and the default), "
        "model folder, or .onnx file. "
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
OperatingPointOption = Annotated[
    str | None,
    typer.Option(
        "--operating-point",
        help="A named threshold the model ships (see `mammo-edge info`): triage "
        "(sensitivity >= 0.90 out of sample) or balanced (Youden). Default: the model's "
        "default point. Not with --threshold.",
        show_default=False,
    ),
]


class GroupBy(str, Enum):
    auto = "auto"
    none = "none"


GroupByOption = Annotated[
    GroupBy,
    typer.Option(
        "--group-by",
        help="auto: group an exam's images (DICOM Patient ID + Study UID + laterality, or "
        "mini-MIAS odd/even names) and add partner, breast_probability and "
        "exam_probability to each record; none: every image alone.",
    ),
]
BatchSizeOption = Annotated[
    int | None,
    typer.Option(
        min=1,
        help="Images per inference call (default: sized from the model's input: "
        "16 for the seed's 128x128, 2 for lite0's 512x256).",
        show_default=False,
    ),
]
ThreadsOption = Annotated[
    int | None,
    typer.Option(min=1, help="onnxruntime intra-op threads. Default: one per core."),
]
QuietOption = Annotated[
    bool, typer.Option("--quiet", "-q", help="No header, progress bar or summary.")
]
DeviceOption = Annotated[Device, typer.Option(help="auto takes CUDA when onnxruntime offers it.")]
FromListOption = Annotated[
    list[Path] | None,
    typer.Option(
        "--from-list",
        help="A file listing input paths, one per line ('#' comments; relative paths are "
        "relative to the file's folder); the same as the argument @FILE. May be repeated.",
        dir_okay=False,
        show_default=False,
    ),
]


def input_arguments(paths: list[str] | None, from_list: list[Path] | None) -> list[str]:
    """The verb's PATHS followed by its ``--from-list`` files (as ``@FILE`` arguments).

    Raises:
        typer.BadParameter: neither was given.
    """
    from ..inputs import LIST_PREFIX

    arguments = list(paths or []) + [f"{LIST_PREFIX}{path}" for path in from_list or []]
    if not arguments:
        raise typer.BadParameter("give image paths, or --from-list FILE", param_hint="PATHS")
    return arguments
