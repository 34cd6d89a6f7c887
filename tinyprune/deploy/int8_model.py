"""A pruned model in integer-only arithmetic, as TensorFlow Lite (Micro) runs an int8 model: the
NumPy reference that the exported C (deploy/c_export.py) and the emulated device (deploy/mcu/)
equal bit for bit.

    q = Int8Model(model, calibration_images)   # uint8 (N, 28, 28) training images, not test
    logits = q.forward(pixels)                 # uint8 (N, 28, 28) -> int8 (N, classes)

The numbers are those of quantize.py (TFLite's scheme). For each stage (a conv block: conv,
relu?, 2x2 max pool; or a linear layer, relu?), with int8 input a of scale s_in, zero point z_in:

    accumulate   acc[c] = bias[c] + sum over the kept weights of w[c, .] * (a - z_in): int32,
                 weights int8 per output channel c (scale s_c), bias int32 of scale s_in s_c.
                 A conv's padding adds nothing (it stands for a real 0, a = z_in), as in
                 TFLite, which skips the taps outside the image.
    requantise   out = clamp(z_out + multiply_by_quantized_multiplier(acc, m_c, shift_c),
                 lo, 127), (m_c, shift_c) standing for s_in s_c / s_out; lo = z_out with a
                 ReLU (TFLite fuses it into the clamp), else -128.
    pool         the max of each 2x2 window of the int8 values (TFLite's MAX_POOL_2D; its
                 output keeps the scale and zero point of its input).

Each stage's output scale and zero point come from the range of the float model's conv or
linear output (after its ReLU) on the calibration images; the last stage's output, int8 too,
is the logits: real logits ~ output_scale * (logits - output_zero).

The input: a = pixel - 128 with s_in = 1 / (255 std) and z_in = round(255 mean) - 128, so that
s_in (a - z_in) = (pixel - 33) / (255 std) for MNIST: the normalisation of data/transforms.py
is inside the model, but for a shift of a third of a pixel step (255 mean = 33.33).

The reference computes each accumulator as a float64 product of integer arrays: every product
and partial sum is an integer below 2^31 (checked when the model is built), which float64 holds
exactly, whatever the order of the sum.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from tinyprune.data.datasets import MNIST, Dataset
from tinyprune.data.transforms import to_input
from tinyprune.deploy.quantize import (
    activation_params,
    multiply_by_quantized_multiplier,
    quantize_int8,
    quantize_multiplier,
    round_half_away,
)
from tinyprune.deploy.sparse_model import Stage, sparse_stages
from tinyprune.deploy.weight_sharing import SharedWeight
from tinyprune.nn.layers import Conv2d
from tinyprune.nn.model import Sequential

CALIBRATION_IMAGES = 2000  # training images whose float activations set the int8 ranges


def input_params(dataset: Dataset) -> tuple[np.float32, int]:
    """(scale, zero point) of the input a = pixel - 128 that make s (a - z) the normalised
    pixel (pixel / 255 - mean) / std, but for z's rounding."""
    return np.float32(1.0 / (255.0 * dataset.std)), round(255.0 * dataset.mean) - 128


@dataclass
class IntStage:
    """One stage in integers. weight: int8 (F, C, K, K) for a conv, (R, M) for a linear layer;
    bias: int32 (F,); mult, shift: (F,) each channel's requantisation; in_zero: the input's
    zero point; zero: the output's; lo: the lowest output; kept: bool like weight, the
    weights stored; weight_scale, out_scale: the scales they came from; a shared layer also
    has codebook (k,) int8 and index (like weight, int16, -1 where pruned), with
    weight = codebook[index] where kept."""

    name: str
    weight: np.ndarray
    bias: np.ndarray
    pad: int
    mult: np.ndarray
    shift: np.ndarray
    in_zero: int
    zero: int
    lo: int
    kept: np.ndarray
    weight_scale: np.ndarray  # float32 (F,): the per-channel scales a .tflite file stores
    out_scale: np.float32
    codebook: np.ndarray | None = None
    index: np.ndarray | None = None

    @property
    def is_conv(self) -> bool:
        return self.weight.ndim == 4


