"""``mammo-edge info``: which models are shipped, is each intact, and where they can run.

Without ``--model`` (and without ``$MAMMO_EDGE_MODEL``) it lists every shipped model with
its measured figures; ``--model M`` details one model. What is listed and how it reads:
:mod:`mammo_edge.model.info`.
"""

from __future__ import annotations

import json
import os
from typing import Annotated

import typer


def info_command(
    model: Annotated[
        str | None,
        typer.Option(
            "--model",
            "-m",
            help="Detail one model: installed name (seed, seed-int8, ...), model folder, or "
            ".onnx file. Default: $MAMMO_EDGE_MODEL if set, else list every shipped model.",
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """List the shipped models with their figures, or detail one model (--model)."""
    from mammo_edge.model.info import as_text, describe_model, list_models, listing_as_text
    from mammo_edge.model.registry import MODEL_ENV_VAR

    if model is None and not os.environ.get(MODEL_ENV_VAR):
        listing = list_models()
        if as_json:
            typer.echo(json.dumps(listing, indent=2, ensure_ascii=False))
        else:
            typer.echo(listing_as_text(listing))
        return
    details = describe_model(model)
    if as_json:
        typer.echo(json.dumps(details, indent=2, ensure_ascii=False))
    else:
        typer.echo(as_text(details))
