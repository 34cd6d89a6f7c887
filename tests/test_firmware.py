"""The C export as a firmware engineer takes it (docs/firmware.md): a header that documents the
API and the stack a call takes (<PREFIX>_SCRATCH_BYTES, counted by the exporter from the buffers
the C declares); an example <prefix>_main.c that prints Python's class for its image, built
with the host's gcc and, for a Cortex-M4 run on QEMU, with arm-none-eabi-gcc; no heap, no global
written, every constant const (in flash on a Cortex-M). tests/test_mcu.py measures the stack a
call really takes on each core.

The tests that need gcc, arm-none-eabi-gcc or QEMU skip without them, saying what to install;
with CI=true they fail instead, since CI must run them."""

import os
import re
import shutil
import subprocess

import numpy as np
import pytest

from tinyprune.data.mnist import load_mnist
from tinyprune.data.transforms import to_input
from tinyprune.deploy.c_export import export_c, export_c_int8
from tinyprune.deploy.int8_model import Int8Model
from tinyprune.deploy.mcu.build import HARNESS, TARGETS, missing_tools
from tinyprune.deploy.mcu.qemu import qemu_command
from tinyprune.deploy.weight_sharing import parse_bits, share_weights
from tinyprune.nn.model import lenet5, lenet5_caffe, lenet_300_100
from tinyprune.prune.criteria import prune

CFLAGS = ["-std=c99", "-Wall", "-Wextra", "-Werror"]


def require(reason: str | None) -> None:
    """Skip (fail under CI=true) when a tool is missing: reason says which and how to install."""
    if reason is not None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI=true, so this test must run, but {reason}")
        pytest.skip(reason)


@pytest.fixture
def gcc():
    require(None if shutil.which("gcc") else "gcc not found; install it with apt-get install gcc")


@pytest.fixture
def arm_tools():
    require(missing_tools())


def exported(kind, tmp_path, build=lenet5, sparsity=0.9):
    """The model (untrained, pruned) exported as kind: float, int8 or shared (8-bit conv and
    5-bit fc codebooks); -> (export_c's dict, Python's logits of uint8 pixels (N, 28, 28))."""
    model = build(seed=0)
    prune(model, sparsity)
    if kind == "float":
        return export_c(model, tmp_path), lambda pixels: model.forward(to_input(pixels))
    shared = share_weights(model, parse_bits("conv=8,fc=5", model)) if kind == "shared" else None
    rng = np.random.default_rng(2)
    calibration = np.where(rng.random((100, 28, 28)) < 0.2, rng.integers(128, 256), 0)
    q = Int8Model(model, calibration.astype(np.uint8), shared)
    return export_c_int8(q, tmp_path), q.forward


def macro(written: dict, name: str) -> int:
    """The value of the header's #define <PREFIX>_<name> <integer>."""
    found = re.search(
        rf"#define {written['prefix'].upper()}_{name} (\d+)", written["h"].read_text()
    )
    assert found, f"the header defines no {name}"
    return int(found.group(1))


def example_image(main_c) -> np.ndarray:
    """The image the example <prefix>_main.c classifies: uint8 (28, 28)."""
    text = main_c.read_text()
    array = text[text.index("image[") : text.index("};", text.index("image["))]
    return np.array(re.findall(r"\d+", array.split("{")[1]), np.uint8).reshape(28, 28)


def check_printed(stdout: str, logits: np.ndarray, exact: bool) -> None:
    """The example's output against Python's logits (classes,) for its image: the class, and
    the logits bit for bit (int8) or to float32 rounding (float: another order of summation)."""
    lines = stdout.splitlines()
    assert lines[0] == f"class {int(np.argmax(logits))}", stdout
    assert [int(line.split()[1]) for line in lines[1:]] == list(range(len(logits)))
    printed = np.array([float(line.split()[2]) for line in lines[1:]])
    if exact:
        np.testing.assert_array_equal(printed, logits)
    else:
        np.testing.assert_allclose(printed, logits, rtol=1e-4, atol=1e-4 * np.abs(logits).max())


