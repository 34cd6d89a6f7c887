"""A pruned model in integer-only arithmetic, as CMSIS-NN and TensorFlow Lite Micro run one: the
NumPy reference that the exported C (deploy/c_int8.py) equals bit for bit.

    q = Int8Model(model, calibration_images)   # uint8 (N, 28, 28) training images, not test
    logits = q.forward(pixels)                 # uint8 (N, 28, 28) -> int32 (N, classes)

The arithmetic, for each stage (a conv block: conv, 2x2 max pool, relu?; or a linear layer):

    activations  int8 a stands for the real number s * (a - z): one scale s (float) and one zero
                 point z (int8) per stage output, calibrated as min..max of the float model's
                 outputs on training images. The input is a = pixel - 128 with s = 1/(255 std)
                 and z = round(255 mean) - 128, so a - z = pixel - 33: the normalised pixel,
                 but for a shift of 0.33 of a pixel step (255 mean = 33.33).
    weights      int8 w = round(weight / s_w), s_w = max |weight| / 127 per layer (zero stays 0).
                 A shared layer (deploy/weight_sharing.py) quantises its codebook the same way,
                 and w = codebook_int8[index] for each kept weight.
    accumulate   int32 acc = bias + sum w * a over the kept weights, where
                 bias = round(b / (s_in s_w)) - z_in * sum w: the zero point folded in, which is
                 exact for the padding too (padding holds a = z_in, a real 0).
    pool         the max of the 2x2 accumulators (requantising is monotone, so pool first).
    requantise   a = clamp(z_out + ((acc * m + 2^(n-1)) >> n), lo, 127), with m (int32 in
                 [2^30, 2^31)) and n the integer form of s_in s_w / s_out, >> an arithmetic
                 shift of the 64-bit product (rounds half up), lo = z_out with relu else -128.
    last stage   no requantisation: the int32 accumulators are the logits (in units of
                 s_in s_w), and the class is the first largest.

No float appears after construction. The reference computes each accumulator as a float64
matrix product of integers: every product and partial sum is an integer below 2^31 (checked
when the model is built), so float64 holds it exactly and the order of the sum does not matter.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from tinyprune.data.transforms import MNIST_MEAN, MNIST_STD, to_input
from tinyprune.deploy.quantize import quantize_int8
from tinyprune.deploy.sparse_model import Stage, sparse_stages
from tinyprune.deploy.weight_sharing import SharedWeight
from tinyprune.nn.layers import Conv2d
from tinyprune.nn.model import Sequential

INPUT_SCALE = 1.0 / (255.0 * MNIST_STD)
INPUT_ZERO = round(255.0 * MNIST_MEAN) - 128


@dataclass
class IntStage:
    """One stage in integers. weight: int8 (F, C, K, K) for a conv, (R, M) for a linear layer;
    bias: int32 (F,) with the input's zero point folded in; mult, shift: the requantisation
    (unused in the last stage); zero: the output's zero point; lo: the lowest output;
    kept: bool like weight, the weights stored; a shared layer also has codebook (k,) int8 and
    index (like weight, int16, -1 where pruned), with weight = codebook[index] where kept."""

    name: str
    weight: np.ndarray
    bias: np.ndarray
    pad: int
    mult: int
    shift: int
    zero: int
    lo: int
    kept: np.ndarray
    codebook: np.ndarray | None = None
    index: np.ndarray | None = None

    @property
    def is_conv(self) -> bool:
        return self.weight.ndim == 4


def int8_weight(
    weight: np.ndarray, shared: SharedWeight | None
) -> tuple[np.ndarray, float, np.ndarray, np.ndarray | None]:
    """-> (int8 weight, its scale, kept (bool), int8 codebook or None): the weight quantised,
    or, for a shared weight, its codebook quantised and indexed."""
    if shared is None:
        w, scale = quantize_int8(weight)
        return w, float(scale), w != 0, None
    if not np.array_equal(shared.weight(), weight):
        raise ValueError(
            "the model's weight is not its shared values: share_weights (and "
            "SharedSGD) keep them equal; load the model from the same file"
        )
    codebook, scale = quantize_int8(shared.codebook)
    w = np.where(shared.kept, codebook[np.maximum(shared.index, 0)], 0).astype(np.int8)
    return w, float(scale), shared.kept, codebook


def quantize_multiplier(real: float) -> tuple[int, int]:
    """real > 0 -> (m, n) with real ~ m / 2^n, m in [2^30, 2^31), 1 <= n <= 62."""
    fraction, exponent = math.frexp(real)  # real = fraction * 2^exponent
    m = round(fraction * 2**31)
    if m == 2**31:
        m, exponent = m // 2, exponent + 1
    n = 31 - exponent
    if not 1 <= n <= 62:
        raise ValueError(
            f"requantisation multiplier {real:.3g} is out of range: the layer's "
            f"scales are degenerate (a layer pruned away, or dead activations?)"
        )
    return m, n


def stage_outputs(model: Sequential, stages: list[Stage], x: np.ndarray) -> list[np.ndarray]:
    """The float model's output of each stage (after its pool and relu) for input x."""
    starts = {s.name for s in stages}
    outputs, current = [], None
    for name, layer in model.layers.items():
        if current is not None and (name in starts or layer.__class__.__name__ == "Flatten"):
            outputs.append(x)
            current = None
        x = layer.forward(x)
        if name in starts:
            current = name
    return outputs + [x]


