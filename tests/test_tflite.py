"""The .tflite writer (deploy/tflite.py), checked by LiteRT's interpreter (ai-edge-litert).

Small int8 graphs built by hand run in LiteRT and equal a NumPy transcription of TFLite's
reference arithmetic, written here; then a pruned LeNet-5 through LiteRT equals tinyprune's
int8 reference (deploy/int8_model.py) on all 10,000 test images, bit for bit.

Without ai-edge-litert or flatbuffers these tests skip, saying what to install; with CI=true
they fail instead, since CI must run them."""

import importlib.util
import math
import os

import numpy as np
import pytest
from numpy.lib.stride_tricks import sliding_window_view

MISSING = [m for m in ("flatbuffers", "ai_edge_litert") if importlib.util.find_spec(m) is None]
if MISSING:
    reason = f"{', '.join(MISSING)} not installed: pip install -e '.[test]'"
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI=true, so the .tflite tests must run, but {reason}", pytrace=False)
    pytest.skip(reason, allow_module_level=True)

from ai_edge_litert.interpreter import Interpreter, OpResolverType  # noqa: E402

from tinyprune.deploy import tflite  # noqa: E402
from tinyprune.deploy.tflite import Op, Tensor  # noqa: E402

# ---- TFLite's reference arithmetic, in NumPy (tensorflow/lite/kernels/internal/common.h) ----


def quantize_multiplier(real: float) -> tuple[int, int]:
    """QuantizeMultiplier: real = m * 2^(shift - 31), m in [2^30, 2^31), std::round."""
    q, shift = math.frexp(real)
    m = math.floor(q * 2**31 + 0.5)  # std::round: half away from zero (q > 0)
    if m == 2**31:
        m, shift = m // 2, shift + 1
    return m, shift


def multiply_by_quantized_multiplier(x: np.ndarray, m: int, shift: int) -> np.ndarray:
    """SaturatingRoundingDoublingHighMul(x * 2^left, m) then RoundingDivideByPOT(., right),
    both rounding half away from zero (TFLite without TFLITE_SINGLE_ROUNDING)."""
    left, right = max(shift, 0), max(-shift, 0)
    ab = (x.astype(np.int64) << left) * m
    nudge = np.where(ab >= 0, 1 << 30, 1 - (1 << 30))
    v = ab + nudge
    high = np.where(v >= 0, v >> 31, -(-v >> 31))  # C's division by 2^31 truncates toward 0
    mask = (1 << right) - 1
    threshold = (mask >> 1) + (high < 0)
    return (high >> right) + ((high & mask) > threshold)


def requantize(acc, s_in, s_w, s_out, zero, relu):
    """int32 acc (..., channels) -> int8 output with per-channel multipliers from the float32
    scales, as PopulateConvolutionQuantizationParams computes them."""
    out = np.empty(acc.shape, np.int64)
    for c in range(acc.shape[-1]):
        real = float(np.float32(s_in)) * float(np.float32(s_w[c])) / float(np.float32(s_out))
        out[..., c] = multiply_by_quantized_multiplier(acc[..., c], *quantize_multiplier(real))
    return np.clip(out + zero, zero if relu else -128, 127).astype(np.int8)


def run(data: bytes, x: np.ndarray, resolver=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES):
    interpreter = Interpreter(model_content=data, experimental_op_resolver_type=resolver)
    interpreter.allocate_tensors()
    interpreter.set_tensor(interpreter.get_input_details()[0]["index"], x)
    interpreter.invoke()
    return interpreter.get_tensor(interpreter.get_output_details()[0]["index"])


# TFLite's own kernels, optimised and reference; XNNPACK (LiteRT's default delegate) is not
# bit-exact: it requantises in float32 (see test_xnnpack_within_one_step).
RESOLVERS = {
    "builtin": OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES,
    "reference": OpResolverType.BUILTIN_REF,
}


def scales(rng, n):
    return [float(s) for s in rng.uniform(0.002, 0.02, n)]


@pytest.mark.parametrize("resolver", RESOLVERS)
@pytest.mark.parametrize("relu", [False, True])
def test_fully_connected_per_channel(resolver, relu):
    """FULLY_CONNECTED, int8 in and out, a scale per output row: LiteRT == NumPy."""
    rng = np.random.default_rng(1)
    N, M, R, s_in, z_in, s_out, z_out = 64, 40, 12, 0.05, -7, 0.2, 9
    w = rng.integers(-127, 128, (R, M)).astype(np.int8)
    w[rng.random((R, M)) < 0.5] = 0  # pruned
    bias = rng.integers(-3000, 3000, R).astype(np.int32)
    s_w = scales(rng, R)
    tensors = [
        Tensor("x", (N, M), np.int8, [s_in], [z_in]),
        Tensor("w", (R, M), np.int8, s_w, [0] * R, 0, w),
        Tensor("bias", (R,), np.int32, [s_in * s for s in s_w], [0] * R, 0, bias),
        Tensor("y", (N, R), np.int8, [s_out], [z_out]),
    ]
    op = Op(
        tflite.FULLY_CONNECTED,
        [0, 1, 2],
        [3],
        ("FullyConnectedOptions", {"fused_activation_function": int(relu)}),
    )
    data = tflite.flatbuffer(tensors, [op], [0], [3])
    x = rng.integers(-128, 128, (N, M)).astype(np.int8)
    acc = (x.astype(np.int64) - z_in) @ w.T.astype(np.int64) + bias
    expected = requantize(acc, s_in, s_w, s_out, z_out, relu)
    assert len(np.unique(expected)) > 50, "outputs spread over the int8 range"
    np.testing.assert_array_equal(run(data, x, RESOLVERS[resolver]), expected)


