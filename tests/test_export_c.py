"""The C export compiles with gcc -std=c99 -Wall -Wextra -Werror and computes what Python does:
on random images for untrained models (fast), and on the 10,000 real MNIST test images for a
quickly trained and pruned LeNet-5 (slow)."""

import shutil
import subprocess
import sys

import numpy as np
import pytest
from helpers import quickly_pruned_lenet5

from tinyprune.data.datasets import FASHION_MNIST, MNIST
from tinyprune.data.transforms import to_input
from tinyprune.deploy import tpz
from tinyprune.deploy.c_export import (
    CLayer,
    c_float,
    dense_is_smaller,
    dense_rows,
    export_c,
    predict_body,
)
from tinyprune.deploy.sparse_model import SparseModel
from tinyprune.nn.model import lenet5, lenet5_caffe
from tinyprune.prune.criteria import prune
from tinyprune.train.loop import evaluate

CFLAGS = ["-std=c99", "-Wall", "-Wextra", "-Werror", "-O2"]

# Reads `count` images of raw uint8 pixels, writes each one's logits (float32) and class (uint8).
HARNESS = r"""
#include <stdio.h>
#include <stdlib.h>
#include "PREFIX.h"

int main(int argc, char **argv)
{
    if (argc != 5) return 2;
    FILE *images = fopen(argv[1], "rb"), *logits_out = fopen(argv[3], "wb"),
         *classes_out = fopen(argv[4], "wb");
    if (!images || !logits_out || !classes_out) return 3;
    long count = atol(argv[2]);
    unsigned char pixels[MACRO_INPUT_SIZE];
    float logits[MACRO_CLASSES];
    for (long i = 0; i < count; i++) {
        if (fread(pixels, 1, sizeof pixels, images) != sizeof pixels) return 4;
        unsigned char k = (unsigned char)PREFIX_predict_u8(pixels, logits);
        fwrite(logits, sizeof logits[0], MACRO_CLASSES, logits_out);
        fwrite(&k, 1, 1, classes_out);
    }
    return fclose(logits_out) || fclose(classes_out);
}
"""

needs_gcc = pytest.mark.skipif(shutil.which("gcc") is None, reason="no gcc on this machine")


def compile_and_run(model, images: np.ndarray, tmp_path):
    """Export the model, build it with HARNESS, run it on uint8 images (N, 28, 28)
    -> (logits (N, classes) float32, classes (N,) from <prefix>_predict_u8)."""
    written = export_c(model, tmp_path)
    prefix = written["c"].stem
    (tmp_path / "main.c").write_text(
        HARNESS.replace("PREFIX", prefix).replace("MACRO", prefix.upper())
    )
    binary = tmp_path / "predict"
    build = subprocess.run(
        ["gcc", *CFLAGS, "-o", str(binary), str(written["c"]), str(tmp_path / "main.c")],
        capture_output=True,
        text=True,
    )
    assert build.returncode == 0 and build.stderr == "", build.stderr  # no warnings at all
    images.astype(np.uint8).tofile(tmp_path / "images.u8")
    subprocess.run(
        [
            str(binary),
            str(tmp_path / "images.u8"),
            str(len(images)),
            str(tmp_path / "logits.f32"),
            str(tmp_path / "classes.u8"),
        ],
        check=True,
    )
    logits = np.fromfile(tmp_path / "logits.f32", np.float32).reshape(len(images), -1)
    return logits, np.fromfile(tmp_path / "classes.u8", np.uint8)


def check_agreement(model, images, tmp_path):
    """C against model.forward and SparseModel; -> the Python logits."""
    c_logits, c_classes = compile_and_run(model, images, tmp_path)
    x = to_input(images)
    logits = model.forward(x)
    np.testing.assert_array_equal(c_classes, logits.argmax(axis=1))
    np.testing.assert_array_equal(c_classes, SparseModel(model).forward(x).argmax(axis=1))
    np.testing.assert_allclose(c_logits, logits, rtol=1e-4, atol=1e-4 * np.abs(logits).max())
    return logits


def test_c_float_literals_read_back_exactly():
    for v in [0.0, -0.0, 1.0, 3.0, 1e-30, -0.1307, 123456.78, np.float32(1) / 3]:
        text = c_float(v)
        assert text.endswith("f") and np.float32(float(text[:-1])) == np.float32(v)
    with pytest.raises(ValueError, match="non-finite"):
        c_float(np.nan)


@needs_gcc
@pytest.mark.parametrize("build, sparsity", [(lenet5, 0.9), (lenet5, 0.0), (lenet5_caffe, 0.95)])
def test_export_compiles_cleanly_and_matches_python(build, sparsity, tmp_path):
    model = build(seed=0)
    prune(model, sparsity)
    images = np.random.default_rng(0).integers(0, 256, size=(64, 28, 28), dtype=np.uint8)
    check_agreement(model, images, tmp_path)


