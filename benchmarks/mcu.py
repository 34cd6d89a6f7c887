"""Trained, pruned models on emulated microcontrollers: flash, RAM, instructions per inference and
accuracy of each exported variant on a Cortex-M4 (FPU and DSP extension, QEMU mps2-an386), a
Cortex-M3 (neither, mps2-an385), a Cortex-M33 (Armv8-M, DSP, mps2-an505) and a Cortex-M55
(Armv8.1-M, Helium, mps3-an547), built with arm-none-eabi-gcc -Os.

    python benchmarks/mcu.py RUN_DIR [RUN_DIR ...] [--dense] [--json PATH]
        [--images 10000] [--few 1000] [--soft 50] [--calibration 2000]

Each RUN_DIR is the --out of `python -m tinyprune.run` (its results.json names the model, its
pruned.npz holds the weights, its shared.tpz if any the weights shared per layer) or of
`python -m tinyprune.deep_compress` (shared.tpz alone). --dense adds each model's unpruned
model.npz (its layers stored dense, as is any layer whose dense array is smaller than its gap
stream), and prints CMSIS-NN's figures for the same dense int8 LeNet-5 beside ours (CMSIS_NN:
measured by the issue's authors on the same boards and harness, not here: this repository
neither vendors nor builds CMSIS-NN). Variants: float (float32 CSR, float activations) and
int8 (integers only; activation scales calibrated on the first --calibration training images)
for pruned.npz; shared (integers only, an int8 codebook and packed indices) for shared.tpz.

How each number is measured:
- flash: text + rodata (+ data's initial values) of the program minus those of the same harness
  linked with an empty predict (deploy/mcu/build.py): the model's arrays, its code and the
  library code only it needs (memset; the soft-float routines on the M3).
- RAM: data + bss by the same difference (0: the exports keep everything on the stack) plus
  the stack predict used, measured by painting the stack before the first call and finding
  the deepest word it changed.
- instructions: QEMU with -icount shift=0 (1 instruction = 1 ns of virtual time) and the SysTick
  timer (the board's clock: a tick is 40 instructions at 25 MHz) read around each predict
  call; the mean over the images.
- accuracy: the device's own answers on the first N test images: --images for int8 on the M4,
  --few for float on the M4 and int8 on the M3, --soft for float on the M3 (soft float is
  slow to emulate). `same` counts images where the device's class equals Python's; `exact`
  says whether its logits equal the Python reference bit for bit (int8) or not (float: another
  order of summation). For the bit-exact variants, `all 10k` is the reference's accuracy on all
  10,000 test images: the device's arithmetic, whatever N was.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import write_json  # noqa: E402

from tinyprune.data.mnist import load_mnist  # noqa: E402
from tinyprune.data.transforms import to_input  # noqa: E402
from tinyprune.deploy.c_export import load_model  # noqa: E402
from tinyprune.deploy.mcu.build import TARGETS, build, footprint, missing_tools  # noqa: E402
from tinyprune.deploy.mcu.qemu import run  # noqa: E402
from tinyprune.deploy.mcu.variants import VARIANTS, export_variant  # noqa: E402
from tinyprune.nn.model import Sequential  # noqa: E402

# The issue "Checked by the runtimes engineers use": the dense int8 LeNet-5 through CMSIS-NN
# v7.0.0's s8 kernels, arm-none-eabi-gcc 12.2, in this harness: (core, build, instructions
# per inference, flash bytes or None)
CMSIS_NN = (
    ("cortex-m4", "-Os", 2_917_120, 72_612),
    ("cortex-m4", "-O3", 2_101_720, 76_316),
    ("cortex-m55", "Helium", 710_000, None),
)

COLUMNS = (
    "model",
    "variant",
    "core",
    "flash",
    "RAM",
    "stack",
    "instructions",
    "images",
    "accuracy",
    "same",
    "exact",
)


def kept_fraction(model: Sequential) -> float:
    """The fraction of the prunable weights kept (their masks, or their non-zeros)."""
    weights = model.prunable().values()
    kept = sum(int((p.mask if p.mask is not None else p.value != 0).sum()) for p in weights)
    return kept / sum(p.value.size for p in weights)


def load_models(run_dirs: list[Path], dense: bool) -> list[tuple[str, Sequential, dict]]:
    """-> (label, model, shared weights) for each folder: a run's pruned.npz (and, with dense,
    its model.npz, once per model) and its shared.tpz if it has one (run.py writes one too),
    or deep_compress's shared.tpz alone."""
    models: list[tuple[str, Sequential, dict]] = []
    seen = set()
    for folder in run_dirs:
        if (folder / "pruned.npz").is_file():
            name = json.loads((folder / "results.json").read_text())["model"]
            model = load_model(folder / "pruned.npz", name)[0]
            if dense and name not in seen:
                dense_model = load_model(folder / "model.npz", name)[0]
                models.append((f"{name} dense", dense_model, {}))
                seen.add(name)
            models.append(
                (f"{model.name} {1 - kept_fraction(model):.0%} ({folder.name})", model, {})
            )
        if (folder / "shared.tpz").is_file():
            model, shared = load_model(folder / "shared.tpz", name)
            label = f"{model.name} {1 - kept_fraction(model):.0%} ({folder.name})"
            models.append((label, model, shared))
    return models


def image_count(variant: str, core: str, args) -> int:
    if variant == "float":
        return args.few if core == "cortex-m4" else args.soft
    return args.images if core == "cortex-m4" else args.few


