"""MIAS images as model inputs, through the runtime's own preprocessing contract."""

from __future__ import annotations

import numpy as np

from mammo_edge.preprocess import PreprocessConfig, to_model_input

from .mias import MiasDataset


def load_model_inputs(
    dataset: MiasDataset, references: list[str], config: PreprocessConfig, log=None
) -> dict[str, np.ndarray]:
    """Read and preprocess each distinct image once.

    Returns:
        reference -> ``(size, size, 1)`` float32 model input.
    """
    inputs: dict[str, np.ndarray] = {}
    distinct = list(dict.fromkeys(references))
    for count, reference in enumerate(distinct, start=1):
        inputs[reference] = to_model_input(dataset.read_image(reference), config)
        if log is not None and (count % 50 == 0 or count == len(distinct)):
            log(f"  read {count}/{len(distinct)} images")
    return inputs
