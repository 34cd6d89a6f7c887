"""Masks: which weights are kept (True) and which are pruned (False), and applying them.

A mask lives next to its weight (`Param.mask`); the optimizer masks both the update and the
weight, so a pruned weight stays exactly 0.0 through training (see nn/optim.py).
"""

from __future__ import annotations

import numpy as np

from tinyprune.nn.layers import Param


def keep_mask(scores: np.ndarray, n_pruned: int) -> np.ndarray:
    """Mask (same shape as scores, bool) that drops the n_pruned lowest scores.

    Ranking by a stable sort rather than comparing to a threshold gives the exact
    count even when several scores are equal.
    """
    order = np.argsort(scores, axis=None, kind="stable")
    mask = np.ones(scores.size, dtype=bool)
    mask[order[:n_pruned]] = False
    return mask.reshape(scores.shape)


def apply_masks(params: dict[str, Param], masks: dict[str, np.ndarray]) -> None:
    """Store each mask next to its weight and zero the pruned weights."""
    for name, mask in masks.items():
        params[name].mask = mask
        params[name].value *= mask
