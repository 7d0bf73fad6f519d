"""``python -m export.card NAME [--card-notes NOTES.md]``: re-render a shipped model's card.

The card's notes (intended use, ablation table, limits) can grow after a model is shipped
(e.g. when more ablation runs finish). Re-exporting would change the ONNX file's creation
date and so its SHA-256; this re-renders ``MODEL_CARD.<NAME>.md`` from the shipped file's
metadata and its export report instead, leaving the model's bytes untouched.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from mammo_edge.registry import MODELS_DIR

from .errors import ExportError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m export.card", description=__doc__)
    parser.add_argument("name", help="shipped model name, e.g. lite0")
    parser.add_argument("--card-notes", type=Path, help="Markdown about the model")
    parser.add_argument("--folder", type=Path, default=MODELS_DIR, help="models folder")
    arguments = parser.parse_args(argv)
    from .pipeline import refresh_model_card

    try:
        card = refresh_model_card(arguments.folder, arguments.name, arguments.card_notes)
    except (ExportError, OSError, KeyError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(f"wrote {card}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
