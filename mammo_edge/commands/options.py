"""Options the verbs share, declared once: which model, where it runs, how it batches.

Each is a ``typing.Annotated`` alias, so a verb says ``model: ModelOption = None`` and
every verb's ``--help`` reads the same.
"""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated

import typer

from mammo_edge.records.writers import FORMATS


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
        help="Images per inference call (default: sized from the model's input and "
        "shared by the calls in flight: on 2 cores 8 for the seed's 128x128, 1 for "
        "lite0's 512x256).",
        show_default=False,
    ),
]
ThreadsOption = Annotated[
    int | None,
    typer.Option(
        min=1,
        help="onnxruntime intra-op threads of one call at a time. Default: on a multi-core "
        "CPU two calls at once, each on half the cores.",
    ),
]
QuietOption = Annotated[
    bool,
    typer.Option(
        "--quiet",
        "-q",
        help="Nothing on standard error but warnings and errors: no model line, progress "
        "bar or closing summary.",
    ),
]
LabelsOption = Annotated[
    Path,
    typer.Option(
        "--labels",
        "-l",
        help="Truth: a CSV with columns image,label (0/1 or normal/abnormal), optional "
        "patient,group; or a MIAS Info.txt.",
        dir_okay=False,
        show_default=False,
    ),
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
    from mammo_edge.images.inputs import LIST_PREFIX

    arguments = list(paths or []) + [f"{LIST_PREFIX}{path}" for path in from_list or []]
    if not arguments:
        raise typer.BadParameter("give image paths, or --from-list FILE", param_hint="PATHS")
    return arguments


#: ``--format`` choices: the writers of :mod:`mammo_edge.records.writers`, in their order.
OutputFormat = Enum("OutputFormat", {name: name for name in FORMATS}, type=str)


def paths_argument(help: str, *, required: bool = False):
    """A verb's PATHS argument with its own ``help`` (``required``: no ``None`` default)."""
    return Annotated[
        list[str] if required else list[str] | None,
        typer.Argument(help=help, show_default=False),
    ]


def folder_out_option(help: str, *, show_default: bool = True):
    """A ``--out``/``-o`` option naming a folder (a file there is refused)."""
    return Annotated[
        Path,
        typer.Option("--out", "-o", help=help, file_okay=False, show_default=show_default),
    ]


def pem_file_option(help: str):
    """An optional PEM file option: the file must exist."""
    return Annotated[
        Path | None,
        typer.Option(exists=True, dir_okay=False, help=help, show_default=False),
    ]


PathsArgument = paths_argument(
    "Image files, folders (searched recursively), glob patterns, or list files "
    "marked with @ (@paths.txt) holding one path per line."
)
WorkersOption = Annotated[
    int | None,
    typer.Option(min=1, help="Threads decoding images ahead of inference. Default: up to 4."),
]
OutputFormatOption = Annotated[
    OutputFormat,
    typer.Option(
        "--format",
        "-f",
        help="table for people; jsonl or csv stream one record per line.",
    ),
]
OutputFileOption = Annotated[
    Path | None,
    typer.Option(
        "--output",
        "-o",
        help="Write results to this file instead of standard output (csv is written "
        "with a UTF-8 byte-order mark so spreadsheets read it correctly).",
        dir_okay=False,
    ),
]
ResumeOption = Annotated[
    bool,
    typer.Option(
        "--resume",
        help="Continue an interrupted run: inputs already recorded in the --output file "
        "(jsonl or csv) are skipped and new records appended; a half-written last line "
        "is repaired.",
    ),
]
ForceOption = Annotated[
    bool,
    typer.Option(
        "--force",
        help="With --resume: accept a file whose records came from another model or threshold.",
    ),
]
EngineOption = Annotated[
    str,
    typer.Option(
        "--engine",
        help="local: this process. ray: Ray Data over a local Ray instance or a cluster "
        "(needs the ray extra). Any engine module in mammo_edge/engines is found by name.",
    ),
]
AddressOption = Annotated[
    str | None,
    typer.Option(
        help="With --engine ray: the Ray cluster to join (e.g. auto, ray://host:10001). "
        "Default: start a local Ray instance.",
    ),
]
NumCpusOption = Annotated[
    int | None,
    typer.Option(
        "--num-cpus",
        min=1,
        help="With --engine ray and no --address: CPUs of the local Ray instance. "
        "Default: all cores.",
    ),
]


def check_predict_options(output_format, output, resume, force, address, num_cpus) -> None:
    """Refuse ``predict`` option combinations that make no sense, before anything loads."""
    if address is not None and num_cpus is not None:
        raise typer.BadParameter(
            "--num-cpus sizes a local Ray instance; a cluster (--address) has its own",
            param_hint="--num-cpus",
        )
    if resume and output is None:
        raise typer.BadParameter(
            "--resume needs --output FILE (jsonl or csv)", param_hint="--resume"
        )
    if force and not resume:
        raise typer.BadParameter("--force only applies with --resume", param_hint="--force")
    if resume and output_format not in ("jsonl", "csv"):
        raise typer.BadParameter(
            f"--resume works with --format jsonl or csv (one record per line); a "
            f"{output_format} file cannot be continued",
            param_hint="--format",
        )
