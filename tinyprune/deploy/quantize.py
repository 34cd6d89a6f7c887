"""tinyprune's one int8 scheme, TensorFlow Lite's: the numbers a quantised model is made of.

    weights      int8, symmetric, one scale per output channel: q = round(w / s_c) in
                 -127..127, s_c = max |w_c| / 127 (zero point 0), round half away from zero
    activations  int8 a stands for s * (a - z): a scale and a zero point, from the range
                 min..max of the values, widened to include 0 (so that 0 is exact)
    biases       int32, q = round(b / (s_in s_c)), zero point 0
    requantise   an int32 accumulator times the real s_in s_c / s_out, in integers: the real
                 as m / 2^31 * 2^shift (quantize_multiplier), applied by
                 multiply_by_quantized_multiplier, which rounds exactly as TFLite's reference
                 kernels do (SaturatingRoundingDoublingHighMul, then RoundingDivideByPOT)

All integer functions here work on int64 arrays holding int32 values, as the C does in int32.
"""

from __future__ import annotations

import math

import numpy as np

INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1


def round_half_away(x: np.ndarray) -> np.ndarray:
    """Round to the nearest integer, halves away from zero (C's round, as TFLite rounds)."""
    return np.sign(x) * np.floor(np.abs(x) + 0.5)


def quantize_int8(w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """w (C, ...) float -> (q int8 (C, ...) in -127..127, scales float32 (C,)), one scale per
    output channel (first axis): w[c] ~ q[c] * scales[c]. A channel of zeros gets scale 1."""
    largest = np.abs(w.reshape(len(w), -1)).max(axis=1, initial=0.0)
    scales = np.where(largest > 0, largest / 127, 1.0).astype(np.float32)
    real = w / scales.reshape(-1, *[1] * (w.ndim - 1))
    return np.clip(round_half_away(real), -127, 127).astype(np.int8), scales


def dequantize_int8(q: np.ndarray, scales: np.ndarray) -> np.ndarray:
    """The float32 weights q (C, ...) stands for: q[c] * scales[c]."""
    return q.astype(np.float32) * scales.astype(np.float32).reshape(-1, *[1] * (q.ndim - 1))


def activation_params(lo: float, hi: float) -> tuple[np.float32, int]:
    """The range lo..hi of real values -> (scale float32, zero point) mapping lo..hi, widened to
    include 0, onto -128..127 (TFLite's asymmetric activations)."""
    lo, hi = min(lo, 0.0), max(hi, 0.0)
    scale = np.float32((hi - lo) / 255 if hi > lo else 1.0)
    zero = int(round_half_away(np.array(-128 - lo / float(scale))))
    return scale, int(np.clip(zero, -128, 127))


def quantize_multiplier(real: float) -> tuple[int, int]:
    """real > 0 -> (m, shift) with real ~ m / 2^31 * 2^shift, m in [2^30, 2^31) (TFLite's
    QuantizeMultiplier). ValueError if shift is outside -31..30."""
    fraction, shift = math.frexp(real)  # real = fraction * 2^shift, fraction in [0.5, 1)
    m = int(round_half_away(np.array(fraction * 2**31)))
    if m == 2**31:
        m, shift = m // 2, shift + 1
    if not -31 <= shift <= 30:
        raise ValueError(
            f"requantisation multiplier {real:.3g} is out of range: the layer's "
            f"scales are degenerate (a layer pruned away, or dead activations?)"
        )
    return m, shift


def saturating_rounding_doubling_high_mul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The high 32 bits of 2 a b, rounded: (a b + nudge) / 2^31 with C's division (toward zero)
    and nudge = 2^30 (a b >= 0) or 1 - 2^30; INT32_MAX for a = b = INT32_MIN."""
    ab = np.asarray(a, np.int64) * np.asarray(b, np.int64)
    s = ab + np.where(ab >= 0, 1 << 30, 1 - (1 << 30))
    high = np.where(s >= 0, s >> 31, -((-s) >> 31))
    return np.where((a == INT32_MIN) & (b == INT32_MIN), INT32_MAX, high)


def rounding_divide_by_pot(x: np.ndarray, exponent: np.ndarray) -> np.ndarray:
    """x / 2^exponent, rounded to nearest, halves upward (an arithmetic shift that rounds), as
    LiteRT's builtin kernels compute it; TFLite's reference code rounds halves away from zero,
    which differs on negative halves only (docs/tflite.md). exponent in 0..31."""
    x, exponent = np.asarray(x, np.int64), np.asarray(exponent, np.int64)
    return (x + ((np.int64(1) << exponent) >> 1)) >> exponent


def multiply_by_quantized_multiplier(x: np.ndarray, m: np.ndarray, shift: np.ndarray) -> np.ndarray:
    """x int32 times m / 2^31 * 2^shift, rounded as TFLite's reference kernels: a left shift
    (shift > 0), the doubling high multiply, then a rounding right shift (shift < 0)."""
    shift = np.asarray(shift, np.int64)
    left, right = np.maximum(shift, 0), np.maximum(-shift, 0)
    return rounding_divide_by_pot(
        saturating_rounding_doubling_high_mul(np.asarray(x, np.int64) << left, m), right
    )
