"""The Keras model an export converts: loaded from a training run, cut to shipped outputs.

Used by the export itself and by the benchmarks, so both time and convert the same graph.
"""

from __future__ import annotations

from pathlib import Path

import keras

from train.contract import ModelContract

from .contract import TENSOR_OUTPUT_ROLES
from .errors import ExportError


def load_keras(path: Path, contract: ModelContract) -> tuple[keras.Model, str]:
    """The Keras model at ``path`` and how it was loaded.

    A Keras 2 HDF5 file that Keras 3 cannot rebuild from its stored config is rebuilt from
    the contract's architecture and given the file's weights, layer by layer in order.
    """
    if not Path(path).is_file():
        raise ExportError(f"{path}: no such file; pass the model.keras of a training run")
    try:
        return keras.models.load_model(path, compile=False), "keras.models.load_model"
    except (ValueError, OSError, TypeError, KeyError) as error:
        if Path(path).suffix == ".keras":
            raise ExportError(f"{path}: not a loadable Keras model ({error})") from None
        load_error = error
    from train import architectures

    try:
        model = architectures.get(contract.arch).build(contract.preprocess, None)
        model.load_weights(path)
    except (ValueError, OSError, TypeError, KeyError) as error:
        raise ExportError(
            f"{path}: not loadable as a Keras model ({load_error}) nor as weights of the "
            f"{contract.arch!r} architecture ({error})"
        ) from None
    return model, f"{contract.arch} architecture + load_weights (load_model failed: {load_error})"


def exported_model(model: keras.Model, contract: ModelContract) -> keras.Model:
    """``model`` cut to the outputs the export ships: the contract's probability, then its
    heatmap when the contract names one (a model may have more outputs)."""
    outputs = list(model.outputs)
    roles = [role for role in TENSOR_OUTPUT_ROLES if role in contract.outputs]
    if len(outputs) == 1 and roles == ["probability"]:
        return model
    chosen = [output_index(model, contract.outputs[role]) for role in roles]
    picked = [outputs[index] for index in chosen]
    return keras.Model(model.inputs, picked if len(picked) > 1 else picked[0], name=model.name)


def output_index(model: keras.Model, chosen: str | int) -> int:
    """Position among ``model.outputs`` of a contract output (its name or index).

    Raises:
        ExportError: no such output.
    """
    outputs = list(model.outputs)
    if isinstance(chosen, str):
        names = list(model.output_names)
        if chosen not in names:
            raise ExportError(f"contract output {chosen!r} is not among the model's {names}")
        chosen = names.index(chosen)
    if not isinstance(chosen, int) or not 0 <= chosen < len(outputs):
        raise ExportError(f"contract output index {chosen!r} out of range ({len(outputs)})")
    return chosen
