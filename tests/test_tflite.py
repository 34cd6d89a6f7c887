"""The .tflite writer (deploy/tflite.py), checked by LiteRT's interpreter (ai-edge-litert).

Small int8 graphs built by hand run in LiteRT and equal a NumPy transcription, written here,
of the integer arithmetic of LiteRT's builtin kernels; then tinyprune's int8 models through
LiteRT equal their reference (deploy/int8_model.py), a pruned LeNet-5 on all 10,000 test
images, bit for bit.

Without ai-edge-litert or flatbuffers these tests skip, saying what to install; with CI=true
they fail instead, since CI must run them."""

import math

import numpy as np
import pytest
from helpers import quickly_pruned_lenet5, skip_without
from numpy.lib.stride_tricks import sliding_window_view

skip_without("flatbuffers", "ai_edge_litert")

from ai_edge_litert.interpreter import Interpreter, OpResolverType  # noqa: E402

from tinyprune.data.transforms import to_input  # noqa: E402
from tinyprune.deploy import tflite  # noqa: E402
from tinyprune.deploy.int8_model import Int8Model  # noqa: E402
from tinyprune.deploy.tflite import Graph, Tensor  # noqa: E402
from tinyprune.deploy.weight_sharing import parse_bits, share_weights  # noqa: E402
from tinyprune.nn.model import lenet5, lenet5_caffe, lenet_300_100  # noqa: E402
from tinyprune.prune.criteria import prune  # noqa: E402

# ---- The arithmetic of TFLite's int8 kernels, in NumPy ----


def quantize_multiplier(real: float) -> tuple[int, int]:
    """QuantizeMultiplier: real = m * 2^(shift - 31), m in [2^30, 2^31), std::round."""
    q, shift = math.frexp(real)
    m = math.floor(q * 2**31 + 0.5)  # std::round: half away from zero (q > 0)
    if m == 2**31:
        m, shift = m // 2, shift + 1
    return m, shift


def doubling_high_mul(x: np.ndarray, m: int) -> np.ndarray:
    """gemmlowp's SaturatingRoundingDoublingHighMul(x, m): (x m + nudge) / 2^31, the division
    truncating toward 0 as C's does (no saturation: m > 0)."""
    ab = x.astype(np.int64) * m
    v = ab + np.where(ab >= 0, 1 << 30, 1 - (1 << 30))
    return np.where(v >= 0, v >> 31, -(-v >> 31))


def builtin_multiply(x: np.ndarray, m: int, shift: int) -> np.ndarray:
    """x * m * 2^(shift - 31) as LiteRT's builtin CONV_2D and FULLY_CONNECTED compute it:
    doubling_high_mul, then a right shift rounding to nearest, ties upward (as Arm's SRSHL)."""
    left, right = max(shift, 0), max(-shift, 0)
    high = doubling_high_mul(x.astype(np.int64) << left, m)
    return (high + ((1 << right) >> 1)) >> right


def reference_multiply(x: np.ndarray, m: int, shift: int) -> np.ndarray:
    """The same as TFLite's MultiplyByQuantizedMultiplier (common.h) writes it: the right
    shift by gemmlowp's RoundingDivideByPOT, ties away from zero. Not what LiteRT runs."""
    left, right = max(shift, 0), max(-shift, 0)
    high = doubling_high_mul(x.astype(np.int64) << left, m)
    mask = (1 << right) - 1
    return (high >> right) + ((high & mask) > (mask >> 1) + (high < 0))


def requantize(acc, s_in, s_w, s_out, zero, relu, multiply=builtin_multiply):
    """int32 acc (..., channels) -> int8 output with per-channel multipliers from the float32
    scales, as PopulateConvolutionQuantizationParams computes them."""
    out = np.empty(acc.shape, np.int64)
    for c in range(acc.shape[-1]):
        real = float(np.float32(s_in)) * float(np.float32(s_w[c])) / float(np.float32(s_out))
        out[..., c] = multiply(acc[..., c], *quantize_multiplier(real))
    return np.clip(out + zero, zero if relu else -128, 127).astype(np.int8)


