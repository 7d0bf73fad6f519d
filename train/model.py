"""Compatibility names for the seed CNN, which now lives in ``train.architectures.seed``.

New code picks an architecture by name with ``train.architectures.get``.
"""

from __future__ import annotations

from .architectures.seed import BATCH_SIZE, LEARNING_RATE, SEED_PARAMETER_COUNT, build_seed_cnn

__all__ = ["BATCH_SIZE", "LEARNING_RATE", "SEED_PARAMETER_COUNT", "build_seed_cnn"]
