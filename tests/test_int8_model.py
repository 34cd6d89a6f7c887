"""TFLite's int8 scheme and the integer-only model: the quantisation and requantisation by hand
and against a slow twin written from TFLite's definitions, the model's agreement with the float
one, the one-byte gap encoding of its indices, and its C export compiled with the host's gcc,
equal to the NumPy reference bit for bit (logits and classes)."""

import math
import shutil
import subprocess
import sys

import numpy as np
import pytest

from tinyprune.data.datasets import MNIST
from tinyprune.data.transforms import to_input
from tinyprune.deploy import tpz
from tinyprune.deploy.c_export import SKIP, export_c_int8, gap_encode, pack_indices
from tinyprune.deploy.int8_model import Int8Model, input_params
from tinyprune.deploy.quantize import (
    activation_params,
    dequantize_int8,
    multiply_by_quantized_multiplier,
    quantize_int8,
    quantize_multiplier,
    rounding_divide_by_pot,
    saturating_rounding_doubling_high_mul,
)
from tinyprune.deploy.weight_sharing import parse_bits, share_weights
from tinyprune.nn.model import lenet5, lenet5_caffe, lenet_300_100
from tinyprune.prune.criteria import prune

# Reads `count` images of raw uint8 pixels, writes each one's int8 logits and its class.
HARNESS = r"""
#include <stdio.h>
#include <stdlib.h>
#include "PREFIX.h"

int main(int argc, char **argv)
{
    if (argc != 4) return 2;
    FILE *images = fopen(argv[1], "rb"), *out = fopen(argv[3], "wb");
    if (!images || !out) return 3;
    uint8_t pixels[MACRO_INPUT_SIZE];
    int8_t logits[MACRO_CLASSES + 1];
    for (long i = 0; i < atol(argv[2]); i++) {
        if (fread(pixels, 1, sizeof pixels, images) != sizeof pixels) return 4;
        logits[MACRO_CLASSES] = (int8_t)PREFIX_predict(pixels, logits);
        fwrite(logits, sizeof logits[0], MACRO_CLASSES + 1, out);
    }
    return fclose(out);
}
"""


def images(n, seed=0):
    """uint8 (n, 28, 28): half noise, half digit-like strokes on a black background (MNIST-ish,
    mostly 0 with some 255), so both saturation and the common case are exercised."""
    rng = np.random.default_rng(seed)
    noise = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
    strokes = np.where(rng.random((n, 28, 28)) < 0.2, 255, 0).astype(np.uint8)
    return np.where(np.arange(n)[:, None, None] % 2 == 0, noise, strokes)


def test_quantize_int8_per_channel_by_hand():
    w = np.array([[0.5, -1.27, 0.005, 1.27], [0.0, 0.0, 0.0, 0.0], [0.1, 0.3, -0.3, 0.15]])
    q, scales = quantize_int8(w.astype(np.float32))
    np.testing.assert_array_equal(scales, np.float32([1.27 / 127, 1.0, 0.3 / 127]))
    assert q.dtype == np.int8
    # 0.005 / 0.01 = 0.5 rounds away from zero to 1; 0.15 / (0.3 / 127) = 63.5 to 64
    np.testing.assert_array_equal(q, [[50, -127, 1, 127], [0, 0, 0, 0], [42, 127, -127, 64]])
    error = np.abs(dequantize_int8(q, scales) - w)
    assert np.all(error <= scales[:, None] / 2 * (1 + 1e-5))


def test_activation_params_include_zero():
    assert activation_params(0.0, 2.55) == (np.float32(0.01), -128)
    scale, zero = activation_params(-1.0, 1.55)
    assert scale == np.float32(0.01) and zero == -28  # -128 + 1.0 / 0.01
    assert activation_params(0.5, 2.55)[1] == -128  # the range widened down to 0


