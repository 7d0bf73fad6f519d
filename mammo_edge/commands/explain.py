"""``mammo-edge explain``: a heatmap per image, its peak, and an overlay PNG.

For each input, ``DIR/explain.jsonl`` gets the ``predict`` record plus ``peak_x``,
``peak_y`` (the heatmap's maximum in the original image's pixels, x from the left, y from
the top), ``peak_value``, ``heatmap_method`` and ``overlay`` (the PNG under
``DIR/overlays/``). The heatmap is the model's own lesion map when its metadata describes
one, else occlusion sensitivity (:mod:`mammo_edge.explain`).
"""

from __future__ import annotations

import json
import sys
from enum import Enum
from pathlib import Path
from typing import Annotated

import typer

from .common import (
    EXIT_OK,
    EXIT_SOME_FAILED,
    EXIT_USAGE_OR_MODEL,
    Terminated,
    make_folder,
    progress_bar,
    sigterm_as_exception,
    stop_reason,
)
from .options import (
    BatchSizeOption,
    Device,
    DeviceOption,
    FromListOption,
    ModelOption,
    ThreadsOption,
    ThresholdOption,
    input_arguments,
)

OVERLAY_FOLDER = "overlays"
RECORDS_NAME = "explain.jsonl"


class Method(str, Enum):
    auto = "auto"
    heatmap = "heatmap"
    occlusion = "occlusion"


#: What explain and report share: the inputs and how the heatmap is made.
PathsArgument = Annotated[
    list[str] | None,
    typer.Argument(
        help="Image files, folders, glob patterns or @list files (as for predict).",
        show_default=False,
    ),
]
MethodOption = Annotated[
    Method,
    typer.Option(help="auto: the model's own heatmap when its metadata has one, else occlusion."),
]


def explain_command(
    paths: PathsArgument = None,
    out: Annotated[
        Path,
        typer.Option(
            "--out",
            "-o",
            help="Folder for explain.jsonl and overlays/*.png (created if missing).",
            file_okay=False,
            show_default=False,
        ),
    ] = ...,  # type: ignore[assignment]
    model: ModelOption = None,
    method: MethodOption = Method.auto,
    threshold: ThresholdOption = None,
    overlay_size: Annotated[
        int,
        typer.Option(min=64, help="Longer side of the overlay PNGs at most (pixels)."),
    ] = 1024,
    batch_size: BatchSizeOption = None,
    threads: ThreadsOption = None,
    device: DeviceOption = Device.auto,
    quiet: Annotated[
        bool, typer.Option("--quiet", "-q", help="No header, progress bar or summary.")
    ] = False,
    from_list: FromListOption = None,
) -> int:
    """Show where the model looked: heatmap overlays and peak coordinates per image.

    Exit code 0 when every input was explained, 2 when some failed (error records are
    written for them), 1 for usage or model errors, 130 after Ctrl-C, 143 after SIGTERM
    (the records finished so far are kept).
    """
    from ..explain import explain_result, image_file_stem, render_overlay, write_png
    from ..outputs import exclusive_output

    records_path = out / RECORDS_NAME
    with sigterm_as_exception():
        explainer, inputs = open_explainer(
            input_arguments(paths, from_list),
            model,
            method.value,
            threshold,
            batch_size,
            threads,
            device.value,
            writes=[records_path],
            writes_into=[out / OVERLAY_FOLDER],
        )
        make_folder(out)
        with exclusive_output(records_path):
            if not quiet:
                announce(explainer, len(inputs))
            failed = written = 0
            try:
                with (
                    records_path.open("w", encoding="utf-8") as records,
                    progress_bar(len(inputs), "explaining", quiet=quiet) as bar,
                ):
                    for explained in explainer.iter_explain(inputs):
                        overlay = None
                        if explained.peak is not None and explained.item.pixels is not None:
                            stem = image_file_stem(explained.index, explained.record.path)
                            overlay = f"{OVERLAY_FOLDER}/{stem}.png"
                            image = render_overlay(
                                explained.item.pixels,
                                explained.grid,
                                explained.item.geometry,
                                explained.peak,
                                max_side=overlay_size,
                            )
                            write_png(out / overlay, image)
                        result = explain_result(explained, overlay)
                        records.write(json.dumps(result.as_dict(), ensure_ascii=False) + "\n")
                        records.flush()
                        written += 1
                        failed += not result.ok
                        if bar is not None:
                            bar.update(1)
            except (KeyboardInterrupt, Terminated) as stop:
                how, code = stop_reason(stop)
                typer.echo(
                    f"mammo-edge: {how}; {written} of {len(inputs)} record(s) in {records_path}",
                    err=True,
                )
                raise typer.Exit(code) from None
            except OSError as error:
                typer.echo(f"mammo-edge: error: cannot write to {out}: {error}", err=True)
                raise typer.Exit(EXIT_USAGE_OR_MODEL) from None
    if not quiet:
        summary = f"explained {written - failed} of {written} input(s); wrote {records_path}"
        if failed:
            summary += f"; {failed} failed (see error_code and error_message)"
        typer.echo(summary, err=True)
    raise typer.Exit(EXIT_SOME_FAILED if failed else EXIT_OK)


def open_explainer(
    paths: list[str],
    model: str | None,
    method: str,
    threshold: float | None,
    batch_size: int | None,
    threads: int | None,
    device: str,
    *,
    writes: list[Path] = (),
    writes_into: list[Path] = (),
):
    """Expand the inputs and load the model: ``(Explainer, input paths)``.

    Args:
        writes, writes_into: the files the verb will write and the folders it writes into;
            an input among them is refused before anything is written.

    Raises:
        typer.BadParameter: no input found.
        OutputError: an input is one of the outputs (the CLI exits 1).
        ModelError: the model cannot be used (the CLI exits 1).
    """
    from ..explain import Explainer
    from ..inputs import expand_inputs
    from ..outputs import refuse_input_overlap
    from ..predictor import Predictor
    from .common import silence_opencv_warnings

    silence_opencv_warnings()
    inputs = expand_inputs(paths)
    if not inputs:
        raise typer.BadParameter(f"no image files found in {', '.join(paths)}", param_hint="PATHS")
    refuse_input_overlap(writes, inputs, folders=writes_into)
    predictor = Predictor(
        model, device=device, threads=threads, threshold=threshold, batch_size=batch_size
    )
    return Explainer(predictor, method=method), inputs


def announce(explainer, count: int) -> None:
    predictor = explainer.predictor
    typer.echo(
        f"model {predictor.model_name} {predictor.model_version} "
        f"(sha256 {predictor.model_sha256[:12]}, "
        f"{'verified' if predictor.sha256_verified else 'unverified'}) on {predictor.provider}, "
        f"threshold {predictor.threshold:g}; heatmap by {explainer.method}; {count} input(s)",
        err=True,
    )
    sys.stderr.flush()