def activation_range(a: np.ndarray) -> tuple[float, int]:
    """-> (scale, zero point) mapping min(0, a.min())..max(0, a.max()) onto -128..127."""
    lo, hi = min(0.0, float(a.min())), max(0.0, float(a.max()))
    scale = (hi - lo) / 255 if hi > lo else 1.0
    return scale, int(np.clip(round(-128 - lo / scale), -128, 127))


class Int8Model:
    """A model that sparse_stages accepts, in int8 weights and activations (see the module)."""

    def __init__(
        self,
        model: Sequential,
        calibration_images: np.ndarray,
        shared: dict[str, SharedWeight] | None = None,
    ):
        """shared: {'<layer>.weight': SharedWeight} for layers stored as codebook + indices
        (the model must hold their shared values, as share_weights leaves it)."""
        stages = sparse_stages(model)
        shared = shared or {}
        outputs = stage_outputs(model, stages, to_input(calibration_images))
        self.name = model.name
        self.stages: list[IntStage] = []
        self.logit_scale = 1.0
        s_in, z_in = INPUT_SCALE, INPUT_ZERO
        for i, (stage, out) in enumerate(zip(stages, outputs)):
            last = i == len(stages) - 1
            sharing = shared.get(f"{stage.name}.weight")
            w, s_w, kept, codebook = int8_weight(stage.layer.weight.value, sharing)
            s_out, z_out = activation_range(out) if not last else (1.0, 0)
            rows = w.reshape(len(w), -1).astype(np.int64)
            bias = np.rint(stage.layer.bias.value / (s_in * s_w)).astype(
                np.int64
            ) - z_in * rows.sum(axis=1)
            if int((np.abs(bias) + 128 * np.abs(rows).sum(axis=1)).max()) >= 2**31:
                raise ValueError(f"{stage.name}: an int32 accumulator could overflow")
            m, n = (0, 1) if last else quantize_multiplier(s_in * s_w / s_out)
            pad = stage.layer.padding if isinstance(stage.layer, Conv2d) else 0
            self.stages.append(
                IntStage(
                    stage.name,
                    w,
                    bias.astype(np.int32),
                    pad,
                    m,
                    n,
                    z_out,
                    z_out if stage.relu else -128,
                    kept,
                    codebook,
                    None if sharing is None else sharing.index,
                )
            )
            if last:  # real logits = int32 logits * logit_scale (never used on device)
                self.logit_scale = s_in * s_w
            s_in, z_in = s_out, z_out

    def forward(self, pixels: np.ndarray, batch: int = 256) -> np.ndarray:
        """pixels uint8 (N, H, W) -> int32 logits (N, classes), in batches of `batch` images."""
        if pixels.dtype != np.uint8 or pixels.ndim != 3:
            raise ValueError(
                f"Int8Model.forward takes uint8 images (N, H, W), got {pixels.dtype} {pixels.shape}"
            )
        return np.concatenate(
            [self._forward(pixels[i : i + batch]) for i in range(0, len(pixels), batch)]
            or [np.zeros((0, len(self.stages[-1].bias)), np.int32)]
        )

    def predict(self, pixels: np.ndarray) -> np.ndarray:
        """-> the class of each image (the first largest logit), int64 (N,)."""
        return self.forward(pixels).argmax(axis=1)

    def _forward(self, pixels: np.ndarray) -> np.ndarray:
        a = pixels[:, None].astype(np.int64) - 128  # (N, 1, H, W), int8 values
        z = INPUT_ZERO
        for i, stage in enumerate(self.stages):
            if stage.is_conv:
                a = np.pad(
                    a, ((0, 0), (0, 0), (stage.pad,) * 2, (stage.pad,) * 2), constant_values=z
                )
                acc = conv_accumulate(a, stage.weight, stage.bias)  # (N, F, Ho, Wo)
                Hq, Wq = acc.shape[2] // 2, acc.shape[3] // 2
                acc = acc[:, :, : 2 * Hq, : 2 * Wq].reshape(len(a), -1, Hq, 2, Wq, 2)
                acc = acc.max(axis=(3, 5))  # 2x2 max pool
            else:
                rows = stage.weight.astype(np.float64)
                acc = np.rint(a.reshape(len(a), -1) @ rows.T).astype(np.int64) + stage.bias
            if i == len(self.stages) - 1:
                return acc.astype(np.int32)
            a = requantize(acc, stage.mult, stage.shift, stage.zero, stage.lo)
            z = stage.zero
        raise ValueError("a model with no stages")


def conv_accumulate(a: np.ndarray, w: np.ndarray, bias: np.ndarray) -> np.ndarray:
    """a (N, C, Hp, Wp) int, padded; w (F, C, K, K) int8; bias (F,) int32 -> acc (N, F, Ho, Wo)
    int64: bias[f] + sum over c, kh, kw of w[f, c, kh, kw] * a[n, c, oh + kh, ow + kw]."""
    K = w.shape[2]
    windows = sliding_window_view(a.astype(np.float64), (K, K), axis=(2, 3))  # (N,C,Ho,Wo,K,K)
    acc = np.einsum("nchwij,fcij->nfhw", windows, w.astype(np.float64), optimize=True)
    return np.rint(acc).astype(np.int64) + bias[None, :, None, None]


def requantize(acc: np.ndarray, mult: int, shift: int, zero: int, lo: int) -> np.ndarray:
    """int32 accumulators -> int8 values (as int64): clamp(zero + ((acc * mult + 2^(shift-1))
    >> shift), lo, 127). The product fits int64: |acc| < 2^31 and mult < 2^31."""
    y = ((acc.astype(np.int64) * mult + (1 << (shift - 1))) >> shift) + zero
    return np.clip(y, lo, 127)