def slow_srdhm(a: int, b: int) -> int:
    """gemmlowp's SaturatingRoundingDoublingHighMul, with Python ints."""
    if a == b == -(2**31):
        return 2**31 - 1
    ab = a * b
    s = ab + (2**30 if ab >= 0 else 1 - 2**30)
    return abs(s) // 2**31 * (1 if s >= 0 else -1)  # C's division: toward zero


def slow_rdbpot(x: int, exponent: int) -> int:
    """x / 2^exponent rounded to nearest, halves upward, with Python's exact fractions."""
    from fractions import Fraction

    return math.floor(Fraction(x, 2**exponent) + Fraction(1, 2))


def test_fixed_point_by_hand_and_against_slow_twins():
    # halves upward: 2.5 -> 3, -2.5 -> -2, -1.5 -> -1, 1.75 -> 2, -0.25 -> 0
    np.testing.assert_array_equal(
        rounding_divide_by_pot(np.array([5, -5, -3, 7, -1]), np.array([1, 1, 1, 2, 2])),
        [3, -2, -1, 2, 0],
    )
    assert saturating_rounding_doubling_high_mul(np.int64(-(2**31)), -(2**31)) == 2**31 - 1
    assert saturating_rounding_doubling_high_mul(np.int64(3), 2**30) == 2  # 1.5 -> 2
    assert saturating_rounding_doubling_high_mul(np.int64(-3), 2**30) == -1  # -1.5 -> -1
    rng = np.random.default_rng(0)
    a = np.concatenate([rng.integers(-(2**31), 2**31, 2000), [-(2**31), 2**31 - 1, 0, -1, 1]])
    b = rng.integers(2**30, 2**31, len(a))
    e = rng.integers(0, 32, len(a))
    high = saturating_rounding_doubling_high_mul(a, b)
    assert list(high) == [slow_srdhm(int(x), int(y)) for x, y in zip(a, b)]
    assert list(rounding_divide_by_pot(a, e)) == [slow_rdbpot(int(x), int(k)) for x, k in zip(a, e)]


def test_quantize_multiplier_is_accurate_and_in_range():
    for real in [1e-6, 0.001, 0.0123, 0.5, 0.75, 0.999999999, 1.0, 3.7, 1000.0]:
        m, shift = quantize_multiplier(real)
        assert 2**30 <= m < 2**31 and -31 <= shift <= 30
        assert abs(m / 2**31 * 2.0**shift - real) <= real * 2**-30
    with pytest.raises(ValueError, match="out of range"):
        quantize_multiplier(1e-30)
    # acc * 0.5 is m = 2^30, shift 0: the doubling high multiply alone, which rounds halves up
    m, shift = quantize_multiplier(0.5)
    acc = np.array([3, -3, 4, -5, 1000, 0])
    np.testing.assert_array_equal(
        multiply_by_quantized_multiplier(acc, m, shift), [2, -1, 2, -2, 500, 0]
    )
    # acc * 0.25 is m = 2^30, shift -1: 3 -> 2 (1.5 up), then 2 / 2 = 1; -3 -> -1, then
    # -0.5 -> 0 (halves upward); -5 -> -2, then -1
    m, shift = quantize_multiplier(0.25)
    np.testing.assert_array_equal(
        multiply_by_quantized_multiplier(acc, m, shift), [1, 0, 1, -1, 250, 0]
    )
    m, shift = quantize_multiplier(3.0)  # a left shift first
    np.testing.assert_array_equal(multiply_by_quantized_multiplier(acc, m, shift), acc * 3)


def test_input_quantisation_is_the_normalisation():
    pixels = np.arange(256, dtype=np.uint8).reshape(1, 16, 16)
    scale, zero = input_params(MNIST)
    real = scale * (pixels.astype(np.int64) - 128 - zero)
    # exact but for the zero point's rounding: 255 * mean = 33.33 stands as 33
    np.testing.assert_allclose(real, to_input(pixels)[:, 0], atol=0.34 * scale)


