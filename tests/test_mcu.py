"""Exported models on emulated microcontrollers: cross-compiled with arm-none-eabi-gcc for a
Cortex-M4 (FPU, DSP), a Cortex-M3 (neither), a Cortex-M33 and a Cortex-M55 (Helium), run
bare-metal on QEMU's MPS2/MPS3 boards by our harness, and held to Python image by image: the
int8 variant bit for bit (with and without the DSP extension's SMLAD path), the float one class
for class; and the stack each call took against the one its header says to give it.

Without the Arm toolchain or QEMU these tests skip, saying what to install; with CI=true they
fail instead, since CI must run them."""

import copy
import os
import re

import numpy as np
import pytest
from helpers import quickly_pruned_lenet5

from tinyprune.data.transforms import to_input
from tinyprune.deploy.mcu.build import TARGETS, Program, build, footprint, missing_tools
from tinyprune.deploy.mcu.qemu import run
from tinyprune.deploy.mcu.variants import export_variant
from tinyprune.deploy.weight_sharing import parse_bits, share_weights
from tinyprune.nn.model import lenet5, lenet_300_100
from tinyprune.prune.criteria import prune


@pytest.fixture(autouse=True)
def arm_tools():
    reason = missing_tools()
    if reason is not None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI=true, so the Cortex-M tests must run, but {reason}")
        pytest.skip(reason)


def random_images(n, seed):
    """uint8 (n, 28, 28): sparse bright strokes on black, roughly like MNIST digits."""
    rng = np.random.default_rng(seed)
    return np.where(rng.random((n, 28, 28)) < 0.2, rng.integers(128, 256, (n, 28, 28)), 0).astype(
        np.uint8
    )


def run_variant(model, name, target, images, tmp_path, calibration=None, shared=None):
    """Export, build and run on QEMU; -> (variant, the device's RunResult)."""
    variant = export_variant(model, name, tmp_path / name, calibration, shared)
    elf = build(variant.program, TARGETS[target], tmp_path / name / target)
    result = run(elf, TARGETS[target], images, tmp_path / "work", variant.program.classes)
    return variant, result


def assert_agrees(variant, result, images):
    """The device against Python: bit for bit (int8) or same classes and close logits."""
    reference = variant.reference(images)
    device = variant.device_logits(result)
    np.testing.assert_array_equal(result.classes, reference.argmax(axis=1))
    if variant.exact:
        np.testing.assert_array_equal(device, reference)
    else:
        np.testing.assert_allclose(
            device, reference, rtol=1e-4, atol=1e-4 * np.abs(reference).max()
        )
    assert (result.instructions > 0).all()
    # the stack the call took: the buffers the header's SCRATCH_BYTES counts, and its kernels'
    # frames within the 512 bytes more that its STACK_BYTES says to give it
    header = variant.program.sources[0].with_suffix(".h").read_text()
    scratch = int(re.search(r"_SCRATCH_BYTES (\d+)", header).group(1))
    assert "_SCRATCH_BYTES + 512)" in header and scratch < result.stack <= scratch + 512


@pytest.mark.parametrize("target", list(TARGETS))
def test_int8_lenet5_on_the_device_is_bit_exact_and_fits(target, tmp_path):
    model = lenet5(seed=0)
    prune(model, 0.9)
    images = random_images(300, seed=1)
    variant, result = run_variant(
        model, "int8", target, images, tmp_path, calibration=random_images(100, seed=2)
    )
    assert_agrees(variant, result, images)
    size = footprint(variant.program, TARGETS[target], tmp_path / "size")
    # the budget for the 90%-pruned LeNet-5: 16 KB of flash, 8 KB of RAM
    assert 4000 < size["flash"] <= 16 * 1024
    assert size["static_ram"] + result.stack <= 8 * 1024 and result.stack > 1000


@pytest.mark.parametrize("target", ["cortex-m4", "cortex-m3"])
def test_dense_int8_lenet5_is_bit_exact_and_fits_72_kb(target, tmp_path):
    """Unpruned, and global 90% pruning (some layers dense, some gap streams, on this untrained
    model): the SMLAD kernels (M4) and their portable C (M3) give the reference's bits."""
    for sparsity in (0.0, 0.9):
        model = lenet5(seed=0)
        prune(model, sparsity, "global")
        images = random_images(100, seed=9)
        variant, result = run_variant(
            model, "int8", target, images, tmp_path, calibration=random_images(100, seed=10)
        )
        assert_agrees(variant, result, images)
        if sparsity == 0:
            source = variant.program.sources[0].read_text()
            assert "conv_pool_dense(input" in source and "linear_dense(" in source
            size = footprint(variant.program, TARGETS[target], tmp_path / "size")
            assert size["flash"] <= 72 * 1024  # 61,470 int8 weights, and everything else


