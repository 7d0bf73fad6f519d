"""Progress lines per epoch, for runs that take an hour: which fold, which stage, how far."""

from __future__ import annotations

import time
from collections.abc import Callable

import keras


class EpochLog(keras.callbacks.Callback):
    """Logs ``PREFIX epoch E/N: loss ... (S s)`` at the end of every epoch.

    Args:
        prefix: what is training (``"    patches"``, ``"fold 2 images"``).
        epochs: the epochs planned (early stopping may end sooner).
        log: where the line goes (training's stderr logger).
    """

    def __init__(self, prefix: str, epochs: int, log: Callable[[str], None]) -> None:
        super().__init__()
        self.prefix = prefix
        self.epochs = epochs
        self.log = log
        self.started = time.time()

    def on_epoch_begin(self, epoch: int, logs=None) -> None:
        self.started = time.time()

    def on_epoch_end(self, epoch: int, logs=None) -> None:
        shown = ", ".join(
            f"{name} {value:.3f}"
            for name, value in (logs or {}).items()
            if isinstance(value, int | float)
        )
        self.log(
            f"{self.prefix} epoch {epoch + 1}/{self.epochs}: {shown} "
            f"({time.time() - self.started:.0f} s)"
        )