# TFLite's builtin kernels, without the XNNPACK delegate LiteRT adds by default: XNNPACK
# requantises in float (test_xnnpack_within_one_step), and LiteRT 2.3's reference kernels
# (BUILTIN_REF) round FULLY_CONNECTED's per-channel requantisation once, not twice as
# TFLite's MultiplyByQuantizedMultiplier and its other kernels do (see docs/tflite.md).
BUILTIN = OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES


def run(data: bytes, x: np.ndarray, resolver=BUILTIN):
    """The .tflite's output for input x (all of it as one batch) in LiteRT's interpreter."""
    interpreter = Interpreter(model_content=data, experimental_op_resolver_type=resolver)
    index = interpreter.get_input_details()[0]["index"]
    interpreter.resize_tensor_input(index, x.shape)
    interpreter.allocate_tensors()
    interpreter.set_tensor(index, x)
    interpreter.invoke()
    return interpreter.get_tensor(interpreter.get_output_details()[0]["index"])


def scales(rng, n):
    return [float(s) for s in rng.uniform(0.002, 0.02, n)]


@pytest.mark.parametrize("relu", [False, True])
def test_fully_connected_per_channel(relu):
    """FULLY_CONNECTED, int8 in and out, a scale per output row: LiteRT == NumPy."""
    rng = np.random.default_rng(1)
    N, M, R, s_in, z_in, s_out, z_out = 4000, 40, 12, 0.05, -7, 0.2, 9
    w = rng.integers(-127, 128, (R, M)).astype(np.int8)
    w[rng.random((R, M)) < 0.5] = 0  # pruned
    bias = rng.integers(-3000, 3000, R).astype(np.int32)
    s_w = scales(rng, R)
    g = Graph()
    inputs = [
        g.tensor("x", (N, M), np.int8, [s_in], [z_in]),
        g.tensor("w", (R, M), np.int8, s_w, [0] * R, data=w),
        g.tensor("bias", (R,), np.int32, [s_in * s for s in s_w], [0] * R, data=bias),
    ]
    options = ("FullyConnectedOptions", {"fused_activation_function": int(relu)})
    y = g.op(
        tflite.FULLY_CONNECTED, inputs, Tensor("y", (N, R), np.int8, [s_out], [z_out]), options
    )
    x = rng.integers(-128, 128, (N, M)).astype(np.int8)
    acc = (x.astype(np.int64) - z_in) @ w.T.astype(np.int64) + bias
    expected = requantize(acc, s_in, s_w, s_out, z_out, relu)
    assert len(np.unique(expected)) > 50, "outputs spread over the int8 range"
    data = tflite.flatbuffer(g, [inputs[0]], [y])
    np.testing.assert_array_equal(run(data, x), expected)