def test_shared_lenet5_on_the_cortex_m4_is_bit_exact_and_smaller_than_int8(tmp_path):
    model = lenet5(seed=0)
    prune(model, 0.9)
    shared = share_weights(model, parse_bits("conv=8,fc=5", model))
    images, calibration = random_images(300, seed=7), random_images(100, seed=8)
    variant, result = run_variant(
        model, "shared", "cortex-m4", images, tmp_path, calibration, shared
    )
    assert_agrees(variant, result, images)
    shared_size = footprint(variant.program, TARGETS["cortex-m4"], tmp_path / "size")
    int8 = export_variant(model, "int8", tmp_path / "int8", calibration)
    int8_size = footprint(int8.program, TARGETS["cortex-m4"], tmp_path / "size8")
    # fc layers' 5-bit indices instead of 8-bit values: about 3/8 of 5,000 bytes saved
    assert shared_size["flash"] < int8_size["flash"] - 1500
    assert shared_size["static_ram"] + result.stack <= 8 * 1024


def test_float_lenet5_and_lenet_300_100_on_the_cortex_m4(tmp_path):
    for build_model, sparsity in [(lenet5, 0.5), (lenet_300_100, 0.9)]:
        model = build_model(seed=0)
        prune(model, sparsity)
        images = random_images(50, seed=3)
        variant, result = run_variant(model, "float", "cortex-m4", images, tmp_path)
        assert_agrees(variant, result, images)


def test_float_on_the_cortex_m3_without_fpu(tmp_path):
    model = lenet5(seed=0)
    prune(model, 0.9)
    images = random_images(10, seed=4)
    variant, result = run_variant(model, "float", "cortex-m3", images, tmp_path)
    assert_agrees(variant, result, images)


def test_a_crash_on_the_device_is_reported(tmp_path):
    (tmp_path / "crash.c").write_text(
        "int crash(const unsigned char *pixels, float *logits);\n"
        "int crash(const unsigned char *pixels, float *logits)\n"
        "{ (void)pixels; (void)logits; return *(volatile int *)0xF0000000; }\n"
    )
    program = Program([tmp_path / "crash.c"], "crash", "float", 784, 10)
    for target in TARGETS.values():
        elf = build(program, target, tmp_path / target.name)
        with pytest.raises(RuntimeError, match="failed with status 70(.|\n)*fault: the program"):
            run(elf, target, random_images(2, seed=6), tmp_path / "work", 10)


@pytest.fixture(scope="module")
def quick_lenet5():
    """LeNet-5 after 1 epoch on 6,000 real training images, pruned 90%, 1 epoch of fine-tuning;
    -> (model, MNIST)."""
    return quickly_pruned_lenet5()


@pytest.mark.slow
def test_int8_lenet5_on_all_10000_test_images_on_the_cortex_m4(quick_lenet5, tmp_path):
    model, data = quick_lenet5
    variant, result = run_variant(
        model, "int8", "cortex-m4", data.test_images, tmp_path, calibration=data.train_images[:2000]
    )
    assert_agrees(variant, result, data.test_images)
    accuracy = (result.classes == data.test_labels).mean()
    float_accuracy = (
        model.forward(to_input(data.test_images)).argmax(axis=1) == data.test_labels
    ).mean()
    assert accuracy > 0.5  # a quick model, 90% pruned, but well above chance (10%)
    assert abs(accuracy - float_accuracy) < 0.01, (accuracy, float_accuracy)


@pytest.mark.slow
def test_shared_lenet5_on_all_10000_test_images_on_the_cortex_m4(quick_lenet5, tmp_path):
    model, data = quick_lenet5
    model = copy.deepcopy(model)
    shared = share_weights(model, parse_bits("conv=8,fc=5", model))
    variant, result = run_variant(
        model, "shared", "cortex-m4", data.test_images, tmp_path, data.train_images[:2000], shared
    )
    assert_agrees(variant, result, data.test_images)
    assert (result.classes == data.test_labels).mean() > 0.5


@pytest.mark.slow
def test_float_lenet5_on_1000_test_images_on_the_cortex_m4(quick_lenet5, tmp_path):
    model, data = quick_lenet5
    images = data.test_images[:1000]
    variant, result = run_variant(model, "float", "cortex-m4", images, tmp_path)
    assert_agrees(variant, result, images)


def test_instruction_counts_are_right_on_every_board(tmp_path):
    """A loop of exactly 1,000,000 instructions (500,000 times SUBS and BNE) reads 1,000,000 on
    every board, whatever clock its SysTick counts (25, 20 or 32 MHz)."""
    (tmp_path / "spin.c").write_text(
        "int spin(const unsigned char *pixels, signed char *logits);\n"
        "int spin(const unsigned char *pixels, signed char *logits)\n"
        "{\n    (void)pixels;\n    (void)logits;\n"
        '    __asm volatile("ldr r0, =500000\\n1: subs r0, #1\\n bne 1b" ::: "r0", "cc");\n'
        "    return 0;\n}\n"
    )
    program = Program([tmp_path / "spin.c"], "spin", "int8_t", 784, 10)
    for target in TARGETS.values():
        elf = build(program, target, tmp_path / target.name)
        result = run(elf, target, random_images(2, seed=11), tmp_path / "work", 10)
        # + the call and return, to within one tick
        assert (abs(result.instructions - 1_000_000) <= 60).all(), (target, result.instructions)
