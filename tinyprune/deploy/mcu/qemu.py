"""Run a harness ELF (build.py) on QEMU's MPS2 board for its core, and read what it printed.

    result = run(elf, TARGETS["cortex-m4"], images, workdir)
    result.classes, result.logits_bits, result.instructions, result.stack

With icount=True QEMU runs with -icount shift=0: every instruction takes exactly 1 ns of
virtual time. The harness reads the SysTick timer, which counts the board's processor clock
(Target.clock_hz: 25 MHz on the MPS2 boards an385 and an386, so one tick is 40 instructions;
20 MHz on an505, 50; 32 MHz on the MPS3 an547, 31.25), around each predict call;
instructions per inference are ticks * 1e9 / clock_hz, to +- one tick. (Checked: a loop of
1,000,000 instructions read 25,000, 20,000 and 32,000 ticks.) Without icount the run is faster
and the tick counts mean nothing.
"""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tinyprune.deploy.mcu.build import Target

RESULT_LINE = re.compile(r"[0-9a-f]+( [0-9a-f]+)+")  # image, class, logits, ticks: hex


@dataclass
class RunResult:
    """classes (N,) int64; logits_bits (N, classes) uint32, the logits' bytes, zero-extended
    (Variant.device_logits reads them); instructions (N,) int64 per inference; stack: bytes
    predict used."""

    classes: np.ndarray
    logits_bits: np.ndarray
    instructions: np.ndarray
    stack: int


def qemu_command(elf: Path, target: Target, icount: bool) -> list[str]:
    return [
        "qemu-system-arm",
        "-machine",
        target.machine,
        "-nographic",
        "-monitor",
        "none",
        "-serial",
        "none",
        "-semihosting-config",
        "enable=on,target=native",
        *(["-icount", "shift=0"] if icount else []),
        "-kernel",
        str(elf),
    ]


def run(
    elf: Path,
    target: Target,
    images: np.ndarray,
    workdir: Path,
    classes: int,
    icount: bool = True,
    timeout: float = 3600,
) -> RunResult:
    """Run the program on uint8 images (N, ...) (written to workdir/images.u8); -> its answers.
    Raises RuntimeError if it crashes, stops early or prints something unexpected."""
    workdir.mkdir(parents=True, exist_ok=True)
    np.ascontiguousarray(images, np.uint8).tofile(workdir / "images.u8")
    command = qemu_command(elf, target, icount)
    done = subprocess.run(
        command,
        cwd=workdir,
        capture_output=True,
        text=True,
        check=False,
        stdin=subprocess.DEVNULL,
        timeout=timeout,
    )
    lines = done.stdout.splitlines()
    if done.returncode != 0 or "done" not in lines:
        tail = "\n".join((done.stdout + done.stderr).splitlines()[-5:])
        raise RuntimeError(
            f"{' '.join(command)} (in {workdir}) failed with status {done.returncode}:\n{tail}"
        )
    stack = [int(line.split()[1], 16) for line in lines if line.startswith("stack ")]
    rows = [line.split() for line in lines if RESULT_LINE.fullmatch(line)]
    if len(rows) != len(images) or any(len(row) != classes + 3 for row in rows):
        raise RuntimeError(
            f"{elf} printed {len(rows)} result lines for {len(images)} images, "
            f"or lines of the wrong length"
        )
    numbers = np.array([[int(v, 16) for v in row] for row in rows], np.int64)
    if not np.array_equal(numbers[:, 0], np.arange(len(images))):
        raise RuntimeError(f"{elf} printed its results out of order")
    return RunResult(
        numbers[:, 1],
        numbers[:, 2 : 2 + classes].astype(np.uint32),
        np.round(numbers[:, -1] * 1e9 / target.clock_hz).astype(np.int64),  # 1 ns each
        stack[0] if stack else 0,
    )
