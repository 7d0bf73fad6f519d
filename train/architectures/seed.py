"""The seed study's CNN, layer for layer (117,505 parameters at 128x128 input).

Conv2D 32 (3x3, relu) -> Conv2D 64 -> MaxPool 2 -> Conv2D 64 -> MaxPool 2 -> Dropout 0.25
-> Dense 64 relu -> Dropout 0.25 -> Flatten -> Dense 1 sigmoid.

The seed places Dense(64) *before* Flatten, so it acts per pixel on the 64 channels of the
30x30 feature map; we keep that quirk because it is what makes the count 117,505.
"""

from __future__ import annotations

import keras
from keras import layers

from mammo_edge.images.preprocess import PreprocessConfig

NAME = "seed"
SEED_PARAMETER_COUNT = 117_505
LEARNING_RATE = 1e-3
BATCH_SIZE = 128


def default_preprocess() -> PreprocessConfig:
    """The study's recipe: 128x128 INTER_LINEAR resize, values 0..255 as float32."""
    return PreprocessConfig(input_size=128, interpolation="linear")


def build(config: PreprocessConfig, seed: int | None = None) -> keras.Model:
    """Build and compile the seed CNN for the input ``config`` produces.

    Args:
        config: the preprocessing contract; its ``input_size`` is the input side.
        seed: seed for the RandomNormal(0, 0.02) kernel initialisers.
    """
    return build_seed_cnn(image_size=config.input_size, seed=seed)


def build_seed_cnn(image_size: int = 128, seed: int | None = None) -> keras.Model:
    """Build and compile the seed CNN.

    Args:
        image_size: side of the square grayscale input; 128 in the seed study.
        seed: seed for the RandomNormal(0, 0.02) kernel initialisers.

    Returns:
        A compiled ``keras.Model`` taking ``(N, image_size, image_size, 1)`` float32
        (0..255) and returning ``(N, 1)`` probabilities of "abnormal".
    """

    def init(offset: int) -> keras.initializers.Initializer:
        layer_seed = None if seed is None else seed + offset
        return keras.initializers.RandomNormal(mean=0.0, stddev=0.02, seed=layer_seed)

    model = keras.Sequential(
        [
            keras.Input(shape=(image_size, image_size, 1), name="image"),
            layers.Conv2D(32, (3, 3), activation="relu", kernel_initializer=init(0)),
            layers.Conv2D(64, (3, 3), activation="relu", kernel_initializer=init(1)),
            layers.MaxPooling2D((2, 2)),
            layers.Conv2D(64, (3, 3), activation="relu", kernel_initializer=init(2)),
            layers.MaxPooling2D((2, 2)),
            layers.Dropout(0.25, seed=seed),
            layers.Dense(64, activation="relu", kernel_initializer=init(3)),
            layers.Dropout(0.25, seed=seed),
            layers.Flatten(),
            layers.Dense(1, activation="sigmoid", kernel_initializer=init(4)),
        ],
        name="seed_cnn",
    )
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate=LEARNING_RATE),
        loss="binary_crossentropy",
        metrics=[keras.metrics.BinaryAccuracy(name="accuracy"), keras.metrics.AUC(name="auc")],
    )
    return model