def measure(label, model, shared, variant_name, core, data, args, out: Path) -> dict:
    """Export into out, build, size and run one variant on one core; -> its row."""
    variant = export_variant(
        model, variant_name, out, data.train_images[: args.calibration], shared
    )
    target = TARGETS[core]
    size = footprint(variant.program, target, out / core)
    images = data.test_images[: image_count(variant_name, core, args)]
    start = time.perf_counter()
    result = run(
        build(variant.program, target, out / core),
        target,
        images,
        out / "work",
        variant.program.classes,
    )
    reference = variant.reference(images)
    all_images = data.test_images if variant.exact else images  # see reference_accuracy
    return {
        "model": label,
        "variant": variant_name,
        "core": core,
        "flash": size["flash"],
        "static_ram": size["static_ram"],
        "stack": result.stack,
        "ram": size["static_ram"] + result.stack,
        "instructions": float(result.instructions.mean()),
        "images": len(images),
        "accuracy": float((result.classes == data.test_labels[: len(images)]).mean()),
        "same_class": int((result.classes == reference.argmax(axis=1)).sum()),
        "bit_exact": bool(np.array_equal(variant.device_logits(result), reference)),
        "reference_accuracy_10000": float(
            (variant.reference(all_images).argmax(axis=1) == data.test_labels).mean()
        )
        if variant.exact
        else None,
        "harness_flash": size["harness_flash"],
        "seconds": time.perf_counter() - start,
    }


def print_row(row: dict) -> None:
    exact = row["reference_accuracy_10000"]
    all_10k = "-" if exact is None else f"{exact:.2%}"
    print(
        f"{row['model']:<34} {row['variant']:<7} {row['core']:<10} {row['flash']:>8,} "
        f"{row['ram']:>7,} {row['stack']:>7,} {row['instructions']:>13,.0f} "
        f"{row['images']:>6} {row['accuracy']:>8.2%} {row['same_class']:>6} "
        f"{'yes' if row['bit_exact'] else 'no':>5} {all_10k:>8}",
        flush=True,
    )


def tool_versions() -> dict:
    def first_line(command):
        return subprocess.run(
            command, capture_output=True, text=True, check=True
        ).stdout.splitlines()[0]

    with open("/proc/loadavg") as f:
        load = f.read().split()[0]
    return {
        "gcc": first_line(["arm-none-eabi-gcc", "--version"]),
        "qemu": first_line(["qemu-system-arm", "--version"]),
        "load_average_1min_at_start": float(load),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run_dirs", nargs="+", type=Path, help="--out folders of tinyprune.run")
    parser.add_argument("--dense", action="store_true", help="add each model unpruned")
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=VARIANTS)
    parser.add_argument("--cores", nargs="+", default=list(TARGETS), choices=list(TARGETS))
    parser.add_argument("--images", type=int, default=10000, help="int8 on the Cortex-M4")
    parser.add_argument("--few", type=int, default=1000, help="float on M4, int8 on M3")
    parser.add_argument("--soft", type=int, default=50, help="float on the Cortex-M3")
    parser.add_argument(
        "--calibration",
        type=int,
        default=2000,
        help="training images that set the int8 activation scales",
    )
    parser.add_argument("--json", type=Path, help="write the rows here")
    args = parser.parse_args()
    if (reason := missing_tools()) is not None:
        parser.error(reason)
    for folder in args.run_dirs:
        if not (folder / "shared.tpz").is_file() and not (folder / "pruned.npz").is_file():
            parser.error(
                f"{folder} has neither pruned.npz nor shared.tpz; make it with "
                f"python -m tinyprune.run --out {folder} or python -m "
                f"tinyprune.deep_compress --out {folder}"
            )
    data, info = load_mnist(), tool_versions()
    models = load_models(args.run_dirs, args.dense)
    info["python_float32_accuracy"] = {}  # what the device's arithmetic is compared with
    for label, model, _ in models:
        classes = model.forward(to_input(data.test_images)).argmax(axis=1)
        accuracy = float((classes == data.test_labels).mean())
        info["python_float32_accuracy"][label] = accuracy
        print(f"{label}: {accuracy:.2%} in float32 in Python, on all 10,000 test images")
    print(f"{info['gcc']}; {info['qemu']}; load average {info['load_average_1min_at_start']}")
    print(
        f"{'model':<34} {'variant':<7} {'core':<10} {'flash B':>8} {'RAM B':>7} {'stack':>7} "
        f"{'instr/infer':>13} {'images':>6} {'accuracy':>8} {'same':>6} {'exact':>5} "
        f"{'all 10k':>8}"
    )
    rows = []
    with tempfile.TemporaryDirectory(prefix="tinyprune-mcu-") as work:
        for i, (label, model, shared) in enumerate(models):
            for variant in args.variants:
                if (variant == "shared") != bool(shared):
                    continue  # shared for deep_compress folders, float and int8 for the rest
                for core in args.cores:
                    out = Path(work) / f"{i}-{variant}"
                    rows.append(measure(label, model, shared, variant, core, data, args, out))
                    print_row(rows[-1])
    if args.dense:
        print("CMSIS-NN's dense int8 LeNet-5 (the issue's measurements, not made here):")
        for core, how, instructions, flash in CMSIS_NN:
            size = "-" if flash is None else f"{flash:,}"
            print(f"{'CMSIS-NN ' + how:<34} int8    {core:<10} {size:>8} {instructions:>29,}")
    if args.json:
        reference = [dict(zip(("core", "build", "instructions", "flash"), r)) for r in CMSIS_NN]
        write_json(
            args.json,
            {"machine": info, "columns": COLUMNS, "rows": rows, "cmsis_nn_issue": reference},
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