def test_pixels_are_normalised_as_the_data_set_says(tmp_path):
    mnist_c = export_c(lenet5(0), tmp_path / "mnist")["c"].read_text()
    fashion_c = export_c(lenet5(0), tmp_path / "fashion", dataset=FASHION_MNIST)["c"].read_text()
    assert c_float(FASHION_MNIST.mean) in fashion_c and c_float(MNIST.mean) not in fashion_c
    assert c_float(MNIST.mean) in mnist_c


@needs_gcc
def test_a_layer_pruned_away_entirely_still_compiles(tmp_path):
    model = lenet5()
    prune(model, 0.5)
    model.layers["fc2"].weight.value[...] = 0  # an empty weight array in C
    images = np.random.default_rng(1).integers(0, 256, size=(8, 28, 28), dtype=np.uint8)
    check_agreement(model, images, tmp_path)


def test_command_line(tmp_path):
    model = lenet5()
    prune(model, 0.9)
    model.save(tmp_path / "pruned.npz", with_masks=True)
    tpz.save(model, tmp_path / "pruned.tpz")
    for source in ("pruned.npz", "pruned.tpz"):
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "tinyprune.export_c",
                str(tmp_path / source),
                "--out",
                str(tmp_path / "c"),
            ],
            capture_output=True,
            text=True,
        )
        assert result.returncode == 0, result.stderr
        assert "of which the weight arrays take" in result.stdout
        assert "lenet5_predict_u8" in (tmp_path / "c" / "lenet5.c").read_text()
    assert sorted(p.name for p in (tmp_path / "c").iterdir()) == [
        "lenet5.c",
        "lenet5.h",
        "lenet5_main.c",
    ]
    missing = subprocess.run(
        [
            sys.executable,
            "-m",
            "tinyprune.export_c",
            str(tmp_path / "no.npz"),
            "--out",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
    )
    assert missing.returncode == 2 and "no.npz does not exist" in missing.stderr
    (tmp_path / "junk.tpz").write_text("junk")
    junk = subprocess.run(
        [
            sys.executable,
            "-m",
            "tinyprune.export_c",
            str(tmp_path / "junk.tpz"),
            "--out",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
    )
    assert junk.returncode == 1 and "tinyprune compressed model" in junk.stderr
    assert "Traceback" not in junk.stderr


@pytest.fixture(scope="module")
def trained_pruned_lenet5():
    """1 epoch on 6,000 real training images, 90% pruned, 1 epoch of fine-tuning; -> (model,
    the full MNIST data, test accuracy)."""
    model, data = quickly_pruned_lenet5()
    _, accuracy = evaluate(model, data.test_images, data.test_labels)
    return model, data, accuracy


@needs_gcc
@pytest.mark.slow
def test_c_agrees_with_python_on_all_mnist_test_images(trained_pruned_lenet5, tmp_path):
    model, data, accuracy = trained_pruned_lenet5
    assert accuracy > 0.5  # quick and 90% pruned, but well above chance (10%)
    logits = check_agreement(model, data.test_images, tmp_path)
    c_accuracy = (logits.argmax(axis=1) == data.test_labels).mean()
    print(
        f"Python float32 accuracy {accuracy:.2%}; the C file's "
        f"{c_accuracy:.2%} on the same 10,000 images"
    )


def test_int8_layers_are_stored_dense_only_when_that_is_smaller():
    """A layer's dense array (rows padded to 4) against its gap stream (>= 2 bytes a kept
    weight, 2 a row): all kept or three quarters kept -> dense; a tenth -> gap stream; a linear
    layer whose input is not a multiple of 4 long never (the C reads its input 4 at a time)."""
    rng = np.random.default_rng(0)
    assert dense_is_smaller(np.ones((6, 1, 5, 5), bool))
    assert dense_is_smaller(rng.random((120, 400)) < 0.75)
    assert not dense_is_smaller(rng.random((120, 400)) < 0.1)
    assert not dense_is_smaller(np.ones((10, 30), bool))
    rows = dense_rows(np.arange(1, 26, dtype=np.int8).reshape(1, 1, 5, 5))
    np.testing.assert_array_equal(rows, [*range(1, 26), 0, 0, 0])


def test_a_sparse_int8_conv_whose_taps_need_more_than_16_bits_of_offset_is_refused():
    """An int8 tap holds its offset in the padded input in 16 bits: 70 channels of 34x34
    (80,920 values) are refused with what to do; 50 (57,800) and a float export are not."""
    kept = np.zeros((2, 70, 3, 3), bool)
    kept[:, -1, 2, 2] = True  # the last channel's last tap: offset 80,919
    layer = CLayer("conv1", kept, 1, [], "")
    with pytest.raises(ValueError, match="65,536.*float32"):
        predict_body([layer], (70, 32, 32), "int8_t")
    assert any("conv_pool" in line for line in predict_body([layer], (70, 32, 32), "float"))
    small = CLayer("conv1", kept[:, :50], 1, [], "")
    assert any("conv_pool" in line for line in predict_body([small], (50, 32, 32), "int8_t"))
