"""int8 weights: per layer, symmetric. q = round(w / scale) in -127..127, scale = max |w| / 127."""

from __future__ import annotations

import numpy as np


def quantize_int8(values: np.ndarray) -> tuple[np.ndarray, np.float32]:
    """values float -> (q int8 in -127..127, scale float32) with values ~ q * scale."""
    largest = float(np.abs(values).max(initial=0.0))
    scale = np.float32(largest / 127 if largest > 0 else 1.0)
    q = np.clip(np.rint(values / scale), -127, 127).astype(np.int8)
    return q, scale
