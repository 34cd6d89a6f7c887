"""The integer-only model: its requantisation by hand, its agreement with the float model, the
one-byte gap encoding of its indices, and its C export compiled with the host's gcc, equal to
the NumPy reference bit for bit (logits and classes)."""
import math
import shutil
import subprocess

import numpy as np
import pytest

from tinyprune.data.transforms import to_input
from tinyprune.deploy.c_int8 import export_c_int8, gap_encode
from tinyprune.deploy.int8_model import (
    INPUT_SCALE,
    INPUT_ZERO,
    Int8Model,
    quantize_multiplier,
    requantize,
)
from tinyprune.nn.model import lenet5, lenet5_caffe, lenet_300_100
from tinyprune.prune.criteria import prune

# Reads `count` images of raw uint8 pixels, writes each one's int32 logits and its class.
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
    int32_t logits[MACRO_CLASSES + 1];
    for (long i = 0; i < atol(argv[2]); i++) {
        if (fread(pixels, 1, sizeof pixels, images) != sizeof pixels) return 4;
        logits[MACRO_CLASSES] = PREFIX_predict(pixels, logits);
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


def test_requantize_by_hand():
    m, n = 2**30, 31                                        # the multiplier 1/2
    acc = np.array([3, -3, 4, -5, 1000, -1000, 0])
    # 1.5 -> 2 and -1.5 -> -1 (half up), 2, -2.5 -> -2, then + zero 10 and clamp to -128..127
    np.testing.assert_array_equal(requantize(acc, m, n, 10, -128), [12, 9, 12, 8, 127, -128, 10])
    np.testing.assert_array_equal(requantize(acc, m, n, 10, 10), [12, 10, 12, 10, 127, 10, 10])


def test_quantize_multiplier_is_accurate_and_in_range():
    for real in [1e-6, 0.001, 0.0123, 0.5, 0.75, 0.999999999, 1.0, 3.7, 1000.0]:
        m, n = quantize_multiplier(real)
        assert 2**30 <= m < 2**31 and 1 <= n <= 62
        assert abs(m / 2**n - real) <= real * 2**-30
    with pytest.raises(ValueError, match="out of range"):
        quantize_multiplier(1e-30)


def test_input_quantisation_is_the_normalisation():
    pixels = np.arange(256, dtype=np.uint8).reshape(1, 16, 16)
    real = INPUT_SCALE * (pixels.astype(np.int64) - 128 - INPUT_ZERO)
    # exact but for the zero point's rounding: 255 * mean = 33.33 stands as 33
    np.testing.assert_allclose(real, to_input(pixels)[:, 0], atol=0.34 * INPUT_SCALE)


@pytest.mark.parametrize("build", [lenet5, lenet5_caffe, lenet_300_100])
def test_int8_logits_follow_the_float_ones(build):
    model = build(seed=0)
    prune(model, 0.8)
    calibration, test = images(200, seed=1), images(200, seed=2)
    q = Int8Model(model, calibration)
    float_logits = model.forward(to_input(test))
    int_logits = q.forward(test)
    assert int_logits.dtype == np.int32
    error = np.abs(int_logits * q.logit_scale - float_logits).max()
    assert error < 0.03 * np.abs(float_logits).max()
    assert (q.predict(test) == float_logits.argmax(axis=1)).mean() > 0.9


def test_gap_encoding_bridges_long_gaps_with_zero_fillers():
    ptr = np.array([0, 3, 3, 5])
    index = np.array([5, 300, 1000, 0, 255])
    values = np.array([1, 2, 3, 4, 5], np.int8)
    new_ptr, gap, new_values = gap_encode(ptr, index, values)
    decoded = [np.cumsum(gap[new_ptr[r]:new_ptr[r + 1]]) for r in range(3)]
    kept = [new_values[new_ptr[r]:new_ptr[r + 1]] for r in range(3)]
    assert gap.dtype == np.uint8 and gap.max() <= 255
    # row 0: 5, then 295 = 255 + 40, then 700 = 255 + 255 + 190
    assert list(gap[:new_ptr[1]]) == [5, 255, 40, 255, 255, 190]
    for r in range(3):
        nonzero = kept[r] != 0
        assert list(decoded[r][nonzero]) == list(index[ptr[r]:ptr[r + 1]])
        assert list(kept[r][nonzero]) == list(values[ptr[r]:ptr[r + 1]])
    assert new_ptr[-1] == len(gap) == 6 + 0 + 2


def run_host_c(q, pixels, tmp_path):
    """Export q, compile it with gcc and HARNESS, run it -> (int32 logits (N, C), classes)."""
    written = export_c_int8(q, tmp_path)
    prefix = written["prefix"]
    (tmp_path / "main.c").write_text(HARNESS.replace("PREFIX", prefix)
                                     .replace("MACRO", prefix.upper()))
    build = subprocess.run(["gcc", "-std=c99", "-Wall", "-Wextra", "-Werror", "-O2", "-o",
                            str(tmp_path / "predict"), str(written["c"]),
                            str(tmp_path / "main.c")], capture_output=True, text=True,
                           check=False)
    assert build.returncode == 0 and build.stderr == "", build.stderr
    pixels.tofile(tmp_path / "images.u8")
    subprocess.run([str(tmp_path / "predict"), str(tmp_path / "images.u8"), str(len(pixels)),
                    str(tmp_path / "out.i32")], check=True)
    out = np.fromfile(tmp_path / "out.i32", np.int32).reshape(len(pixels), -1)
    return out[:, :-1], out[:, -1]


@pytest.mark.skipif(shutil.which("gcc") is None, reason="no gcc on this machine")
@pytest.mark.parametrize("build, sparsity", [(lenet5, 0.9), (lenet5, 0.0), (lenet5_caffe, 0.95),
                                             (lenet_300_100, 0.9)])
def test_c_equals_the_reference_bit_for_bit(build, sparsity, tmp_path):
    model = build(seed=0)
    prune(model, sparsity)
    q = Int8Model(model, images(100, seed=3))
    pixels = images(300, seed=4)
    logits, classes = run_host_c(q, pixels, tmp_path)
    reference = q.forward(pixels)
    np.testing.assert_array_equal(logits, reference)
    np.testing.assert_array_equal(classes, reference.argmax(axis=1))
    assert len(np.unique(logits, axis=0)) > len(pixels) // 2   # not a constant answer


@pytest.mark.skipif(shutil.which("gcc") is None, reason="no gcc on this machine")
def test_a_layer_pruned_away_entirely(tmp_path):
    model = lenet5(seed=0)
    prune(model, 0.5)
    model.layers["fc2"].weight.value[...] = 0           # an empty weight array in C
    model.layers["fc2"].bias.value[...] = np.linspace(-1, 1, 84)
    q = Int8Model(model, images(50, seed=5))
    pixels = images(20, seed=6)
    logits, classes = run_host_c(q, pixels, tmp_path)
    np.testing.assert_array_equal(logits, q.forward(pixels))
    np.testing.assert_array_equal(classes, q.predict(pixels))
    assert math.isfinite(q.logit_scale)
