"""Pruning criteria: which weights go, chosen by a score, and the report of what is left.

Every criterion works the same way: give each weight a score, then zero the weights of
lowest score, so many that the target sparsity is reached exactly. Criteria differ only in
the score and in where the count is taken:

    layerwise  |w|                          the same sparsity in every layer
    global     |w|                          one threshold over all layers
    std        |w| / std(layer's weights)   one "quality" threshold over all layers (Han et al.)
    random     a random number              per layer; the control experiment
    filter     L1 norm of a whole filter    per layer; see filters.py

A weight pruned before scores -inf, so it is pruned again: masks only ever lose ones, which
is what pruning in several rounds (schedules.py) relies on.
"""

from __future__ import annotations

import numpy as np

from tinyprune.nn.layers import Param
from tinyprune.prune.filters import filter_masks
from tinyprune.prune.masks import apply_masks, keep_mask

METHODS = ("layerwise", "global", "std", "random", "filter")


def magnitude_mask(weight: np.ndarray, sparsity: float) -> np.ndarray:
    """Mask (same shape, bool) that drops round(sparsity * size) weights of smallest |w|."""
    return keep_mask(np.abs(weight), int(round(sparsity * weight.size)))


def _scores(p: Param, score: np.ndarray) -> np.ndarray:
    """The score, with weights pruned before put first in line (-inf)."""
    return score if p.mask is None else np.where(p.mask, score, -np.inf)


def std_scores(p: Param) -> np.ndarray:
    """|w| / std of the layer's unpruned weights: Han et al.'s threshold is quality x std."""
    alive = p.value if p.mask is None else p.value[p.mask]
    return np.abs(p.value) / max(float(np.std(alive)), np.finfo(np.float32).tiny)


def weight_masks(
    params: dict[str, Param],
    sparsity: float,
    method: str = "layerwise",
    rng: np.random.Generator | None = None,
) -> dict[str, np.ndarray]:
    """Masks (bool, shaped like each weight) reaching `sparsity` for an unstructured method.

    params: the prunable weights, e.g. `model.prunable()`. Counts are rounded per layer
    (layerwise, random) or over all weights together (global, std).
    """
    if not 0 <= sparsity < 1:
        raise ValueError(f"sparsity must be in [0, 1), got {sparsity}")
    if method in ("layerwise", "random"):
        rng = rng if rng is not None else np.random.default_rng(0)
        masks = {}
        for name, p in params.items():
            score = np.abs(p.value) if method == "layerwise" else rng.random(p.value.shape)
            masks[name] = keep_mask(_scores(p, score), int(round(sparsity * p.value.size)))
        return masks
    if method in ("global", "std"):
        scores = [
            _scores(p, np.abs(p.value) if method == "global" else std_scores(p))
            for p in params.values()
        ]
        flat = np.concatenate([s.ravel() for s in scores])
        keep = keep_mask(flat, int(round(sparsity * flat.size)))
        bounds = np.cumsum([0] + [s.size for s in scores])
        return {
            name: keep[lo:hi].reshape(s.shape)
            for name, s, lo, hi in zip(params, scores, bounds[:-1], bounds[1:])
        }
    raise ValueError(f"unknown pruning method {method!r}; choose one of {', '.join(METHODS)}")


def std_sparsity(params: dict[str, Param], quality: float) -> float:
    """The sparsity Han et al.'s rule gives: the share of weights with |w| < quality x std."""
    pruned = sum(
        int(np.count_nonzero(_scores(p, std_scores(p)) < quality)) for p in params.values()
    )
    return pruned / sum(p.value.size for p in params.values())


def prune(
    model, sparsity: float, method: str = "layerwise", rng: np.random.Generator | None = None
) -> None:
    """Prune a Sequential model to `sparsity` of its prunable weights by `method`."""
    if method == "filter":
        apply_masks(model.params(), filter_masks(model, sparsity))
    else:
        apply_masks(model.params(), weight_masks(model.prunable(), sparsity, method, rng))
