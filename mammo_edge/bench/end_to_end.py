"""End to end in this process: files read, decoded, preprocessed, scored and made records.

The same :class:`~mammo_edge.predictor.Predictor` and local engine as ``mammo-edge
predict`` (decoding threads ahead of ``streams`` inference calls, exam grouping), over
files on disk. Only files that load are timed: :func:`screen_inputs` sorts them out first
and counts the others by error code, since a file refused in a millisecond would
otherwise inflate images/s.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np


@dataclass
class ScreenedInputs:
    """The files of a bench run, sorted by whether they load for one model.

    Attributes:
        paths: files that load (decode, guard, preprocess), in input order: the timed set.
        model_input: their ``(N, H, W, 1)`` float32 model input, for the model alone.
        errors: error code -> how many files failed with it (not timed).
    """

    paths: list[str]
    model_input: np.ndarray
    errors: Counter = field(default_factory=Counter)

    @property
    def error_count(self) -> int:
        return sum(self.errors.values())

    def errors_text(self) -> str:
        """``"2 NOT_AN_IMAGE, 1 NO_BREAST_FOUND"`` (empty when none failed)."""
        return ", ".join(f"{count} {code}" for code, count in sorted(self.errors.items()))


def screen_inputs(predictor, paths: Sequence[str | Path]) -> ScreenedInputs:
    """Load every file once through ``predictor`` (its model's preprocessing).

    Returns:
        The files that load with their model input, and the others counted by error code.
    """
    kept: list[str] = []
    arrays: list[np.ndarray] = []
    errors: Counter = Counter()
    for path in map(str, paths):
        loaded = predictor.load(path, path)
        if loaded.ok:
            kept.append(path)
            arrays.append(loaded.model_input)
        else:
            errors[loaded.error_code or "UNKNOWN"] += 1
    preprocess = predictor.metadata.preprocess
    empty = np.zeros((0, preprocess.height, preprocess.width, 1), dtype=np.float32)
    stacked = np.stack(arrays).astype(np.float32, copy=False) if arrays else empty
    return ScreenedInputs(kept, stacked, errors)


def end_to_end_rate(predictor, paths: Sequence[str]) -> float:
    """Images/s of ``predictor.iter_predict(paths)``, every record consumed.

    Raises:
        RuntimeError: a file that loaded during screening failed now (it changed on disk).
    """
    if not paths:
        raise ValueError("no files to time")
    started = time.perf_counter()
    failed = [record.path for record in predictor.iter_predict(paths) if not record.ok]
    elapsed = time.perf_counter() - started
    if failed:
        raise RuntimeError(f"{len(failed)} file(s) failed while timed, e.g. {failed[0]}")
    return len(paths) / elapsed