def int8_weight(
    weight: np.ndarray, shared: SharedWeight | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray | None]:
    """-> (int8 weight, scales (F,), kept (bool), int8 codebook or None): the weight quantised
    per output channel, or, for a shared weight, its codebook quantised (one scale, which all
    channels share, so that codebook_int8[index] is the int8 weight) and indexed."""
    if shared is None:
        w, scales = quantize_int8(weight)
        return w, scales, w != 0, None
    if not np.array_equal(shared.weight(), weight):
        raise ValueError(
            "the model's weight is not its shared values: share_weights (and "
            "SharedSGD) keep them equal; load the model from the same file"
        )
    codebook, scale = quantize_int8(shared.codebook[None])
    w = np.where(shared.kept, codebook[0][np.maximum(shared.index, 0)], 0).astype(np.int8)
    return w, np.repeat(scale, len(weight)), shared.kept, codebook[0]


def output_ranges(model: Sequential, stages: list[Stage], x: np.ndarray) -> list[tuple]:
    """(min, max) of each stage's conv or linear output, after its ReLU, for the input x."""
    relu = {s.name: s.relu for s in stages}
    ranges = []
    for name, layer in model.layers.items():
        x = layer.forward(x)
        if name in relu:
            y = np.maximum(x, 0) if relu[name] else x
            ranges.append((float(y.min()), float(y.max())))
    return ranges


class Int8Model:
    """A model that sparse_stages accepts, in int8 weights and activations (see the module)."""

    def __init__(
        self,
        model: Sequential,
        calibration_images: np.ndarray,
        shared: dict[str, SharedWeight] | None = None,
        dataset: Dataset = MNIST,
    ):
        """shared: {'<layer>.weight': SharedWeight} for layers stored as codebook + indices
        (the model must hold their shared values, as share_weights leaves it); dataset: the
        one the model was trained on (its normalisation)."""
        stages = sparse_stages(model)
        ranges = output_ranges(model, stages, to_input(calibration_images, dataset))
        self.name = model.name
        self.stages: list[IntStage] = []
        s_in, z_in = self.input_scale, self.input_zero = input_params(dataset)
        for i, (stage, (lo, hi)) in enumerate(zip(stages, ranges)):
            s_out, z_out = activation_params(lo, hi)
            sharing = (shared or {}).get(f"{stage.name}.weight")
            self.stages.append(int_stage(stage, s_in, z_in, s_out, z_out, sharing, first=i == 0))
            s_in, z_in = s_out, z_out
        self.output_scale, self.output_zero = float(s_in), z_in

    def forward(self, pixels: np.ndarray, batch: int = 256) -> np.ndarray:
        """pixels uint8 (N, H, W) -> int8 logits (N, classes), in batches of `batch` images."""
        if pixels.dtype != np.uint8 or pixels.ndim != 3:
            raise ValueError(
                f"Int8Model.forward takes uint8 images (N, H, W), got {pixels.dtype} {pixels.shape}"
            )
        return np.concatenate(
            [self._forward(pixels[i : i + batch]) for i in range(0, len(pixels), batch)]
            or [np.zeros((0, len(self.stages[-1].bias)), np.int8)]
        )

    def predict(self, pixels: np.ndarray) -> np.ndarray:
        """-> the class of each image (the first largest logit), int64 (N,)."""
        return self.forward(pixels).argmax(axis=1)

    def _forward(self, pixels: np.ndarray) -> np.ndarray:
        a = pixels[:, None].astype(np.int64) - 128  # (N, 1, H, W), int8 values
        for stage in self.stages:
            z = stage.in_zero
            if stage.is_conv:
                padded = np.pad(
                    a, ((0, 0), (0, 0), (stage.pad,) * 2, (stage.pad,) * 2), constant_values=z
                )
                acc = conv_accumulate(padded - z, stage.weight, stage.bias)  # (N, F, Ho, Wo)
                a = maxpool2x2(requantize(acc, stage, axis=1))
            else:
                rows = stage.weight.astype(np.float64)
                acc = np.rint((a.reshape(len(a), -1) - z) @ rows.T).astype(np.int64) + stage.bias
                a = requantize(acc, stage, axis=1)
        return a.astype(np.int8)


