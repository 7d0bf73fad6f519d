"""MIAS images as a model batch: the one place training, export and benchmarks make one.

Pixels come from the runtime's own decoder (``MiasDataset.read_image`` reads through
``mammo_edge.images.decode``) and go through the runtime's own preprocessing contract
(``mammo_edge.images.preprocess.to_model_input``), so a batch made here is what
``mammo-edge predict`` would feed the model for the same files.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from mammo_edge.images.preprocess import PreprocessConfig, to_model_input

from .dataset import TrainingSet
from .mias import MiasDataset


def mias_batch(
    dataset: MiasDataset | TrainingSet,
    references: Sequence[str],
    config: PreprocessConfig,
    log: Callable[[str], None] | None = None,
) -> np.ndarray:
    """Read and preprocess the images named by ``references``, in that order.

    Args:
        dataset: MIAS, or a training set (a manifest's images, any format).
        references: image references (MIAS: ``mdbNNN``); a repeated one is read again.
        config: the model's preprocessing.
        log: called with a progress line every 50 images and at the end.

    Returns:
        ``(N, height, width, 1)`` float32, N = ``len(references)``.

    Raises:
        MiasError: an image is missing or unreadable (the file named).
    """
    batch = np.empty((len(references), config.height, config.width, 1), dtype=np.float32)
    for index, reference in enumerate(references):
        if isinstance(dataset, TrainingSet):  # any format; a DICOM's chest-wall side kept
            batch[index] = dataset.prepare(reference, config).model_input
        else:
            batch[index] = to_model_input(dataset.read_image(reference), config)
        count = index + 1
        if log is not None and (count % 50 == 0 or count == len(references)):
            log(f"  read {count}/{len(references)} images")
    return batch


def load_model_inputs(
    dataset: MiasDataset,
    references: Sequence[str],
    config: PreprocessConfig,
    log: Callable[[str], None] | None = None,
) -> dict[str, np.ndarray]:
    """Read and preprocess each distinct image once.

    Returns:
        reference -> ``(height, width, 1)`` float32 model input.
    """
    distinct = list(dict.fromkeys(references))
    batch = mias_batch(dataset, distinct, config, log)
    return dict(zip(distinct, batch, strict=True))
