"""``mammo-edge explain``: a heatmap per image, its peak, and an overlay PNG.

For each input, ``DIR/explain.jsonl`` gets the ``predict`` record plus ``peak_x``,
``peak_y`` (the heatmap's maximum in the original image's pixels, x from the left, y from
the top), ``peak_value``, ``heatmap_method`` and ``overlay`` (the PNG under
``DIR/overlays/``). The heatmap is the model's own lesion map when its metadata describes
one, else occlusion sensitivity (:mod:`mammo_edge.explain.explainer`).
"""

from __future__ import annotations

import json
from enum import Enum
from pathlib import Path
from typing import Annotated

import typer

from mammo_edge.commands.common import (
    EXIT_OK,
    EXIT_SOME_FAILED,
    EXIT_USAGE_OR_MODEL,
    Terminated,
    expand_or_fail,
    make_folder,
    open_predictor,
    progress_bar,
    sigterm_as_exception,
    stop_reason,
)
from mammo_edge.commands.common import (
    announce as common_announce,
)
from mammo_edge.commands.options import (
    BatchSizeOption,
    Device,
    DeviceOption,
    FromListOption,
    GroupBy,
    GroupByOption,
    ModelOption,
    OperatingPointOption,
    QuietOption,
    ThreadsOption,
    ThresholdOption,
    folder_out_option,
    input_arguments,
    paths_argument,
)

OVERLAY_FOLDER = "overlays"
RECORDS_NAME = "explain.jsonl"


class Method(str, Enum):
    auto = "auto"
    heatmap = "heatmap"
    occlusion = "occlusion"


#: What explain and report share: the inputs and how the heatmap is made.
PathsArgument = paths_argument(
    "Image files, folders, glob patterns or @list files (as for predict)."
)
OutOption = folder_out_option(
    "Folder for explain.jsonl and overlays/*.png (created if missing).", show_default=False
)
MethodOption = Annotated[
    Method,
    typer.Option(help="auto: the model's own heatmap when its metadata has one, else occlusion."),
]


def explain_command(
    paths: PathsArgument = None,
    out: OutOption = ...,  # type: ignore[assignment]
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
    quiet: QuietOption = False,
    from_list: FromListOption = None,
    operating_point: OperatingPointOption = None,
    group_by: GroupByOption = GroupBy.auto,
) -> int:
    """Show where the model looked: heatmap overlays and peak coordinates per image.

    Exit code 0 when every input was explained, 2 when some failed (error records are
    written for them), 1 for usage or model errors, 130 after Ctrl-C, 143 after SIGTERM
    (the records finished so far are kept).
    """
    from mammo_edge.records.outputs import exclusive_output

    records_path = out / RECORDS_NAME
    with sigterm_as_exception():
        explainer, inputs = open_explainer(
            input_arguments(paths, from_list),
            model,
            method.value,
            threshold,
            batch_size,
            threads,
            device,
            writes=[records_path],
            writes_into=[out / OVERLAY_FOLDER],
            operating_point=operating_point,
            group_by=group_by,
        )
        make_folder(out)
        with exclusive_output(records_path):
            if not quiet:
                announce(explainer, len(inputs))
            written, failed = _write_explanations(explainer, inputs, out, overlay_size, quiet)
    if not quiet:
        summary = f"explained {written - failed} of {written} input(s); wrote {records_path}"
        if failed:
            summary += f"; {failed} failed (see error_code and error_message)"
        typer.echo(summary, err=True)
    raise typer.Exit(EXIT_SOME_FAILED if failed else EXIT_OK)


def _write_explanations(
    explainer, inputs: list[str], out: Path, overlay_size: int, quiet: bool
) -> tuple[int, int]:
    """Draw each overlay and write each record as it comes: ``(written, failed)``."""
    from mammo_edge.explain.explainer import explain_result, with_exam_fields

    records_path = out / RECORDS_NAME
    written = failed = 0

    def explained_with_overlays():
        for explained in explainer.iter_explain(inputs):
            yield explain_result(explained, _draw_overlay(explained, out, overlay_size))

    try:
        with (
            records_path.open("w", encoding="utf-8") as records,
            progress_bar(len(inputs), "explaining", quiet=quiet) as bar,
        ):
            for result in with_exam_fields(explained_with_overlays(), explainer.predictor):
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
    return written, failed


def _draw_overlay(explained, out: Path, overlay_size: int) -> str | None:
    """Write the overlay PNG of one explained image; its path relative to ``out``."""
    from mammo_edge.explain.explainer import image_file_stem, render_overlay, write_png

    if explained.peak is None or explained.item.pixels is None:
        return None
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
    return overlay


def open_explainer(
    paths: list[str],
    model: str | None,
    method: str,
    threshold: float | None,
    batch_size: int | None,
    threads: int | None,
    device,
    *,
    writes: list[Path] = (),
    writes_into: list[Path] = (),
    operating_point: str | None = None,
    group_by=None,
):
    """Expand the inputs and load the model: ``(Explainer, input paths)``.

    Args:
        device, group_by: the verb's choices, as :func:`~.common.open_predictor` takes them.
        writes, writes_into: the files the verb will write and the folders it writes into;
            an input among them is refused before anything is written.

    Raises:
        typer.BadParameter: no input found.
        OutputError: an input is one of the outputs (the CLI exits 1).
        ModelError: the model cannot be used (the CLI exits 1).
    """
    from mammo_edge.explain.explainer import Explainer
    from mammo_edge.records.outputs import refuse_input_overlap

    inputs = expand_or_fail(paths)
    refuse_input_overlap(writes, inputs, folders=writes_into)
    # streams=1: the explainer scores one batch at a time, on every core
    predictor = open_predictor(
        model, device, threads, batch_size, threshold, operating_point, group_by, streams=1
    )
    return Explainer(predictor, method=method), inputs


def announce(explainer, count: int) -> None:
    """The model banner, with how the heatmap is made."""
    common_announce(explainer.predictor, f"heatmap by {explainer.method}; {count} input(s)")