def int_stage(
    stage: Stage, s_in: np.float32, z_in: int, s_out: np.float32, z_out: int, sharing, first: bool
) -> IntStage:
    """One stage's integers (see the module), from its float layer and the scales and zero
    points of its input and output."""
    w, s_w, kept, codebook = int8_weight(stage.layer.weight.value, sharing)
    bias_scale = (s_in * s_w).astype(np.float64)  # float32, as TFLite's converter has it
    bias = round_half_away(stage.layer.bias.value / bias_scale).astype(np.int64)
    # A .tflite file's first layer takes the raw pixel (scale 1) and stores s_in * s_w as its
    # filter scales, in float32: LiteRT's multipliers come from those float32 products.
    products = bias_scale if first else [float(s_in) * float(s) for s in s_w]
    mult, shift = (
        np.array([quantize_multiplier(float(p) / float(s_out)) for p in products], np.int64)
        .reshape(-1, 2)
        .T
    )
    # the largest |acc| (TFLite's sum, or the C's with z_in folded into the bias), before and
    # after the left shift of the requantisation: int32 must hold them
    largest = np.abs(bias) + 256 * np.abs(w.reshape(len(w), -1).astype(np.int64)).sum(axis=1)
    if (largest << np.maximum(shift, 0)).max(initial=0) >= 2**31:
        raise ValueError(f"{stage.name}: an int32 accumulator could overflow")
    pad = stage.layer.padding if isinstance(stage.layer, Conv2d) else 0
    index = None if sharing is None else sharing.index
    lo = z_out if stage.relu else -128
    return IntStage(
        stage.name,
        w,
        bias.astype(np.int32),
        pad,
        mult,
        shift,
        z_in,
        z_out,
        lo,
        kept,
        s_w,
        s_out,
        codebook,
        index,
    )


def conv_accumulate(a: np.ndarray, w: np.ndarray, bias: np.ndarray) -> np.ndarray:
    """a (N, C, Hp, Wp) int, padded; w (F, C, K, K) int8; bias (F,) int32 -> acc (N, F, Ho, Wo)
    int64: bias[f] + sum over c, kh, kw of w[f, c, kh, kw] * a[n, c, oh + kh, ow + kw]."""
    K = w.shape[2]
    windows = sliding_window_view(a.astype(np.float64), (K, K), axis=(2, 3))  # (N,C,Ho,Wo,K,K)
    acc = np.einsum("nchwij,fcij->nfhw", windows, w.astype(np.float64), optimize=True)
    return np.rint(acc).astype(np.int64) + bias[None, :, None, None]


def requantize(acc: np.ndarray, stage: IntStage, axis: int) -> np.ndarray:
    """int32 accumulators, channels along `axis` -> int8 values (as int64): clamp(zero +
    multiply_by_quantized_multiplier(acc, mult[c], shift[c]), lo, 127)."""
    shape = [1] * acc.ndim
    shape[axis] = -1
    m, shift = stage.mult.reshape(shape), stage.shift.reshape(shape)
    return np.clip(multiply_by_quantized_multiplier(acc, m, shift) + stage.zero, stage.lo, 127)


def maxpool2x2(a: np.ndarray) -> np.ndarray:
    """(N, F, H, W) -> (N, F, H // 2, W // 2): the max of each 2x2 window (a last odd row or
    column is dropped)."""
    N, F, H, W = a.shape
    return a[:, :, : H // 2 * 2, : W // 2 * 2].reshape(N, F, H // 2, 2, W // 2, 2).max(axis=(3, 5))
