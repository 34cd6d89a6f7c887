"""Cross-compile a model's C with the harness for a Cortex-M, and measure its flash and RAM.

    program = Program(sources=[Path("out/lenet5_int8.c")], predict="lenet5_int8_predict",
                      logit_type="int8_t", input_size=784, classes=10)
    elf = build(program, TARGETS["cortex-m4"], Path("out/m4"))
    sizes = footprint(program, TARGETS["cortex-m4"], Path("out/m4"))  # flash, static RAM

Flash and static RAM are measured by difference: the same harness is linked once with the model
and once with an empty predict (stub.c), with --gc-sections, and the second's text + rodata
(+ data, whose initial values sit in flash) and data + bss are subtracted from the first's. What
is left is the model's arrays, its inference code and whatever library code only it pulls in
(for example memset, or the soft-float routines on a Cortex-M3), less the stub's 2-4 bytes.
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

HARNESS = Path(__file__).parent
CFLAGS = (
    "-Os",
    "-std=c99",
    "-Wall",
    "-Wextra",
    "-Werror",
    "-ffunction-sections",
    "-fdata-sections",
)
TOOLS = ("arm-none-eabi-gcc", "arm-none-eabi-size", "qemu-system-arm")
INSTALL_HINT = (
    "install them with: apt-get install gcc-arm-none-eabi libnewlib-arm-none-eabi qemu-system-arm"
)


@dataclass(frozen=True)
class Target:
    """A Cortex-M core: its compiler flags, the QEMU board that emulates it, that board's
    memory map (a linker script here) and the clock its SysTick counts (QEMU's boards differ:
    checked with a loop of a known number of instructions)."""

    name: str
    flags: tuple[str, ...]
    machine: str
    memory: str = "mps2.ld"
    clock_hz: int = 25_000_000


TARGETS = {
    "cortex-m4": Target(
        "cortex-m4",
        ("-mcpu=cortex-m4", "-mthumb", "-mfloat-abi=hard", "-mfpu=fpv4-sp-d16"),
        "mps2-an386",
    ),
    "cortex-m3": Target(
        "cortex-m3", ("-mcpu=cortex-m3", "-mthumb", "-mfloat-abi=soft"), "mps2-an385"
    ),
    # Armv8-M Mainline with the DSP extension (SMLAD) and a single-precision FPU
    "cortex-m33": Target(
        "cortex-m33",
        ("-mcpu=cortex-m33", "-mthumb", "-mfloat-abi=hard", "-mfpu=fpv5-sp-d16"),
        "mps2-an505",
        "an505.ld",
        20_000_000,
    ),
    # Armv8.1-M with Helium (MVE, 128-bit vectors): gcc's -mcpu=cortex-m55 turns it on, and
    # -O2's vectoriser may use it; -Os does not vectorise
    "cortex-m55": Target(
        "cortex-m55",
        ("-mcpu=cortex-m55", "-mthumb", "-mfloat-abi=hard"),
        "mps3-an547",
        "an547.ld",
        32_000_000,
    ),
}


@dataclass(frozen=True)
class Program:
    """A model's C sources and its predict function, int PREDICT(const unsigned char *pixels,
    LOGIT_T *logits), whose logits are float or int8_t."""

    sources: list[Path]
    predict: str
    logit_type: str
    input_size: int
    classes: int
    include: list[Path] = field(default_factory=list)


def missing_tools() -> str | None:
    """-> why Cortex-M builds cannot run here, or None when the tools are all installed."""
    missing = [tool for tool in TOOLS if shutil.which(tool) is None]
    return f"{', '.join(missing)} not found; {INSTALL_HINT}" if missing else None


def run_tool(command: list[str], what: str) -> None:
    """Run a compiler or linker; RuntimeError with its messages if it fails or warns."""
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0 or result.stderr:
        raise RuntimeError(f"{what} failed (or warned):\n{' '.join(command)}\n{result.stderr}")


def build(program: Program, target: Target, out_dir: Path, with_model: bool = True) -> Path:
    """Compile and link the harness with the model (or with the empty stub); -> the ELF file.
    The harness is compiled with -fno-tree-loop-distribute-patterns, so that its own loops
    call no memset or memcpy: any library routine in the ELF beyond the harness's is the
    model's, and counted as its flash."""
    out_dir.mkdir(parents=True, exist_ok=True)
    name = "program" if with_model else "harness"
    defines = [
        f"-DPREDICT={program.predict}",
        f"-DLOGIT_T={program.logit_type}",
        f"-DINPUT_SIZE={program.input_size}",
        f"-DCLASSES={program.classes}",
    ]
    compile_flags = [*target.flags, *CFLAGS, *defines, *(f"-I{p}" for p in program.include)]
    objects = []
    for harness_file in ["startup.c", "main.c", *([] if with_model else ["stub.c"])]:
        objects.append(out_dir / f"{name}-{harness_file}.o")
        run_tool(
            [
                "arm-none-eabi-gcc",
                *compile_flags,
                "-fno-tree-loop-distribute-patterns",
                "-c",
                "-o",
                str(objects[-1]),
                str(HARNESS / harness_file),
            ],
            f"compiling {harness_file}",
        )
    for source in program.sources if with_model else []:
        objects.append(out_dir / f"{name}-{source.name}.o")
        run_tool(
            ["arm-none-eabi-gcc", *compile_flags, "-c", "-o", str(objects[-1]), str(source)],
            f"compiling {source} for {target.name}",
        )
    elf = out_dir / f"{name}.elf"
    run_tool(
        [
            "arm-none-eabi-gcc",
            *target.flags,
            "-nostartfiles",
            "--specs=nano.specs",
            f"-L{HARNESS}",
            f"-T{HARNESS / target.memory}",
            "-Wl,--gc-sections",
            "-o",
            str(elf),
            *map(str, objects),
        ],
        f"linking {elf}",
    )
    return elf


def section_sizes(elf: Path) -> dict[str, int]:
    """-> the bytes of the ELF's .text, .rodata, .data and .bss (arm-none-eabi-size -A)."""
    out = subprocess.run(
        ["arm-none-eabi-size", "-A", str(elf)], capture_output=True, text=True, check=True
    ).stdout
    sizes = {name: 0 for name in (".text", ".rodata", ".data", ".bss")}
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[0] in sizes:
            sizes[parts[0]] = int(parts[1])
    return sizes


def flash_and_ram(sizes: dict[str, int]) -> tuple[int, int]:
    """-> (flash: text + rodata + data's initial values, static RAM: data + bss)."""
    return (sizes[".text"] + sizes[".rodata"] + sizes[".data"], sizes[".data"] + sizes[".bss"])


def footprint(program: Program, target: Target, out_dir: Path) -> dict[str, int]:
    """-> the model's own flash and static RAM (bytes), by difference with the harness alone,
    and the harness's: {"flash", "static_ram", "harness_flash", "harness_static_ram"}."""
    full = flash_and_ram(section_sizes(build(program, target, out_dir)))
    alone = flash_and_ram(section_sizes(build(program, target, out_dir, with_model=False)))
    return {
        "flash": full[0] - alone[0],
        "static_ram": full[1] - alone[1],
        "harness_flash": alone[0],
        "harness_static_ram": alone[1],
    }
