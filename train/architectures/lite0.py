"""EfficientNet-Lite0 patch network: ImageNet features, a lesion map, top-k pooling.

The network is fully convolutional. A 1x1 convolution turns the 1280-channel Lite0 head
features (stride 32) into a logit per feature cell; averaging 4x4 cells gives the logit of
one 128-pixel window (a *patch*), so the same weights score a 128x128 training patch (the
mean of its 4x4 cells) and every window of a whole breast (the heatmap). The image's logit
is the mean of its ``TOP_K`` highest window logits plus a learnt offset.

Lite0 has no squeeze-excite and uses ReLU6; batch normalisation stays frozen (inference
mode) because the batches here are small. The ImageNet weights come from
``train/weights/efficientnet_lite0.npz`` (see ``convert_efficientnet_lite0.py`` there); the
RGB stem is summed over its colour channels so a gray image gives what its RGB copy would.

Outputs of the whole-image model: ``probability`` (N, 1) and ``heatmap`` (N, h, w, 1), the
sigmoid of each window's logit, window (i, j) centred on input pixel
``(32 * j + 63.5, 32 * i + 63.5)``.
"""

from __future__ import annotations

from pathlib import Path

import keras
import numpy as np
from keras import layers

from mammo_edge.images.preprocess import PreprocessConfig

from ..weights.lite0_layout import BN_EPSILON, STAGES

NAME = "lite0"
#: The training protocol this architecture is made for (``python -m train --arch lite0``).
PROTOCOL = "lesion"
WEIGHTS = Path(__file__).resolve().parent.parent / "weights" / "efficientnet_lite0.npz"
STRIDE = 32
PATCH_SIZE = 128
WINDOW_CELLS = PATCH_SIZE // STRIDE
TOP_K = 3
HEAD_CHANNELS = 1280
#: A window counts as breast when at least this share of its pixels is breast.
MIN_WINDOW_BREAST = 1 / 8
#: The logit given to windows off the breast (sigmoid = 9e-14).
OFF_BREAST_LOGIT = -30.0
#: The model's outputs by role, as the contract and the ONNX metadata record them; the
#: heatmap grid is in model-input pixels (see ``mammo_edge.explain.explainer``).
OUTPUTS = {
    "probability": "probability",
    "heatmap": "heatmap",
    "heatmap_stride": STRIDE,
    "heatmap_window": PATCH_SIZE,
}


def default_preprocess() -> PreprocessConfig:
    """512x256 breast crop, chest wall left, Lite's (x - 127.5) / 127.5 scaling."""
    return PreprocessConfig(
        input_size=512,
        input_height=512,
        input_width=256,
        interpolation="area",
        pixel_scale=1 / 127.5,
        pixel_offset=-1.0,
        breast_crop=True,
        orientation="chest_wall_left",
    )


def test_preprocess() -> PreprocessConfig:
    """A small input (192x128, two windows) for fast tests of the whole pipeline."""
    return PreprocessConfig(
        **{
            **default_preprocess().as_dict(),
            "input_size": 192,
            "input_height": 192,
            "input_width": 128,
        }
    )


