"""INT8 against FP32 on the MIAS images: does the faster model stay within the export limit?"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .inference import onnx_session
from .sources import MIAS_ARCHIVE


@dataclass(frozen=True)
class Int8Accuracy:
    """FP32 and INT8 scored on the same images (the export issue's limit is on ΔAUC)."""

    images: int
    source: str
    auc_fp32: float
    auc_int8: float
    delta_auc: float
    max_abs_difference: float
    auc_tolerance: float

    @property
    def within_limit(self) -> bool:
        return abs(self.delta_auc) <= self.auc_tolerance


def int8_accuracy(fp32_path: Path, int8_path: Path) -> Int8Accuracy | None:
    """ΔAUC and max |Δp| on every MIAS image; None without the archive."""
    if not MIAS_ARCHIVE.is_file():
        return None
    from sklearn.metrics import roc_auc_score

    from export.images import load_mias_batch
    from export.quantize import AUC_TOLERANCE
    from mammo_edge.preprocess import SEED_PREPROCESS

    data = load_mias_batch(MIAS_ARCHIVE, SEED_PREPROCESS)
    probabilities = []
    for path in (fp32_path, int8_path):
        session = onnx_session(path, threads=None)
        name = session.get_inputs()[0].name
        chunks = [
            session.run(None, {name: data.batch[start : start + 32]})[0]
            for start in range(0, len(data.batch), 32)
        ]
        probabilities.append(np.concatenate(chunks).reshape(-1))
    fp32, int8 = probabilities
    auc_fp32 = float(roc_auc_score(data.labels, fp32))
    auc_int8 = float(roc_auc_score(data.labels, int8))
    return Int8Accuracy(
        images=len(data.batch),
        source=str(MIAS_ARCHIVE),
        auc_fp32=auc_fp32,
        auc_int8=auc_int8,
        delta_auc=auc_int8 - auc_fp32,
        max_abs_difference=float(np.max(np.abs(fp32 - int8))),
        auc_tolerance=AUC_TOLERANCE,
    )
