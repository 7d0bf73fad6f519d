"""``python -m export COMMAND [OPTIONS]``: the one entry point of the export step.

Each command is a thin verb over a library module, imported only when it runs, so
``--help`` and bad options answer without loading TensorFlow or onnxruntime's quantiser.
``python -m export OPTIONS`` (the first argument an option) is ``python -m export onnx
OPTIONS``, so the commands the model cards and reports quote keep working.
"""

from __future__ import annotations

import sys
from collections.abc import Callable

#: Every command and what it does, in the order ``--help`` lists them.
COMMANDS = {
    "onnx": "a trained Keras model -> verified, self-describing ONNX (+ INT8, ship); the default",
    "int8": "an exported FP32 ONNX model -> NAME-int8, kept only through the ΔAUC gate",
    "card": "render a shipped model's MODEL_CARD.NAME.md again from its metadata and report",
    "single-view": "give a shipped pair-head model the single-view head and operating points",
}
DEFAULT_COMMAND = "onnx"


def command_main(command: str) -> Callable[[list[str] | None], int]:
    """The ``main(argv)`` of ``command`` (a key of :data:`COMMANDS`), imported on use."""
    if command == "onnx":
        from .onnx_command import main
    elif command == "int8":
        from .int8 import main
    elif command == "card":
        from .card import main
    elif command == "single-view":
        from .single_view import main
    else:
        raise KeyError(f"no command {command!r}; expected one of {', '.join(COMMANDS)}")
    return main


def usage() -> str:
    """The list of commands, for ``python -m export --help``."""
    width = max(len(command) for command in COMMANDS)
    lines = [
        "usage: python -m export [COMMAND] [OPTIONS]",
        "",
        "commands (without one, `python -m export OPTIONS` runs `onnx`):",
        *(f"  {command:<{width}}  {summary}" for command, summary in COMMANDS.items()),
        "",
        "`python -m export COMMAND --help` gives a command's options; `onnx`'s follow.",
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Run the command named by the first argument, else ``onnx`` with all arguments.

    An unknown first word that is not an option is refused with the list of commands
    (exit 2), rather than handed to ``onnx`` as a stray argument.
    """
    arguments = list(sys.argv[1:] if argv is None else argv)
    if arguments and arguments[0] in COMMANDS:
        return command_main(arguments[0])(arguments[1:])
    if arguments and not arguments[0].startswith("-"):
        print(f"error: no command {arguments[0]!r}\n\n{usage()}", file=sys.stderr)
        return 2
    if arguments and arguments[0] in ("-h", "--help"):
        print(usage())
    return command_main(DEFAULT_COMMAND)(arguments)
