"""Magnitude pruning: zero the smallest weights of each layer and remember where."""
from __future__ import annotations

import numpy as np

from .layers import Param


def magnitude_mask(weight: np.ndarray, sparsity: float) -> np.ndarray:
    """Mask (same shape, bool) that drops round(sparsity * size) weights of smallest |w|.

    Ranking by a stable sort rather than comparing to a threshold gives the exact
    count even when several weights share the threshold's magnitude.
    """
    n_pruned = int(round(sparsity * weight.size))
    order = np.argsort(np.abs(weight), axis=None, kind="stable")
    mask = np.ones(weight.size, dtype=bool)
    mask[order[:n_pruned]] = False
    return mask.reshape(weight.shape)


def prune_layerwise(params: dict[str, Param], sparsity: float) -> None:
    """Give every prunable parameter a mask of the given sparsity and apply it."""
    for p in params.values():
        if p.prunable:
            p.mask = magnitude_mask(p.value, sparsity)
            p.value *= p.mask


def sparsity_report(params: dict[str, Param]) -> list[dict]:
    """Per prunable weight: name, weights, nonzero, sparsity."""
    rows = []
    for name, p in params.items():
        if p.prunable:
            nonzero = int(np.count_nonzero(p.value))
            rows.append({"name": name.rsplit(".", 1)[0], "weights": p.value.size,
                         "nonzero": nonzero, "sparsity": 1 - nonzero / p.value.size})
    return rows
