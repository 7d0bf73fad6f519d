"""``python -m train COMMAND [OPTIONS]``: the one entry point of training and its analyses.

Each command is a thin verb over a library module, imported only when it runs, so
``--help`` and bad options answer without loading TensorFlow. ``python -m train OPTIONS``
without a command is ``python -m train fit OPTIONS`` (the commands docs/ and the
reports quote keep working). This is the only entry: no module of ``train`` runs as a
program of its own.
"""

from __future__ import annotations

import sys
from collections.abc import Callable

#: Every command and what it does, in the order ``--help`` lists them.
COMMANDS = {
    "fit": "train a model on MIAS or a dataset manifest under a protocol; the default",
    "manifest": "write a dataset manifest (docs/datasets.md) from MIAS or CBIS-DDSM",
    "repeated-runs": "the `fit` runs behind `repeated`: one lite0 run per patient-split seed",
    "repeated": "repeated cross-validation of the lite0 recipe from finished `fit` runs",
    "ablation": "the ablation table: out-of-fold predictions of several runs, measured alike",
    "compare": "the leak-vs-honest ROC figure from a seed run and a patient run",
    "compare-runs": "two runs' out-of-fold scores compared image by image (same model?)",
    "localisation": "do heatmap peaks fall on the Info.txt lesion circles?",
    "reproduce-published": "the seed study's table with its published weights, then honestly",
    "single-view": "a pair-head model's single-view head and operating points, out of sample",
}
DEFAULT_COMMAND = "fit"


def command_main(command: str) -> Callable[[list[str] | None], int]:
    """The ``main(argv)`` of ``command`` (a key of :data:`COMMANDS`), imported on use."""
    if command == "fit":
        from .fit_command import main
    elif command == "manifest":
        from .manifest import main
    elif command == "repeated-runs":
        from .repeated_runs import main
    elif command == "repeated":
        from .repeated import main
    elif command == "ablation":
        from .ablation import main
    elif command == "compare":
        from .compare import main
    elif command == "compare-runs":
        from .compare_runs import main
    elif command == "localisation":
        from .localisation import main
    elif command == "reproduce-published":
        from .reproduce_published import main
    elif command == "single-view":
        from .single_view import main
    else:
        raise KeyError(f"no command {command!r}; expected one of {', '.join(COMMANDS)}")
    return main


def usage() -> str:
    """The list of commands, for ``python -m train --help``."""
    width = max(len(command) for command in COMMANDS)
    lines = [
        "usage: python -m train [COMMAND] [OPTIONS]",
        "",
        "commands (without one, `python -m train OPTIONS` runs `fit`):",
        *(f"  {command:<{width}}  {summary}" for command, summary in COMMANDS.items()),
        "",
        "`python -m train COMMAND --help` gives a command's options; `fit`'s follow.",
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Run the command named by the first argument, else ``fit`` with all arguments."""
    arguments = list(sys.argv[1:] if argv is None else argv)
    if arguments and arguments[0] in COMMANDS:
        return command_main(arguments[0])(arguments[1:])
    if arguments and arguments[0] in ("-h", "--help"):
        print(usage())
    return command_main(DEFAULT_COMMAND)(arguments)