def backbone(pretrained: bool = True, seed: int | None = None) -> keras.Model:
    """Lite0 from a (None, None, 1) image to (h/32, w/32, 1280) features."""
    initializer = keras.initializers.HeNormal(seed=seed)
    image = keras.Input((None, None, 1), name="image")
    x = layers.Conv2D(
        32, 3, 2, "same", use_bias=False, name="stem_conv", kernel_initializer=initializer
    )(image)
    x = _bn_relu6(x, "stem_bn")
    index = 0
    channels = 32
    for expand, kernel, stride, out_channels, repeats in STAGES:
        for repeat in range(repeats):
            step = stride if repeat == 0 else 1
            name = f"block{index}"
            inputs = x
            if expand != 1:
                x = layers.Conv2D(
                    channels * expand,
                    1,
                    use_bias=False,
                    name=f"{name}_expand",
                    kernel_initializer=initializer,
                )(x)
                x = _bn_relu6(x, f"{name}_expand_bn")
            x = layers.DepthwiseConv2D(
                kernel,
                step,
                "same",
                use_bias=False,
                name=f"{name}_depthwise",
                depthwise_initializer=initializer,
            )(x)
            x = _bn_relu6(x, f"{name}_depthwise_bn")
            x = layers.Conv2D(
                out_channels,
                1,
                use_bias=False,
                name=f"{name}_project",
                kernel_initializer=initializer,
            )(x)
            x = layers.BatchNormalization(epsilon=BN_EPSILON, name=f"{name}_project_bn")(x)
            if step == 1 and channels == out_channels:
                x = layers.Add(name=f"{name}_add")([x, inputs])
            channels = out_channels
            index += 1
    x = layers.Conv2D(
        HEAD_CHANNELS, 1, use_bias=False, name="head_conv", kernel_initializer=initializer
    )(x)
    x = _bn_relu6(x, "head_bn")
    model = keras.Model(image, x, name="lite0_backbone")
    if pretrained:
        load_imagenet_weights(model)
    for layer in model.layers:
        if isinstance(layer, layers.BatchNormalization):
            layer.trainable = False
    return model


def _bn_relu6(x, name: str):
    x = layers.BatchNormalization(epsilon=BN_EPSILON, name=name)(x)
    return layers.ReLU(6.0, name=f"{name}_relu6")(x)


def load_imagenet_weights(model: keras.Model, path: Path = WEIGHTS) -> None:
    """Copy the converted PyTorch state dict into the backbone (layer names as above)."""
    state = np.load(path)

    def conv(name: str, key: str) -> None:
        weight = state[key]  # (out, in, kh, kw)
        if name == "stem_conv":
            weight = weight.sum(axis=1, keepdims=True)  # gray = R = G = B
        model.get_layer(name).set_weights([weight.transpose(2, 3, 1, 0)])

    def depthwise(name: str, key: str) -> None:
        weight = state[key]  # (channels, 1, kh, kw) -> (kh, kw, channels, 1)
        model.get_layer(name).set_weights([weight.transpose(2, 3, 0, 1)])

    def norm(name: str, prefix: str) -> None:
        model.get_layer(name).set_weights(
            [
                state[f"{prefix}.{part}"]
                for part in ("weight", "bias", "running_mean", "running_var")
            ]
        )

    conv("stem_conv", "_conv_stem.weight")
    norm("stem_bn", "_bn0")
    index = 0
    for expand, _, _, _, repeats in STAGES:
        for _ in range(repeats):
            name, prefix = f"block{index}", f"_blocks.{index}"
            if expand != 1:
                conv(f"{name}_expand", f"{prefix}._expand_conv.weight")
                norm(f"{name}_expand_bn", f"{prefix}._bn0")
            depthwise(f"{name}_depthwise", f"{prefix}._depthwise_conv.weight")
            norm(f"{name}_depthwise_bn", f"{prefix}._bn1")
            conv(f"{name}_project", f"{prefix}._project_conv.weight")
            norm(f"{name}_project_bn", f"{prefix}._bn2")
            index += 1
    conv("head_conv", "_conv_head.weight")
    norm("head_bn", "_bn1")


