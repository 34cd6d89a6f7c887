"""Pruning criteria: which weights go, chosen by a score, and the report of what is left.

Every criterion works the same way: give each weight a score, then zero the weights of
lowest score, so many that the target sparsity is reached exactly. Criteria differ only in
the score and in where the count is taken:

    layerwise  |w|                          the same sparsity in every layer
    global     |w|                          one threshold over all layers
    std        |w| / std(layer's weights)   one "quality" threshold over all layers (Han et al.)
    random     a random number              per layer; the control experiment
    filter     L1 norm of a whole filter    per layer; see filter_prune.py

A weight pruned before scores -inf, so it is pruned again: masks only ever lose ones, which
is what pruning in several rounds (schedules.py) relies on.
"""
from __future__ import annotations

import numpy as np

from .layers import Param

METHODS = ("layerwise", "global", "std", "random", "filter")


def keep_mask(scores: np.ndarray, n_pruned: int) -> np.ndarray:
    """Mask (same shape as scores, bool) that drops the n_pruned lowest scores.

    Ranking by a stable sort rather than comparing to a threshold gives the exact
    count even when several scores are equal.
    """
    order = np.argsort(scores, axis=None, kind="stable")
    mask = np.ones(scores.size, dtype=bool)
    mask[order[:n_pruned]] = False
    return mask.reshape(scores.shape)


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


def weight_masks(params: dict[str, Param], sparsity: float, method: str = "layerwise",
                 rng: np.random.Generator | None = None) -> dict[str, np.ndarray]:
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
        scores = [_scores(p, np.abs(p.value) if method == "global" else std_scores(p))
                  for p in params.values()]
        flat = np.concatenate([s.ravel() for s in scores])
        keep = keep_mask(flat, int(round(sparsity * flat.size)))
        bounds = np.cumsum([0] + [s.size for s in scores])
        return {name: keep[lo:hi].reshape(s.shape)
                for name, s, lo, hi in zip(params, scores, bounds[:-1], bounds[1:])}
    raise ValueError(f"unknown pruning method {method!r}; choose one of {', '.join(METHODS)}")


def std_sparsity(params: dict[str, Param], quality: float) -> float:
    """The sparsity Han et al.'s rule gives: the share of weights with |w| < quality x std."""
    pruned = sum(int(np.count_nonzero(_scores(p, std_scores(p)) < quality))
                 for p in params.values())
    return pruned / sum(p.value.size for p in params.values())


def apply_masks(params: dict[str, Param], masks: dict[str, np.ndarray]) -> None:
    """Store each mask next to its weight and zero the pruned weights."""
    for name, mask in masks.items():
        params[name].mask = mask
        params[name].value *= mask


def prune(model, sparsity: float, method: str = "layerwise",
          rng: np.random.Generator | None = None) -> None:
    """Prune a Sequential model to `sparsity` of its prunable weights by `method`."""
    if method == "filter":
        from .filter_prune import filter_masks  # filter pruning needs the layer order
        apply_masks(model.params(), filter_masks(model, sparsity))
    else:
        apply_masks(model.params(), weight_masks(model.prunable(), sparsity, method, rng))


def prune_layerwise(params: dict[str, Param], sparsity: float) -> None:
    """Give every prunable parameter a mask of the given sparsity and apply it."""
    prunable = {name: p for name, p in params.items() if p.prunable}
    apply_masks(prunable, weight_masks(prunable, sparsity, "layerwise"))


def weight_uses(model, input_shape: tuple = (1, 1, 28, 28)) -> dict[str, int]:
    """Layer name -> multiply-adds per weight per image: output H x W for a conv, 1 for fc.

    Found by running one blank image through the model and reading each layer's output size.
    """
    uses = {}
    x = np.zeros(input_shape, np.float32)
    for name, layer in model.layers.items():
        x = layer.forward(x)
        if "weight" in layer.params:
            uses[name] = int(np.prod(x.shape[2:])) if x.ndim == 4 else 1
    return uses


def sparsity_report(params: dict[str, Param], uses: dict[str, int] | None = None) -> list[dict]:
    """Per prunable weight: name, weights, nonzero, sparsity; with `uses` (see weight_uses)
    also mult_adds (dense, per image) and mult_adds_kept (those of nonzero weights)."""
    rows = []
    for name, p in params.items():
        if p.prunable:
            layer = name.rsplit(".", 1)[0]
            nonzero = int(np.count_nonzero(p.value))
            row = {"name": layer, "weights": p.value.size, "nonzero": nonzero,
                   "sparsity": 1 - nonzero / p.value.size}
            if uses is not None:
                row["mult_adds"] = p.value.size * uses[layer]
                row["mult_adds_kept"] = nonzero * uses[layer]
            rows.append(row)
    return rows
