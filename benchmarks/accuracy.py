"""INT8 against FP32 on the MIAS images: does the faster model stay within the export limit?

The comparison itself is the export's (``export.quantize.compare_int8``); this module only
feeds it every MIAS image and keeps the fields the benchmark reports.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

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
    import onnx

    from export.images import load_mias_batch
    from export.quantize import compare_int8
    from mammo_edge.model.metadata import ModelMetadata

    fp32_model = onnx.load(str(fp32_path))
    props = {prop.key: prop.value for prop in fp32_model.metadata_props}
    metadata = ModelMetadata.from_props(props, str(fp32_path))
    threshold = metadata.threshold
    # The images are prepared as the model's own metadata says, never by a fixed recipe.
    data = load_mias_batch(MIAS_ARCHIVE, metadata.preprocess)
    agreement = compare_int8(
        fp32_model,
        onnx.load(str(int8_path)),
        data.batch,
        data.labels,
        threshold,
        image_source=str(MIAS_ARCHIVE),
    )
    return Int8Accuracy(
        images=agreement.images,
        source=agreement.image_source,
        auc_fp32=agreement.auc_fp32,
        auc_int8=agreement.auc_int8,
        delta_auc=agreement.delta_auc,
        max_abs_difference=agreement.max_abs_difference,
        auc_tolerance=agreement.auc_tolerance,
    )