@pytest.mark.parametrize("build", [lenet5, lenet5_caffe, lenet_300_100])
def test_int8_logits_follow_the_float_ones(build):
    model = build(seed=0)
    prune(model, 0.8)
    calibration, test = images(200, seed=1), images(200, seed=2)
    q = Int8Model(model, calibration)
    float_logits = model.forward(to_input(test))
    int_logits = q.forward(test)
    assert int_logits.dtype == np.int8
    real = q.output_scale * (int_logits.astype(np.float64) - q.output_zero)
    assert np.abs(real - float_logits).max() < 0.05 * np.abs(float_logits).max()
    assert (q.predict(test) == float_logits.argmax(axis=1)).mean() > 0.9


def test_gap_encoding_jumps_long_gaps_with_skip_bytes():
    ptr = np.array([0, 3, 3, 5])
    columns = np.array([5, 300, 1000, 0, 255])
    new_ptr, gap = gap_encode(ptr, columns)
    assert gap.dtype == np.uint8
    # row 0: 5, then 295 = 255 + 40, then 700 = 255 + 255 + 190; row 2: 0, then 255 = 255 + 0
    assert list(gap) == [5, 255, 40, 255, 255, 190, 0, 255, 0]
    assert list(new_ptr) == [0, 6, 6, 9]
    for r in range(3):  # decode as the C does: move on by each gap, a weight unless 255
        row, position = [], 0
        for g in gap[new_ptr[r] : new_ptr[r + 1]]:
            position += int(g)
            if g != SKIP:
                row.append(position)
        assert row == list(columns[ptr[r] : ptr[r + 1]])


