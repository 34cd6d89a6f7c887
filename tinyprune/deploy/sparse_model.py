"""A pruned model for inference only, holding and multiplying just its non-zero weights.

    sparse = SparseModel(model)          # model: a (pruned) lenet5() or lenet5_caffe() Sequential
    logits = sparse.forward(x)           # x (N, 1, 28, 28) float32 -> (N, 10), as model.forward

The weights are copied out of the model once, into the CSR arrays of `kernels/sparse.py`; the
model can then be trained or pruned further without changing this one.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from tinyprune.kernels.pool import maxpool2x2_forward_numpy
from tinyprune.kernels.sparse import (
    conv_taps,
    csr_from_dense,
    pack_layers,
    sparse_conv2d_numpy,
    sparse_forward,
    sparse_forward_serial,
    sparse_linear_numpy,
)
from tinyprune.nn.conv_pool import ConvPool
from tinyprune.nn.layers import Conv2d, Flatten, Linear, MaxPool2d, ReLU
from tinyprune.nn.model import Sequential


class Stage(NamedTuple):
    """One step of sparse inference: a conv block (conv, 2x2 max pool, relu?) or an fc layer
    (linear, relu?). `name` is the conv or linear layer's name in the model."""

    name: str
    layer: Conv2d | Linear
    relu: bool


LAYOUT_HELP = (
    "conv blocks (Conv2d, then MaxPool2d and an optional ReLU in either order; or a ConvPool), "
    "a Flatten, then Linear layers each with an optional ReLU"
)


def sparse_stages(model: Sequential) -> list[Stage]:
    """The model as conv blocks then fc layers; ValueError if it is not laid out that way."""
    items = list(model.layers.items())
    kinds = ", ".join(type(layer).__name__ for _, layer in items)
    stages: list[Stage] = []

    def refuse(reason: str):
        raise ValueError(
            f"sparse inference runs {LAYOUT_HELP}; model {model.name!r} has {kinds}: {reason}"
        )

    i, flat = 0, False
    while i < len(items):
        name, layer = items[i]
        followers = []
        while i + 1 < len(items) and isinstance(items[i + 1][1], (MaxPool2d, ReLU)):
            followers.append(items[i + 1][1])
            i += 1
        pools = sum(isinstance(f, MaxPool2d) for f in followers)
        relus = len(followers) - pools
        if isinstance(layer, ConvPool) and not flat and not followers:
            stages.append(Stage(name, layer.conv, layer.relu))  # the same block, as one layer
        elif isinstance(layer, Conv2d) and not flat:
            if pools != 1 or relus > 1:
                refuse(f"{name} is not followed by one MaxPool2d and at most one ReLU")
            stages.append(Stage(name, layer, relus == 1))
        elif isinstance(layer, Flatten) and not flat and not followers:
            flat = True
        elif isinstance(layer, Linear) and flat:
            if pools or relus > 1:
                refuse(f"{name} is followed by more than one ReLU or by a pool")
            stages.append(Stage(name, layer, relus == 1))
        else:
            refuse(f"{name} ({type(layer).__name__}) is out of place")
        i += 1
    if not flat or not stages or not isinstance(stages[-1].layer, Linear):
        refuse("it does not end in a Flatten and Linear layers")
    return stages


class SparseModel:
    """Inference-only copy of a pruned network (e.g. LeNet-5) whose weights are stored as CSR
    (see kernels/sparse.py); its layers must be laid out as `sparse_stages` accepts."""

    def __init__(self, model: Sequential, input_shape: tuple[int, int, int] = (1, 28, 28)):
        self.stages = sparse_stages(model)
        self.input_shape = input_shape
        self.dtype = self.stages[0].layer.weight.value.dtype
        convs = [s for s in self.stages if isinstance(s.layer, Conv2d)]
        fcs = self.stages[len(convs) :]
        csr = []
        C, H, W = input_shape
        # The kernels trust these sizes (an index past the input reads memory out of bounds):
        # check them here, once.
        geometry = []  # (padding, kernel size, relu) of each conv block
        for stage in convs:
            assert isinstance(stage.layer, Conv2d)
            w, pad = stage.layer.weight.value, stage.layer.padding
            geometry.append([pad, w.shape[2], stage.relu])
            if w.shape[1] != C:
                raise ValueError(f"{stage.name} takes {w.shape[1]} channels, gets {C}")
            csr.append(conv_taps(w, H, W, pad))
            # the next block sees this one's output after 2x2 pooling
            C, H, W = (
                w.shape[0],
                (H + 2 * pad - w.shape[2] + 1) // 2,
                (W + 2 * pad - w.shape[3] + 1) // 2,
            )
        size = C * H * W
        for stage in fcs:
            rows, cols = stage.layer.weight.value.shape
            if cols != size:
                raise ValueError(
                    f"{stage.name} takes {cols} inputs, gets {size} (for inputs "
                    f"of shape {input_shape})"
                )
            size = rows
        csr += [csr_from_dense(stage.layer.weight.value) for stage in fcs]
        self.csr = [
            (ptr, index, values.astype(self.dtype), stage.layer.bias.value.astype(self.dtype))
            for (ptr, index, values), stage in zip(csr, self.stages)
        ]
        self.packed = pack_layers([c[:3] for c in self.csr], [c[3] for c in self.csr])
        self.conv_geometry = np.array(geometry, np.int64).reshape(len(convs), 3)
        self.fc_relu = np.array([s.relu for s in fcs], np.int64)

    @property
    def nonzero(self) -> int:
        """Number of stored (non-zero) weights, biases not counted."""
        return sum(len(values) for _, _, values, _ in self.csr)

    def _check(self, x: np.ndarray) -> np.ndarray:
        if x.ndim != 4 or x.shape[1:] != self.input_shape:
            shape = ", ".join(map(str, self.input_shape))
            raise ValueError(
                f"SparseModel expects x of shape (N, {shape}), got {x.shape}; "
                f"normalise uint8 images with tinyprune.data.transforms.to_input"
            )
        return np.ascontiguousarray(x, self.dtype)

    def forward(self, x: np.ndarray) -> np.ndarray:
        """x (N, C, H, W) -> logits (N, classes); one thread at batch 1, all of them otherwise."""
        x = self._check(x)
        run: Any = sparse_forward_serial if len(x) <= 1 else sparse_forward
        return run(x, *self.packed, self.conv_geometry, self.fc_relu)

    def forward_numpy(self, x: np.ndarray) -> np.ndarray:
        """NumPy twin of forward: the layer twins one after another."""
        x = self._check(x)
        for stage, (ptr, index, values, b) in zip(self.stages, self.csr):
            if isinstance(stage.layer, Conv2d):
                x = sparse_conv2d_numpy(
                    x, ptr, index, values, b, stage.layer.weight.value.shape[2], stage.layer.padding
                )
                x, _ = maxpool2x2_forward_numpy(x)
            else:
                x = sparse_linear_numpy(x.reshape(len(x), -1), ptr, index, values, b)
            if stage.relu:
                x = np.maximum(x, 0)
        return x
