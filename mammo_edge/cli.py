"""The ``mammo-edge`` command: a thin layer of verbs over the library.

Each verb lives in its own module under :mod:`mammo_edge.commands`. Exit codes:
0 every input scored, 2 some inputs failed (the rest were scored and written),
1 usage or model errors, 130 interrupted (Ctrl-C); ``predict`` also exits 143 after
SIGTERM (results kept, like Ctrl-C) and 141 when its output is closed (``| head``).
"""

from __future__ import annotations

import logging
import sys

import typer

try:  # typer >= 0.20 vendors click; older releases depend on it
    from typer._click.exceptions import ClickException, NoArgsIsHelpError
except ImportError:  # pragma: no cover - depends on the installed typer
    from click.exceptions import ClickException, NoArgsIsHelpError

from mammo_edge import __version__
from mammo_edge.commands import bench, calibrate, evaluate, explain, info, predict, report, serve
from mammo_edge.commands.common import (
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_SOME_FAILED,  # noqa: F401  (the exit-code table, re-exported)
    EXIT_TERMINATED,
    EXIT_USAGE_OR_MODEL,
    Terminated,
)
from mammo_edge.errors import ModelError, OutputError

app = typer.Typer(
    name="mammo-edge",
    help=(
        "Flag abnormal mammograms with a small CNN run through onnxruntime. "
        "Research use only: not a medical device."
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)
app.command("predict")(predict.predict_command)
app.command("info")(info.info_command)
app.command("evaluate")(evaluate.evaluate_command)
app.command("calibrate")(calibrate.calibrate_command)
app.command("explain")(explain.explain_command)
app.command("report")(report.report_command)
app.command("serve")(serve.serve_command)
app.command("bench")(bench.bench_command)


def _show_version(value: bool) -> None:
    if value:
        import onnxruntime

        typer.echo(f"mammo-edge {__version__} (onnxruntime {onnxruntime.__version__})")
        raise typer.Exit(EXIT_OK)


@app.callback()
def _root(
    version: bool = typer.Option(
        False,
        "--version",
        callback=_show_version,
        is_eager=True,
        help="Print the mammo-edge and onnxruntime versions and exit.",
    ),
) -> None:
    """Flag abnormal mammograms (research use only)."""


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``mammo-edge`` script; returns the process exit code."""
    logging.basicConfig(format="mammo-edge: warning: %(message)s", level=logging.WARNING)
    try:
        outcome = app(args=argv, prog_name="mammo-edge", standalone_mode=False)
    except NoArgsIsHelpError as error:
        help_text = error.format_message()  # typer's rich help prints itself and returns ""
        if help_text.strip():
            typer.echo(help_text)
        return EXIT_OK
    except ClickException as error:
        # click exits 2 on usage errors; here 2 means "some inputs failed", so usage is 1.
        error.show()
        return EXIT_USAGE_OR_MODEL
    except (ModelError, OutputError) as error:
        typer.echo(f"mammo-edge: error: {error}", err=True)
        return EXIT_USAGE_OR_MODEL
    except (KeyboardInterrupt, typer.Abort):
        typer.echo("mammo-edge: interrupted", err=True)
        return EXIT_INTERRUPTED
    except Terminated:  # SIGTERM before a verb had anything to keep
        typer.echo("mammo-edge: terminated (SIGTERM)", err=True)
        return EXIT_TERMINATED
    return outcome if isinstance(outcome, int) else EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
