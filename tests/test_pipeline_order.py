"""The Predictor's pipeline under a slow stage: every input once, in input order, bounded."""

from __future__ import annotations

import threading
import time

import numpy as np
from conftest import synthetic_mammogram

from mammo_edge.engines.local import LocalEngine
from mammo_edge.model import onnx_model as model_module
from mammo_edge.predictor import Predictor

BLANK = np.zeros((96, 80), np.uint8)


def _inputs(tmp_path):
    images = [synthetic_mammogram(96, 80, seed) for seed in range(11)]
    inputs: list = list(images)
    inputs.insert(3, str(tmp_path / "missing.pgm"))  # NOT_FOUND
    inputs.insert(7, BLANK)  # NO_BREAST_FOUND
    return inputs


def test_records_keep_input_order_with_slow_loading_and_scoring(
    tiny_models_dir, tmp_path, monkeypatch
):
    inputs = _inputs(tmp_path)
    real_load = model_module.load_input
    started = []
    lock = threading.Lock()

    def slow_load(item, *args, label=None, **kwargs):
        with lock:
            started.append(label)
            position = len(started)
        # Early inputs are the slowest, so the pool finishes them last.
        time.sleep(0.004 * (len(inputs) - position))
        return real_load(item, *args, label=label, **kwargs)

    monkeypatch.setattr(model_module, "load_input", slow_load)
    predictor = Predictor(tiny_models_dir, device="cpu", batch_size=3, workers=3)
    real_score = predictor.score_batch

    def slow_score(batch):
        time.sleep(0.01)
        return real_score(batch)

    monkeypatch.setattr(predictor, "score_batch", slow_score)
    results = list(predictor.iter_predict(inputs))

    expected = [
        str(item) if isinstance(item, str) else f"<array {index}>"
        for index, item in enumerate(inputs)
    ]
    assert [result.path for result in results] == expected
    codes = {result.path: result.error_code for result in results if not result.ok}
    assert codes == {expected[3]: "NOT_FOUND", expected[7]: "NO_BREAST_FOUND"}
    assert sum(result.ok for result in results) == len(inputs) - 2
    assert sorted(started) == sorted(expected)  # every input loaded exactly once


def test_loading_stays_a_bounded_distance_ahead_of_the_consumer(
    tiny_models_dir, tmp_path, monkeypatch
):
    real_load = model_module.load_input
    started = []

    def counting_load(item, *args, label=None, **kwargs):
        started.append(label)
        return real_load(item, *args, label=label, **kwargs)

    monkeypatch.setattr(model_module, "load_input", counting_load)
    predictor = Predictor(tiny_models_dir, device="cpu", batch_size=2, workers=2)
    images = [synthetic_mammogram(96, 80, seed % 5) for seed in range(40)]
    records = predictor.iter_predict(images)
    first = next(records)
    time.sleep(0.2)  # a slow consumer: the pool must not run ahead meanwhile
    read_ahead = 2 * predictor.batch_size + predictor.workers
    streams = predictor.streams
    assert first.path == "<array 0>"
    # Before the first record: the batches being scored, at most read_ahead more submitted.
    assert len(started) <= streams * predictor.batch_size + read_ahead
    rest = list(records)
    assert len(rest) == len(images) - 1 and len(started) == len(images)


def test_scoring_two_batches_at_once_keeps_order_and_records(tiny_models_dir, tmp_path):
    inputs = _inputs(tmp_path)
    predictor = Predictor(tiny_models_dir, device="cpu", batch_size=2, workers=2)
    one = list(LocalEngine(predictor, streams=1).iter_score(inputs))
    several = list(LocalEngine(predictor, streams=3).iter_score(inputs))
    assert [record.path for record in several] == [record.path for record in one]
    assert several == one
