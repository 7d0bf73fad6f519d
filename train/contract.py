"""The training contract: which architecture a saved model is and how its input is made.

Training writes ``model_contract.json`` beside every ``model.keras``::

    {"arch": "seed",
     "preprocess": {...PreprocessConfig.as_dict()...},
     "outputs": {"probability": 0}}

``python -m export`` reads it and refuses a model without one, so the preprocessing an
exported model carries is the one it was trained with, never a guess from its input size.
This module imports no Keras: the export and tests read contracts cheaply.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from mammo_edge.images.preprocess import PreprocessConfig

CONTRACT_NAME = "model_contract.json"
#: The model's output index that holds the probability of "abnormal".
DEFAULT_OUTPUTS = {"probability": 0}


class ContractError(ValueError):
    """The contract file is missing or does not describe a model."""


@dataclass(frozen=True)
class ModelContract:
    """What a trained model needs to be used correctly.

    Attributes:
        arch: architecture name (``train.architectures.names()``).
        preprocess: how pixels become the model's input.
        outputs: output role -> output index (or name) of the Keras model.
    """

    arch: str
    preprocess: PreprocessConfig
    outputs: dict = field(default_factory=lambda: dict(DEFAULT_OUTPUTS))

    def as_dict(self) -> dict:
        return {"arch": self.arch, "preprocess": self.preprocess.as_dict(), "outputs": self.outputs}


def contract_path(model_path: Path) -> Path:
    """Where the contract of the model file ``model_path`` lives (its folder)."""
    return Path(model_path).parent / CONTRACT_NAME


def write_contract(model_path: Path, contract: ModelContract) -> Path:
    """Write ``contract`` beside ``model_path``; returns the contract's path."""
    path = contract_path(model_path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(path.name + ".partial")
    temporary.write_text(json.dumps(contract.as_dict(), indent=2, sort_keys=True) + "\n")
    os.replace(temporary, path)
    return path


def save_model(model, model_path: Path, contract: ModelContract) -> None:
    """Save a Keras model and its contract side by side."""
    Path(model_path).parent.mkdir(parents=True, exist_ok=True)
    model.save(model_path)
    write_contract(model_path, contract)


def read_contract(path: Path) -> ModelContract:
    """Parse a ``model_contract.json``.

    Raises:
        ContractError: the file is missing, not JSON, or lacks ``arch``/``preprocess``.
    """
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise ContractError(
            f"{path}: no model contract. Training writes {CONTRACT_NAME} beside model.keras "
            "(architecture and preprocessing); for a model trained elsewhere write one by "
            "hand and pass it with --contract."
        ) from None
    except (OSError, ValueError) as error:
        raise ContractError(f"{path}: unreadable model contract ({error})") from None
    if not isinstance(data, dict) or not isinstance(data.get("arch"), str):
        raise ContractError(f"{path}: the contract must be an object with a string 'arch'")
    if not isinstance(data.get("preprocess"), dict):
        raise ContractError(f"{path}: the contract lacks its 'preprocess' object")
    outputs = data.get("outputs", DEFAULT_OUTPUTS)
    if not isinstance(outputs, dict) or "probability" not in outputs:
        raise ContractError(f"{path}: 'outputs' must name the 'probability' output")
    try:
        preprocess = preprocess_from_dict(data["preprocess"])
    except (TypeError, ValueError) as error:
        raise ContractError(f"{path}: 'preprocess' is not usable: {error}") from None
    return ModelContract(arch=data["arch"], preprocess=preprocess, outputs=outputs)


def preprocess_from_dict(values: dict) -> PreprocessConfig:
    """``PreprocessConfig`` from its ``as_dict()`` form (never enumerating its fields here)."""
    from_dict = getattr(PreprocessConfig, "from_dict", None)
    return from_dict(values) if from_dict is not None else PreprocessConfig(**values)
