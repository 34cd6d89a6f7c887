"""Where the kept weights of a layer are: a bitmask, or the gaps between them.

A layer's kept pattern (bool, flattened row-major) can be stored two ways:

    bitmask  one bit per weight: `size` bits, whatever the sparsity
    gaps     per kept weight, the number of pruned weights since the previous kept one (or
             since the start), in `bits` bits (Deep Compression's relative index). A gap too
             long for `bits` bits is cut by filler symbols F = 2^bits - 1, each meaning "skip
             F pruned weights, no kept weight here": a gap of 2F + 3 is F, F, 3.
             Pruned weights after the last kept one need no symbol.

Gaps are entropy-coded in the file (short gaps are common), so a very sparse layer's positions
cost a few bits per kept weight, where a bitmask costs 1/density bits per kept weight.
"""

from __future__ import annotations

import numpy as np


def gap_symbols(kept: np.ndarray, bits: int) -> np.ndarray:
    """kept (size,) bool -> the gap symbols (int64, each < 2^bits), fillers included."""
    filler = 2**bits - 1
    where = np.flatnonzero(kept)
    gaps = np.diff(where, prepend=-1) - 1
    per_weight = gaps // filler + 1  # fillers, then the gap that is left
    symbols = np.full(int(per_weight.sum()), filler, np.int64)
    symbols[np.cumsum(per_weight) - 1] = gaps % filler
    return symbols


class PositionsError(ValueError):
    """Gap symbols that point past the end of the layer."""


def gap_positions(symbols: np.ndarray, bits: int, size: int) -> np.ndarray:
    """The inverse of gap_symbols: symbols -> kept (size,) bool."""
    filler = 2**bits - 1
    symbols = np.asarray(symbols, np.int64)
    is_filler = symbols == filler
    ends = np.cumsum(np.where(is_filler, filler, symbols + 1))  # position after each symbol
    where = ends[~is_filler] - 1
    if len(where) and where[-1] >= size:
        raise PositionsError(f"the gaps reach position {where[-1]} of a layer of {size}")
    kept = np.zeros(size, bool)
    kept[where] = True
    return kept
