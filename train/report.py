"""Writing a run's outputs: metrics.json and predictions.csv."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

PREDICTION_COLUMNS = ["image", "patient", "fold", "label", "probability"]


def _finite(value):
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {key: _finite(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(item) for item in value]
    return value


def write_metrics(metrics: dict, path: Path) -> None:
    """JSON with NaN written as null, so any JSON reader opens it."""
    path.write_text(json.dumps(_finite(metrics), indent=2, sort_keys=False) + "\n")


def write_predictions(rows: list[dict], path: Path, extra_columns: list[str] = ()) -> None:
    """CSV with ``image,patient,fold,label,probability`` first, then any extra columns."""
    columns = PREDICTION_COLUMNS + list(extra_columns)
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns)
        writer.writeheader()
        for row in rows:
            writer.writerow(
                {
                    **row,
                    "probability": f"{row['probability']:.6f}",
                }
            )