def conv_valid(x, z_in, w, bias):
    """NHWC conv, stride 1, no padding: x (N, H, W, C) int8, w (F, K, K, C) int8 ->
    acc (N, Ho, Wo, F) int64 = bias[f] + sum w[f, i, j, c] (x[n, y + i, x + j, c] - z_in)."""
    K = w.shape[1]
    windows = sliding_window_view(x.astype(np.int64) - z_in, (K, K), axis=(1, 2))
    return np.einsum("nyxcij,fijc->nyxf", windows, w.astype(np.int64)) + bias


def small_cnn(seed: int) -> tuple[bytes, np.ndarray, np.ndarray]:
    """PADV2 (a pad value of our choice), CONV_2D per channel with a fused RELU, MAX_POOL_2D,
    RESHAPE, FULLY_CONNECTED: the ops a LeNet-5 needs -> (.tflite, input, NumPy's output)."""
    rng = np.random.default_rng(seed)
    N, H, C, F, K, pad, R = 16, 8, 2, 4, 3, 1, 5
    s_in, z_in, pad_value, s_c, z_c, s_out, z_out = 0.03, -20, 7, 0.1, -60, 0.3, 4
    w = rng.integers(-127, 128, (F, K, K, C)).astype(np.int8)
    bias = rng.integers(-500, 500, F).astype(np.int32)
    fc = rng.integers(-127, 128, (R, F * (H // 2) ** 2)).astype(np.int8)
    fc_bias = rng.integers(-500, 500, R).astype(np.int32)
    s_w, s_fc = scales(rng, F), scales(rng, R)
    flat = F * (H // 2) ** 2
    q = [s_in], [z_in]
    tensors = [
        Tensor("x", (N, H, H, C), np.int8, *q),
        Tensor(
            "paddings",
            (4, 2),
            np.int32,
            data=np.array([[0, 0], [pad, pad], [pad, pad], [0, 0]], np.int32),
        ),
        Tensor("pad value", (), np.int8, *q, data=np.array(pad_value, np.int8)),
        Tensor("padded", (N, H + 2 * pad, H + 2 * pad, C), np.int8, *q),
        Tensor("w", (F, K, K, C), np.int8, s_w, [0] * F, 0, w),
        Tensor("bias", (F,), np.int32, [s_in * s for s in s_w], [0] * F, 0, bias),
        Tensor("conv", (N, H, H, F), np.int8, [s_c], [z_c]),
        Tensor("pool", (N, H // 2, H // 2, F), np.int8, [s_c], [z_c]),
        Tensor("shape", (2,), np.int32, data=np.array([N, flat], np.int32)),
        Tensor("flat", (N, flat), np.int8, [s_c], [z_c]),
        Tensor("fc", (R, flat), np.int8, s_fc, [0] * R, 0, fc),
        Tensor("fc bias", (R,), np.int32, [s_c * s for s in s_fc], [0] * R, 0, fc_bias),
        Tensor("y", (N, R), np.int8, [s_out], [z_out]),
    ]
    ops = [
        Op(tflite.PADV2, [0, 1, 2], [3]),
        Op(
            tflite.CONV_2D,
            [3, 4, 5],
            [6],
            (
                "Conv2DOptions",
                {
                    "padding": tflite.VALID,
                    "stride_w": 1,
                    "stride_h": 1,
                    "fused_activation_function": tflite.RELU,
                },
            ),
        ),
        Op(
            tflite.MAX_POOL_2D,
            [6],
            [7],
            (
                "Pool2DOptions",
                {
                    "padding": tflite.VALID,
                    "stride_w": 2,
                    "stride_h": 2,
                    "filter_width": 2,
                    "filter_height": 2,
                },
            ),
        ),
        Op(tflite.RESHAPE, [7, 8], [9], ("ReshapeOptions", {"new_shape": [N, flat]})),
        Op(tflite.FULLY_CONNECTED, [9, 10, 11], [12], ("FullyConnectedOptions", {})),
    ]
    data = tflite.flatbuffer(tensors, ops, [0], [12])
    x = rng.integers(-128, 128, (N, H, H, C)).astype(np.int8)
    padded = np.pad(x, ((0, 0), (pad, pad), (pad, pad), (0, 0)), constant_values=pad_value)
    conv = requantize(conv_valid(padded, z_in, w, bias), s_in, s_w, s_c, z_c, relu=True)
    pool = conv.reshape(N, H // 2, 2, H // 2, 2, F).max(axis=(2, 4))
    acc = (pool.reshape(N, -1).astype(np.int64) - z_c) @ fc.T.astype(np.int64) + fc_bias
    return data, x, requantize(acc, s_c, s_fc, s_out, z_out, relu=False)


@pytest.mark.parametrize("resolver", RESOLVERS)
@pytest.mark.parametrize("seed", range(5))
def test_pad_conv_pool_reshape(resolver, seed):
    data, x, expected = small_cnn(seed)
    np.testing.assert_array_equal(run(data, x, RESOLVERS[resolver]), expected)


def test_xnnpack_within_one_step():
    """LiteRT's default, the XNNPACK delegate, rounds its float32 requantisation differently
    from TFLite's fixed-point multiplier now and then: by one step at most."""
    for seed in range(5):
        data, x, expected = small_cnn(seed)
        diff = run(data, x, OpResolverType.AUTO).astype(int) - expected
        assert np.abs(diff).max() <= 1