@pytest.mark.parametrize("kind", ["float", "int8"])
def test_the_header_says_what_goes_in_what_comes_out_and_the_memory(kind, tmp_path):
    written, _ = exported(kind, tmp_path)
    header = written["h"].read_text()
    top = re.sub(r"\s*\n \*\s*", " ", header[: header.index("*/")])  # the comment, unwrapped
    for words in ("Input:", "28 x 28", "raw 0 (background) .. 255 (ink)", "Output:", "Flash:"):
        assert words in top
    assert "the index of the largest logit" in top and "static const" in top
    assert f"call {written['prefix']}_predict" in top and f"{written['prefix']}_main.c" in top
    prefix = written["prefix"].upper()
    assert f"{prefix}_SCRATCH_BYTES" in top and f"{prefix}_STACK_BYTES of stack" in top
    assert macro(written, "CLASSES") == 10 and macro(written, "SCRATCH_BYTES") > 28 * 28
    assert f"#define {prefix}_STACK_BYTES ({prefix}_SCRATCH_BYTES + 512)" in header


@pytest.mark.parametrize(
    "build, kind, sparsity",
    [
        (lenet5, "float", 0.9),
        (lenet5, "int8", 0.9),
        (lenet5, "int8", 0.0),  # dense layers: their im2col and accumulator buffers
        (lenet5, "shared", 0.9),
        (lenet_300_100, "int8", 0.9),
        (lenet5_caffe, "float", 0.95),
    ],
)
def test_scratch_bytes_are_the_buffers_the_c_keeps_on_the_stack(
    build, kind, sparsity, tmp_path, gcc
):
    """gcc's own count of the stack each function's frame takes (-fstack-usage, x86-64, nothing
    inlined): predict's (with predict_u8's float image, for float) holds at least the buffers
    the macro counts, and beyond them only saved registers and alignment (48 to 132 bytes
    here). tests/test_mcu.py measures the whole call's stack on the Cortex-Ms."""
    written, _ = exported(kind, tmp_path, build, sparsity)
    subprocess.run(
        ["gcc", *CFLAGS, "-O2", "-fno-inline", "-fstack-usage", "-c", written["c"].name],
        cwd=tmp_path,
        check=True,
    )
    su = (tmp_path / written["c"].with_suffix(".su").name).read_text()
    frames = {
        line.split("\t")[0].split(":")[-1]: int(line.split("\t")[1]) for line in su.splitlines()
    }
    prefix = written["prefix"]
    used = frames[f"{prefix}_predict"] + frames.get(f"{prefix}_predict_u8", 0)
    scratch = macro(written, "SCRATCH_BYTES")
    # beyond the buffers: at most six saved 8-byte registers and each array aligned to 16 bytes
    assert scratch <= used <= scratch + 192, (used, scratch)


@pytest.mark.parametrize("kind", ["float", "int8", "shared"])
def test_the_example_prints_pythons_class_for_its_image(kind, tmp_path, gcc):
    written, reference = exported(kind, tmp_path)
    binary = tmp_path / "example"
    build = subprocess.run(
        ["gcc", *CFLAGS, "-O2", "-o", str(binary), str(written["c"]), str(written["main"])],
        capture_output=True,
        text=True,
    )
    assert build.returncode == 0 and build.stderr == "", build.stderr  # no warnings at all
    printed = subprocess.run([str(binary)], capture_output=True, text=True, check=True).stdout
    check_printed(printed, reference(example_image(written["main"])[None])[0], kind != "float")


def test_the_examples_image_is_the_first_mnist_test_image(tmp_path):
    written, _ = exported("int8", tmp_path)
    data = load_mnist()
    np.testing.assert_array_equal(example_image(written["main"]), data.test_images[0])
    assert data.test_labels[0] == 7  # as its comment says


