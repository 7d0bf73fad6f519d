"""Real labelled images, for parity checks and INT8 calibration: MIAS, or the images of a
dataset manifest (``docs/datasets.md``) a model was trained on.

The batch itself is made by :func:`train.images.mias_batch`, the one image-to-batch helper.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mammo_edge.images.preprocess import PreprocessConfig
from train.dataset import open_training_set
from train.images import mias_batch
from train.mias import MiasError

from .errors import ExportError


@dataclass(frozen=True)
class LabelledBatch:
    """Preprocessed images with their MIAS references and 0/1 labels."""

    references: tuple[str, ...]
    labels: np.ndarray
    batch: np.ndarray
    source: str
    dataset_sha256: str

    def subset(self, references: tuple[str, ...]) -> LabelledBatch:
        """The images named by ``references``, in that order.

        Raises:
            ExportError: a reference is not in this batch (e.g. predictions.csv from a
                different dataset than --data).
        """
        position = {reference: index for index, reference in enumerate(self.references)}
        unknown = [reference for reference in references if reference not in position]
        if unknown:
            raise ExportError(
                f"{len(unknown)} image(s) of the predictions are not in {self.source} "
                f"(first: {unknown[0]}); were the predictions made on another dataset?"
            )
        indices = [position[reference] for reference in references]
        return LabelledBatch(
            references=tuple(references),
            labels=self.labels[indices],
            batch=self.batch[indices],
            source=self.source,
            dataset_sha256=self.dataset_sha256,
        )


def load_mias_batch(path: Path, config: PreprocessConfig) -> LabelledBatch:
    """Read every image of the MIAS folder or archive, or of the manifest ``.csv``, at
    ``path`` and preprocess it.

    Returns:
        A LabelledBatch with a (N, S, S, 1) float32 batch, S = ``config.input_size``.

    Raises:
        ExportError: the data is missing or unreadable (the MIAS reader's message kept).
    """
    try:
        dataset = open_training_set(path)
        references = tuple(record.reference for record in dataset.records)
        batch = mias_batch(dataset, references, config)
        fingerprint = dataset.sha256()
    except MiasError as error:
        raise ExportError(f"cannot read the data: {error}") from None
    return LabelledBatch(
        references=references,
        labels=np.asarray([record.label for record in dataset.records]),
        batch=batch,
        source=str(path),
        dataset_sha256=fingerprint,
    )
