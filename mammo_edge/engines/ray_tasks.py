"""What runs inside Ray for the Ray engine: the load task and the scoring actor.

Both call :mod:`mammo_edge.images.pipeline`'s functions, the ones the local engine calls, so the
records are the same. Rows cross the object store as numpy columns: text and JSON strings,
the model input as a dense float32 block (zeros where an input failed).
"""

from __future__ import annotations

import json
from dataclasses import astuple

import numpy as np

from mammo_edge.exams import View
from mammo_edge.images.pipeline import LoadedImage, load_input, score_loaded
from mammo_edge.images.preprocess import PreprocessConfig
from mammo_edge.records.record import build_record


def load_batch(
    batch: dict[str, np.ndarray],
    config: PreprocessConfig,
    max_pixels: int,
    evidence: bool = False,
) -> dict[str, np.ndarray]:
    """Ray load task: :func:`~mammo_edge.images.pipeline.load_input` on each path of a batch.

    Never raises for a bad file: its row carries ``error_code`` and ``error_message`` and a
    zero ``model_input`` (columns must be dense).
    """
    loaded = [
        load_input(str(path), config, label=str(path), max_pixels=max_pixels, evidence=evidence)
        for path in batch["path"]
    ]
    model_input = np.zeros((len(loaded), config.height, config.width, 1), dtype=np.float32)
    for row, item in enumerate(loaded):
        if item.model_input is not None:
            model_input[row] = item.model_input
    return {
        "index": np.asarray(batch["index"], dtype=np.int64),
        "path": np.asarray([item.path for item in loaded], dtype=object),
        "model_input": model_input,
        "image_format": np.asarray([item.image_format or "" for item in loaded], dtype=object),
        "warnings": np.asarray([json.dumps(list(item.warnings)) for item in loaded], dtype=object),
        "error_code": np.asarray([item.error_code or "" for item in loaded], dtype=object),
        "error_message": np.asarray([item.error_message or "" for item in loaded], dtype=object),
        "evidence": np.asarray([json.dumps(item.evidence) for item in loaded], dtype=object),
        "view": np.asarray(
            [json.dumps(astuple(item.view) if item.view else None) for item in loaded],
            dtype=object,
        ),
    }


class ScoringActor:
    """Ray actor: one onnxruntime session, built from model bytes checked by SHA-256.

    The bytes come from the object store (``ray.put`` on the driver), not from each node's
    disk, so every node scores with exactly the model the driver verified.
    """

    def __init__(
        self,
        model_refs: list,
        sha256: str,
        source: str,
        device: str,
        threads: int,
        threshold_setting: dict,
        batch_size: int,
    ) -> None:
        import ray

        from mammo_edge.predictor import Predictor

        model_bytes = ray.get(model_refs[0])
        self.predictor = Predictor.from_model_bytes(
            model_bytes,
            sha256=sha256,
            source=source,
            device=device,
            threads=threads,
            **threshold_setting,
            batch_size=batch_size,
            workers=1,
        )
        self.context = self.predictor.record_context

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        items = [
            LoadedImage(
                path=str(batch["path"][row]),
                model_input=batch["model_input"][row] if not batch["error_code"][row] else None,
                image_format=str(batch["image_format"][row]) or None,
                warnings=tuple(json.loads(str(batch["warnings"][row]))),
                error_code=str(batch["error_code"][row]) or None,
                error_message=str(batch["error_message"][row]) or None,
                view=_view_from_json(str(batch["view"][row])),
                evidence=tuple(tuple(pair) for pair in json.loads(str(batch["evidence"][row]))),
            )
            for row in range(len(batch["path"]))
        ]
        scored = score_loaded(items, self.predictor.score_batch, self.predictor.head)
        records = [
            json.dumps(build_record(item, self.context).as_dict(), ensure_ascii=False)
            for item in scored
        ]
        return {
            "index": np.asarray(batch["index"], dtype=np.int64),
            "record": np.asarray(records, dtype=object),
        }


def _view_from_json(text: str) -> View | None:
    values = json.loads(text)
    return View(*values) if values else None