@pytest.mark.parametrize("kind", ["float", "int8", "shared"])
def test_no_heap_no_global_written_and_every_constant_const(kind, tmp_path, gcc):
    """In the source: no allocation, no include but <stdint.h> (and the DSP intrinsics' header
    on a Cortex-M with them). Compiled (without position-independent code, as for a
    microcontroller): every symbol is code or read-only data, and the only functions it needs
    from outside are those gcc may call for a loop (memset, memcpy)."""
    written, _ = exported(kind, tmp_path)
    source = written["c"].read_text()
    assert not re.search(r"\b(malloc|calloc|realloc|free|alloca)\s*\(", source)
    includes = set(re.findall(r"#include (\S+)", source))
    assert includes == {"<stdint.h>", f'"{written["prefix"]}.h"', "<arm_acle.h>"}
    assert re.findall(r"#include (\S+)", written["h"].read_text()) == ["<stdint.h>"]
    obj = tmp_path / "model.o"
    subprocess.run(
        ["gcc", *CFLAGS, "-O2", "-fno-pic", "-c", "-o", str(obj), str(written["c"])], check=True
    )
    nm = subprocess.run(["nm", str(obj)], capture_output=True, text=True, check=True).stdout
    symbols = [line.split() for line in nm.splitlines()]  # [address,] kind, name
    kinds = {parts[-2] for parts in symbols}
    assert kinds <= set("tTrRU"), symbols  # no d, D (data), b, B (bss) or C (common)
    assert {parts[-1] for parts in symbols if parts[-2] == "U"} <= {"memset", "memcpy"}


def cortex_m_sections(obj) -> dict[str, int]:
    """-> the bytes of an object's .text, .rodata, .data and .bss (each summing its .name.*)."""
    out = subprocess.run(
        ["arm-none-eabi-size", "-A", str(obj)], capture_output=True, text=True, check=True
    ).stdout
    sizes = dict.fromkeys((".text", ".rodata", ".data", ".bss"), 0)
    for parts in (line.split() for line in out.splitlines()):
        for name in sizes:
            if len(parts) == 3 and (parts[0] == name or parts[0].startswith(name + ".")):
                sizes[name] += int(parts[1])
    return sizes


@pytest.mark.parametrize("kind", ["float", "int8"])
def test_the_example_on_a_cortex_m4(kind, tmp_path, arm_tools):
    """Built with arm-none-eabi-gcc as docs/firmware.md says (newlib's semihosting printf, our
    start-up code and QEMU's memory map in place of a board's), run on QEMU: Python's class.
    The model's object has no .data and no .bss, and its weights are in .rodata."""
    written, reference = exported(kind, tmp_path)
    target = TARGETS["cortex-m4"]
    obj = tmp_path / "model.o"
    flags = [*target.flags, *CFLAGS, "-Os"]
    subprocess.run(
        ["arm-none-eabi-gcc", *flags, "-c", "-o", str(obj), str(written["c"])], check=True
    )
    sizes = cortex_m_sections(obj)
    assert sizes[".data"] == sizes[".bss"] == 0 and sizes[".rodata"] >= written["weight_bytes"]
    elf = tmp_path / "example.elf"
    link = [
        "arm-none-eabi-gcc", *flags, "-nostartfiles", "--specs=nano.specs", "--specs=rdimon.specs",
        "-u", "_printf_float", f"-I{HARNESS}", f"-L{HARNESS}", f"-T{HARNESS / target.memory}",
        "-Wl,--defsym=end=__bss_end", str(HARNESS / "startup.c"), str(written["c"]),
        str(written["main"]), "-o", str(elf),
    ]  # fmt: skip
    built = subprocess.run(link, capture_output=True, text=True)
    assert built.returncode == 0 and built.stderr == "", built.stderr
    ran = subprocess.run(
        qemu_command(elf, target, icount=False), capture_output=True, text=True, timeout=300
    )
    assert ran.returncode == 0, ran.stdout + ran.stderr
    check_printed(ran.stdout, reference(example_image(written["main"])[None])[0], kind != "float")