class Networks:
    """The backbone and cell head shared by the patch model and the whole-image model."""

    def __init__(self, pretrained: bool = True, seed: int | None = None, dropout: float = 0.3):
        self.backbone = backbone(pretrained, seed)
        self.dropout = layers.Dropout(dropout, seed=seed, name="cell_dropout")
        self.cell_logit = layers.Conv2D(
            1, 1, name="cell_logit", kernel_initializer=keras.initializers.Zeros()
        )
        self.image_offset = layers.Dense(
            1,
            name="image_offset",
            kernel_initializer=keras.initializers.Ones(),
            bias_initializer=keras.initializers.Zeros(),
        )

    def patch_model(self) -> keras.Model:
        """(N, 128, 128, 1) patches -> (N, 1) probability of a lesion."""
        patch = keras.Input((PATCH_SIZE, PATCH_SIZE, 1), name="patch")
        cells = self.cell_logit(self.dropout(self.backbone(patch)))
        logit = layers.GlobalAveragePooling2D(name="patch_mean")(cells)
        probability = layers.Activation("sigmoid", name="probability")(logit)
        return keras.Model(patch, probability, name="lite0_patch")

    def image_model(
        self,
        config: PreprocessConfig,
        breast_windows_only: bool = False,
        flip_average: bool = False,
    ) -> keras.Model:
        """(N, H, W, 1) whole breasts -> probability (N, 1) and heatmap (N, h, w, 1).

        Args:
            config: the preprocessing contract (input size, pixel scaling).
            breast_windows_only: windows with less than :data:`MIN_WINDOW_BREAST` of their
                pixels on the breast (the blank padding of the crop, the blanked
                background) get logit :data:`OFF_BREAST_LOGIT`: they can neither raise
                the image's score nor hold the heatmap's peak.
            flip_average: test-time augmentation: also score the top-bottom mirror image
                (the flip training used; it keeps the chest wall on the left) and
                average the probabilities and the (mirrored-back) heatmaps.
        """
        image = keras.Input((config.height, config.width, 1), name="image")
        if not flip_average:
            probability, heatmap = self._score(image, config, breast_windows_only, "")
            return keras.Model(image, [probability, heatmap], name=NAME)
        direct = self._score(image, config, breast_windows_only, "_direct")
        mirrored_image = keras.ops.flip(image, axis=1)
        mirrored = self._score(mirrored_image, config, breast_windows_only, "_mirrored")
        probability = layers.Average(name="probability")([direct[0], mirrored[0]])
        heatmap = layers.Average(name="heatmap")([direct[1], keras.ops.flip(mirrored[1], 1)])
        return keras.Model(image, [probability, heatmap], name=NAME)

    def _score(self, image, config: PreprocessConfig, breast_windows_only: bool, suffix: str):
        """(probability, heatmap) of one image tensor; layer names as the model was trained."""
        cells = self.cell_logit(self.dropout(self.backbone(image)))
        windows = layers.AveragePooling2D(WINDOW_CELLS, strides=1, name=f"windows{suffix}")(cells)
        if breast_windows_only:
            # Blank pixels are gray 0, i.e. exactly pixel_offset; breast pixels are above.
            blank = config.pixel_offset + 0.5 * config.pixel_scale
            breast = keras.ops.cast(keras.ops.greater(image, blank), "float32")
            share = layers.AveragePooling2D(STRIDE, strides=STRIDE, name=f"cell_breast{suffix}")(
                breast
            )
            share = layers.AveragePooling2D(WINDOW_CELLS, strides=1, name=f"window_breast{suffix}")(
                share
            )
            windows = keras.ops.where(
                keras.ops.greater_equal(share, MIN_WINDOW_BREAST), windows, OFF_BREAST_LOGIT
            )
        flat = layers.Flatten(name=f"window_logits{suffix}")(windows)
        top = keras.ops.top_k(flat, TOP_K, sorted=False)[0]
        pooled = keras.ops.mean(top, axis=-1, keepdims=True)
        logit = self.image_offset(pooled)
        probability = layers.Activation("sigmoid", name=f"probability{suffix}")(logit)
        heatmap = layers.Activation("sigmoid", name=f"heatmap{suffix}")(windows)
        return probability, heatmap


def build(config: PreprocessConfig, seed: int | None = None) -> keras.Model:
    """The whole-image model for ``config`` (ImageNet-initialised, untrained head)."""
    return Networks(seed=seed).image_model(config)


def heatmap_centre(row: int, column: int) -> tuple[float, float]:
    """Model-input (x, y) of the centre of heatmap window (row, column)."""
    half = PATCH_SIZE / 2 - 0.5
    return STRIDE * column + half, STRIDE * row + half
