"""LeNet-5-Caffe at any widths: the smaller dense networks structured pruning arrives at,
built from scratch to train them as they are (the baseline of Liu et al., ICLR 2019)."""

from __future__ import annotations

import numpy as np

from tinyprune.nn.layers import Conv2d, Flatten, Linear, MaxPool2d, ReLU
from tinyprune.nn.model import Sequential

CAFFE_WIDTHS = (20, 50, 500)  # conv1 filters, conv2 filters, fc1 neurons


def lenet5_caffe_widths(
    widths: tuple[int, int, int] = CAFFE_WIDTHS, seed: int = 0, dtype=np.float32
) -> Sequential:
    """lenet5_caffe (nn/model.py) with conv1, conv2 and fc1 `widths` wide; the default widths
    give the same network, weights and all, as lenet5_caffe(seed, dtype)."""
    c1, c2, f1 = widths
    if min(widths) < 1:
        raise ValueError(f"every width must be at least 1, got {widths}")
    rng = np.random.default_rng(seed)
    return Sequential(
        "lenet5-caffe",
        {
            "conv1": Conv2d(1, c1, 5, padding=0, rng=rng, dtype=dtype, input_grad=False),
            "pool1": MaxPool2d(),  # (N, c1, 24, 24) -> (N, c1, 12, 12)
            "conv2": Conv2d(c1, c2, 5, padding=0, rng=rng, dtype=dtype),
            "pool2": MaxPool2d(),  # (N, c2, 8, 8) -> (N, c2, 4, 4)
            "flatten": Flatten(),  # -> (N, 16 c2)
            "fc1": Linear(16 * c2, f1, rng, dtype),
            "relu1": ReLU(),
            "fc2": Linear(f1, 10, rng, dtype),  # -> (N, 10) logits
        },
    )