def test_packed_indices_read_back_as_the_c_reads_them():
    rng = np.random.default_rng(0)
    for bits in range(1, 9):
        index = rng.integers(0, 2**bits, size=101)
        packed = pack_indices(index, bits)
        assert len(packed) == -(-101 * bits // 8) + 1
        for n, expected in enumerate(index):
            bit = n * bits
            two = int(packed[bit >> 3]) | int(packed[(bit >> 3) + 1]) << 8
            assert (two >> (bit & 7)) & ((1 << bits) - 1) == expected


def run_host_c(q, pixels, tmp_path):
    """Export q, compile it with gcc and HARNESS, run it -> (int8 logits (N, C), classes)."""
    written = export_c_int8(q, tmp_path)
    prefix = written["prefix"]
    (tmp_path / "main.c").write_text(
        HARNESS.replace("PREFIX", prefix).replace("MACRO", prefix.upper())
    )
    # -mgeneral-regs-only: gcc refuses any float arithmetic in the exported model
    objects = []
    for source, flags in ((written["c"], ["-mgeneral-regs-only"]), (tmp_path / "main.c", [])):
        objects.append(tmp_path / f"{source.stem}.o")
        build = subprocess.run(
            ["gcc", "-std=c99", "-Wall", "-Wextra", "-Werror", "-O2", *flags, "-c"]
            + ["-o", str(objects[-1]), str(source)],
            capture_output=True,
            text=True,
            check=False,
        )
        assert build.returncode == 0 and build.stderr == "", build.stderr
    subprocess.run(["gcc", "-o", str(tmp_path / "predict"), *map(str, objects)], check=True)
    pixels.tofile(tmp_path / "images.u8")
    subprocess.run(
        [
            str(tmp_path / "predict"),
            str(tmp_path / "images.u8"),
            str(len(pixels)),
            str(tmp_path / "out.i8"),
        ],
        check=True,
    )
    out = np.fromfile(tmp_path / "out.i8", np.int8).reshape(len(pixels), -1)
    return out[:, :-1], out[:, -1]


@pytest.mark.skipif(shutil.which("gcc") is None, reason="no gcc on this machine")
@pytest.mark.parametrize(
    "build, sparsity", [(lenet5, 0.9), (lenet5, 0.0), (lenet5_caffe, 0.95), (lenet_300_100, 0.9)]
)
def test_c_equals_the_reference_bit_for_bit(build, sparsity, tmp_path):
    model = build(seed=0)
    prune(model, sparsity)
    q = Int8Model(model, images(100, seed=3))
    pixels = images(300, seed=4)
    logits, classes = run_host_c(q, pixels, tmp_path)
    reference = q.forward(pixels)
    np.testing.assert_array_equal(logits, reference)
    np.testing.assert_array_equal(classes, reference.argmax(axis=1))
    assert len(np.unique(logits, axis=0)) > len(pixels) // 2  # not a constant answer


@pytest.mark.skipif(shutil.which("gcc") is None, reason="no gcc on this machine")
@pytest.mark.parametrize("build, bits", [(lenet5, "conv=8,fc=5"), (lenet_300_100, "3")])
def test_shared_weights_c_equals_the_reference_bit_for_bit(build, bits, tmp_path):
    model = build(seed=0)
    prune(model, 0.9)
    shared = share_weights(model, parse_bits(bits, model))
    q = Int8Model(model, images(100, seed=7), shared)
    pixels = images(200, seed=8)
    logits, classes = run_host_c(q, pixels, tmp_path)
    np.testing.assert_array_equal(logits, q.forward(pixels))
    np.testing.assert_array_equal(classes, q.predict(pixels))
    assert len(np.unique(logits, axis=0)) > len(pixels) // 2
    c_text = (tmp_path / f"{model.name.replace('-', '_')}_shared.c").read_text()
    assert "fc1_codebook" in c_text and "fc1_values" not in c_text  # nothing expanded
    # each shared layer holds at most 2^bits distinct int8 weights
    for stage in q.stages:
        assert len(np.unique(stage.weight[stage.kept])) <= len(stage.codebook)


def test_shared_weights_must_be_the_models():
    model = lenet5(seed=0)
    prune(model, 0.5)
    shared = share_weights(model, parse_bits("4", model))
    model.layers["fc1"].weight.value[0, 0] += 1.0
    with pytest.raises(ValueError, match="not its shared values"):
        Int8Model(model, images(10), shared)


@pytest.mark.skipif(shutil.which("gcc") is None, reason="no gcc on this machine")
def test_a_layer_pruned_away_entirely(tmp_path):
    model = lenet5(seed=0)
    prune(model, 0.5)
    model.layers["fc2"].weight.value[...] = 0  # an empty weight array in C
    model.layers["fc2"].bias.value[...] = np.linspace(-1, 1, 84)
    q = Int8Model(model, images(50, seed=5))
    pixels = images(20, seed=6)
    logits, classes = run_host_c(q, pixels, tmp_path)
    np.testing.assert_array_equal(logits, q.forward(pixels))
    np.testing.assert_array_equal(classes, q.predict(pixels))
    assert math.isfinite(q.output_scale)


def test_command_line_int8_and_shared(tmp_path):
    model = lenet5(seed=0)
    prune(model, 0.9)
    model.save(tmp_path / "pruned.npz", with_masks=True)
    shared = share_weights(model, parse_bits("conv=8,fc=5", model))
    tpz.save(model, tmp_path / "shared.tpz", "shared", shared)
    for source, written in (("pruned.npz", "lenet5_int8.c"), ("shared.tpz", "lenet5_shared.c")):
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "tinyprune.export_c",
                str(tmp_path / source),
                "--out",
                str(tmp_path / "c"),
                "--int8",
                "--calibration",
                "100",
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        assert result.returncode == 0, result.stderr
        assert f"wrote {tmp_path / 'c' / written}" in result.stdout
    assert "conv1_codebook" in (tmp_path / "c" / "lenet5_shared.c").read_text()
    assert "#define INT8_MODEL" in (tmp_path / "c" / "lenet5_int8.c").read_text()