@pytest.mark.parametrize("op", ["FULLY_CONNECTED", "CONV_2D"])
def test_ties_round_upward(op):
    """Multipliers that are powers of two put half the outputs on a tie: LiteRT's builtin
    kernels break them upward, where TFLite's MultiplyByQuantizedMultiplier (common.h) breaks
    them away from zero; the two differ on negative ties only."""
    rng = np.random.default_rng(4)
    N, M, R = 2000, 20, 6
    s_w = [2.0**-k for k in range(1, R + 1)]  # multipliers 2^-1 .. 2^-6 (s_in = s_out)
    w = rng.integers(-127, 128, (R, M)).astype(np.int8)
    bias = rng.integers(-300, 300, R).astype(np.int32)
    shape = (N, M) if op == "FULLY_CONNECTED" else (N, 1, 1, M)
    g = Graph()
    inputs = [
        g.tensor("x", shape, np.int8, [0.5], [0]),
        g.tensor("w", (R, *shape[1:]), np.int8, s_w, [0] * R, data=w.reshape(R, *shape[1:])),
        g.tensor("bias", (R,), np.int32, [0.5 * s for s in s_w], [0] * R, data=bias),
    ]
    conv = {"padding": tflite.VALID, "stride_w": 1, "stride_h": 1}
    options = ("Conv2DOptions", conv) if op == "CONV_2D" else None
    output = Tensor("y", (*shape[:-1], R), np.int8, [0.5], [0])
    y = g.op(getattr(tflite, op), inputs, output, options)
    x = rng.integers(-20, 20, shape).astype(np.int8)
    acc = x.reshape(N, M).astype(np.int64) @ w.T.astype(np.int64) + bias
    upward = requantize(acc, 0.5, s_w, 0.5, 0, False).reshape(*shape[:-1], R)
    away = requantize(acc, 0.5, s_w, 0.5, 0, False, reference_multiply).reshape(upward.shape)
    assert (upward != away).mean() > 0.01
    np.testing.assert_array_equal(run(tflite.flatbuffer(g, [0], [y]), x), upward)


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
    flat = F * (H // 2) ** 2
    w = rng.integers(-127, 128, (F, K, K, C)).astype(np.int8)
    bias = rng.integers(-500, 500, F).astype(np.int32)
    fc = rng.integers(-127, 128, (R, flat)).astype(np.int8)
    fc_bias = rng.integers(-500, 500, R).astype(np.int32)
    s_w, s_fc = scales(rng, F), scales(rng, R)

    g = Graph()
    x = g.tensor("x", (N, H, H, C), np.int8, [s_in], [z_in])
    paddings = np.array([[0, 0], [pad, pad], [pad, pad], [0, 0]])
    inputs = [
        x,
        g.tensor("paddings", (4, 2), np.int32, data=paddings),
        g.tensor("pad value", (), np.int8, [s_in], [z_in], data=np.int8(pad_value)),
    ]
    P = H + 2 * pad
    h = g.op(tflite.PADV2, inputs, Tensor("padded", (N, P, P, C), np.int8, [s_in], [z_in]))
    inputs = [
        h,
        g.tensor("w", (F, K, K, C), np.int8, s_w, [0] * F, data=w),
        g.tensor("bias", (F,), np.int32, [s_in * s for s in s_w], [0] * F, data=bias),
    ]
    conv_options = {"padding": tflite.VALID, "stride_w": 1, "stride_h": 1}
    conv_options["fused_activation_function"] = tflite.RELU
    h = g.op(
        tflite.CONV_2D,
        inputs,
        Tensor("conv", (N, H, H, F), np.int8, [s_c], [z_c]),
        ("Conv2DOptions", conv_options),
    )
    pool = {"padding": tflite.VALID, "stride_w": 2, "stride_h": 2}
    pool |= {"filter_width": 2, "filter_height": 2}
    h = g.op(
        tflite.MAX_POOL_2D,
        [h],
        Tensor("pool", (N, H // 2, H // 2, F), np.int8, [s_c], [z_c]),
        ("Pool2DOptions", pool),
    )
    shape = g.tensor("shape", (2,), np.int32, data=np.array([N, flat]))
    h = g.op(
        tflite.RESHAPE,
        [h, shape],
        Tensor("flat", (N, flat), np.int8, [s_c], [z_c]),
        ("ReshapeOptions", {"new_shape": [N, flat]}),
    )
    inputs = [
        h,
        g.tensor("fc", (R, flat), np.int8, s_fc, [0] * R, data=fc),
        g.tensor("fc bias", (R,), np.int32, [s_c * s for s in s_fc], [0] * R, data=fc_bias),
    ]
    y = g.op(tflite.FULLY_CONNECTED, inputs, Tensor("y", (N, R), np.int8, [s_out], [z_out]))
    data = tflite.flatbuffer(g, [x], [y])

    x = rng.integers(-128, 128, (N, H, H, C)).astype(np.int8)
    padded = np.pad(x, ((0, 0), (pad, pad), (pad, pad), (0, 0)), constant_values=pad_value)
    conv = requantize(conv_valid(padded, z_in, w, bias), s_in, s_w, s_c, z_c, relu=True)
    pool = conv.reshape(N, H // 2, 2, H // 2, 2, F).max(axis=(2, 4))
    acc = (pool.reshape(N, -1).astype(np.int64) - z_c) @ fc.T.astype(np.int64) + fc_bias
    return data, x, requantize(acc, s_c, s_fc, s_out, z_out, relu=False)


@pytest.mark.parametrize("seed", range(5))
def test_pad_conv_pool_reshape(seed):
    data, x, expected = small_cnn(seed)
    np.testing.assert_array_equal(run(data, x), expected)


def test_xnnpack_within_one_step():
    """LiteRT's default, the XNNPACK delegate, rounds its float32 requantisation differently
    from TFLite's fixed-point multiplier now and then: by one step at most."""
    for seed in range(5):
        data, x, expected = small_cnn(seed)
        diff = run(data, x, OpResolverType.AUTO).astype(int) - expected
        assert np.abs(diff).max() <= 1


# ---- tinyprune's int8 models, written by tflite.write ----


def random_images(n, seed):
    """uint8 (n, 28, 28): sparse bright strokes on black, roughly like MNIST digits."""
    rng = np.random.default_rng(seed)
    bright = rng.integers(128, 256, (n, 28, 28))
    return np.where(rng.random((n, 28, 28)) < 0.2, bright, 0).astype(np.uint8)


def written(q, tmp_path) -> bytes:
    path = tmp_path / f"{q.name}.tflite"
    size = tflite.write(q, path)
    assert size == path.stat().st_size
    return path.read_bytes()


@pytest.mark.parametrize("make", [lenet5, lenet5_caffe, lenet_300_100])
def test_untrained_models_equal_the_reference(make, tmp_path):
    """Each model of the zoo, pruned by half, untrained: LiteRT == Int8Model.forward on
    digit-like noise (the padding, the flatten's order and the ReLUs all show in its bits)."""
    model = make(seed=3)
    prune(model, 0.5)
    q = Int8Model(model, random_images(200, seed=0))
    pixels = random_images(300, seed=1)
    scores = run(written(q, tmp_path), pixels[..., None])
    np.testing.assert_array_equal(scores, q.forward(pixels))
    assert len(np.unique(scores, axis=0)) > len(pixels) // 2, "the scores tell images apart"


def test_shared_weights(tmp_path):
    """Weights shared by a 4-bit codebook go in as the int8 values they stand for."""
    model = lenet5(seed=0)
    prune(model, 0.9)
    shared = share_weights(model, parse_bits("4", model))
    q = Int8Model(model, random_images(100, seed=0), shared)
    pixels = random_images(200, seed=1)
    np.testing.assert_array_equal(run(written(q, tmp_path), pixels[..., None]), q.forward(pixels))


def test_the_file_says_what_it_takes_and_gives(tmp_path):
    """Input: the raw image, uint8 (1, 28, 28, 1) whose real value is the pixel (scale 1,
    zero point 0); output: int8 scores (1, 10)."""
    model = lenet5(seed=0)
    q = Int8Model(model, random_images(50, seed=0))
    interpreter = Interpreter(model_content=written(q, tmp_path))
    (given,), (out,) = interpreter.get_input_details(), interpreter.get_output_details()
    assert given["dtype"] == np.uint8 and tuple(given["shape"]) == (1, 28, 28, 1)
    assert given["quantization"] == (1.0, 0)
    assert out["dtype"] == np.int8 and tuple(out["shape"]) == (1, 10)


@pytest.mark.slow
def test_pruned_lenet5_on_all_test_images(tmp_path):
    """LeNet-5 trained one epoch on 6,000 images, pruned 50%, fine-tuned one epoch: through
    LiteRT, all 10,000 test images give Int8Model.forward's scores bit for bit."""
    model, data = quickly_pruned_lenet5(sparsity=0.5)
    q = Int8Model(model, data.train_images[:2000])
    scores = run(written(q, tmp_path), data.test_images[..., None])
    expected = q.forward(data.test_images)
    np.testing.assert_array_equal(scores, expected)
    # and it classifies as the float model does, to within a point
    int8 = float((scores.argmax(axis=1) == data.test_labels).mean())
    float32 = float(
        (model.forward(to_input(data.test_images)).argmax(axis=1) == data.test_labels).mean()
    )
    assert abs(int8 - float32) < 0.01, (int8, float32)
