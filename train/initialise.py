"""Fine-tuning: start a network from a trained model's Keras weights instead of ImageNet.

``python -m train --init MODEL`` copies, layer by layer and by name, the weights of a
trained Keras model (``model.keras`` of an earlier run: e.g. ``reports/lesion/model.keras``,
the lite0 network the shipped models were exported from) into the freshly built network.
Every shipped model was trained on all 258 MIAS images, so a start model has seen every
judged fold of a MIAS cross-validation: its figures on MIAS are not out of sample, and a
gain measured there is no gain. Fine-tune on your own images.
"""

from __future__ import annotations

from pathlib import Path

import keras


class InitError(ValueError):
    """The start model cannot initialise this network (missing, other architecture...)."""


def _weighted_layers(model: keras.Model) -> dict[str, keras.layers.Layer]:
    """Every layer holding weights, by name, nested models (the backbone) opened."""
    found: dict[str, keras.layers.Layer] = {}
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            found.update(_weighted_layers(layer))
        elif layer.weights:
            found[layer.name] = layer
    return found


def initialise_from(model: keras.Model, path: Path) -> int:
    """Copy the weights of the Keras model at ``path`` into ``model``'s layers of that name.

    Returns:
        How many layers were copied.

    Raises:
        InitError: the file cannot be loaded, shares no layer with ``model``, or a shared
            layer's weights have other shapes (another architecture or input channels).
    """
    path = Path(path)
    if not path.is_file():
        raise InitError(f"--init {path}: no such model file (a model.keras of a training run)")
    try:
        source = keras.models.load_model(path, compile=False, safe_mode=True)
    except Exception as error:  # Keras raises many kinds for a file that is not a model
        raise InitError(f"--init {path}: cannot load the Keras model ({error})") from None
    theirs = _weighted_layers(source)
    ours = _weighted_layers(model)
    shared = sorted(set(theirs) & set(ours))
    if not shared:
        raise InitError(f"--init {path}: no layer in common with the {model.name} network")
    for name in shared:
        wanted = [tuple(weight.shape) for weight in ours[name].weights]
        given = [tuple(weight.shape) for weight in theirs[name].weights]
        if wanted != given:
            raise InitError(
                f"--init {path}: layer {name} has weights {given}, the network needs {wanted}"
            )
        ours[name].set_weights(theirs[name].get_weights())
    return len(shared)
