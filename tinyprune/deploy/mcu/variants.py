"""A model exported for a microcontroller in one of several forms, each with the Python
computation it must agree with.

    variant = export_variant(model, "int8", out_dir, calibration_images)
    variant.program                      # what build.build and build.footprint compile
    variant.reference(pixels)            # uint8 (N, 28, 28) -> Python's logits (N, classes)
    variant.device_logits(run_result)    # the device's logits, in the same dtype

    float   float32 weights (the CSR export of deploy/c_export.py) and float activations;
            Python: model.forward. Same classes; logits equal to rounding (another sum order).
    int8    integers only, TFLite's int8 arithmetic (deploy/c_export.py); Python:
            Int8Model.forward. Equal bit for bit.
    shared  the same with shared weights (an int8 codebook per layer and packed indices, from
            deploy/weight_sharing.py); Python: Int8Model(..., shared).forward. Bit for bit.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tinyprune.data.transforms import to_input
from tinyprune.deploy.c_export import export_c, export_c_int8
from tinyprune.deploy.int8_model import Int8Model
from tinyprune.deploy.mcu.build import Program
from tinyprune.deploy.mcu.qemu import RunResult
from tinyprune.deploy.weight_sharing import SharedWeight
from tinyprune.nn.model import Sequential

VARIANTS = ("float", "int8", "shared")


@dataclass
class Variant:
    """An exported model: its C program, Python's logits for it, and whether the device must
    equal them bit for bit (exact) or only give the same classes."""

    name: str
    program: Program
    reference: Callable[[np.ndarray], np.ndarray]
    logit_dtype: type
    exact: bool

    def device_logits(self, result: RunResult) -> np.ndarray:
        """The logits the device printed, as logit_dtype (float32 or int8) (N, classes)."""
        size = np.dtype(self.logit_dtype).itemsize
        raw = result.logits_bits.astype("<u4").view(np.uint8).reshape(*result.logits_bits.shape, 4)
        return raw[..., :size].copy().view(self.logit_dtype)[..., 0]


def export_variant(
    model: Sequential,
    name: str,
    out_dir: Path,
    calibration_images: np.ndarray | None = None,
    shared: dict[str, SharedWeight] | None = None,
    input_shape: tuple[int, int, int] = (1, 28, 28),
) -> Variant:
    """Write the model's C for variant `name` into out_dir; -> the Variant. The int8 and shared
    variants calibrate their activation scales on calibration_images (uint8, training images);
    the shared one takes the model's SharedWeights ({'<layer>.weight': ...})."""
    size = int(np.prod(input_shape))
    if name == "float":
        written = export_c(model, out_dir)
        prefix = written["c"].stem
        program = Program(
            [written["c"]], f"{prefix}_predict_u8", "float", size, model_classes(model)
        )
        return Variant(
            name, program, lambda pixels: model.forward(to_input(pixels)), np.float32, exact=False
        )
    if name in ("int8", "shared"):
        if calibration_images is None:
            raise ValueError(f"the {name} variant needs calibration images (training images)")
        if name == "shared" and not shared:
            raise ValueError(
                "the shared variant needs the model's shared weights (a shared.tpz "
                "from python -m tinyprune.deep_compress)"
            )
        q = Int8Model(model, calibration_images, shared if name == "shared" else None)
        written = export_c_int8(q, out_dir)
        program = Program(
            [written["c"]], f"{written['prefix']}_predict", "int8_t", size, model_classes(model)
        )
        return Variant(name, program, q.forward, np.int8, exact=True)
    raise ValueError(f"unknown variant {name!r}; choose from {', '.join(VARIANTS)}")


def model_classes(model: Sequential) -> int:
    """The number of outputs of the model's last layer (its weight's rows)."""
    last = [p for p in model.prunable().values()][-1]
    return int(last.value.shape[0])
