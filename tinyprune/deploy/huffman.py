"""Huffman coding with canonical codes: only each symbol's code length needs storing.

    code_lengths   counts -> an optimal code length per symbol (Huffman's merging)
    canonical      lengths -> the codes: shorter codes first, ties by symbol, each code the
                   previous one plus 1, shifted left when the length grows (as in DEFLATE)
    encode/decode  symbols <-> a bit array (uint8, one 0 or 1 per element)

A decoder rebuilds the codes from the lengths alone, so a file stores the lengths (a few bits
per symbol) instead of a tree. Unused symbols get length 0. A lone used symbol gets length 1, so
that the stored lengths name it, but its stream is empty: it is the only thing the stream can
say, so it costs no bits at all (the decoder is told how many symbols to produce).
"""

from __future__ import annotations

import heapq

import numpy as np


def code_lengths(counts: np.ndarray) -> np.ndarray:
    """counts (n,) int >= 0 -> lengths (n,) int64 of an optimal prefix code.

    Huffman: merge the two lightest subtrees until one is left; every merge puts each symbol
    of both one level deeper."""
    lengths = np.zeros(len(counts), np.int64)
    # (weight, tie-breaker, symbols): the tie-breaker keeps lists from being compared
    heap = [(int(c), s, [s]) for s, c in enumerate(counts) if c > 0]
    heapq.heapify(heap)
    if len(heap) == 1:
        lengths[heap[0][1]] = 1  # names the lone symbol; its stream is empty (see above)
    while len(heap) > 1:
        w1, t1, s1 = heapq.heappop(heap)
        w2, t2, s2 = heapq.heappop(heap)
        lengths[s1 + s2] += 1
        heapq.heappush(heap, (w1 + w2, min(t1, t2), s1 + s2))
    return lengths


def canonical(lengths: np.ndarray) -> np.ndarray:
    """lengths (n,) -> codes (n,) int64: the canonical code of each used symbol (its
    lengths[s] low bits, most significant first); 0 for unused symbols."""
    codes = np.zeros(len(lengths), np.int64)
    code, previous = 0, 0
    for s in sorted(np.flatnonzero(lengths), key=lambda s: (lengths[s], s)):
        code <<= int(lengths[s]) - previous
        codes[s], previous = code, int(lengths[s])
        code += 1
    return codes


def encode(symbols: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """symbols (m,) int, each with lengths[s] > 0 unless it is the lone symbol -> bits (sum of
    their lengths,) uint8: their canonical codes one after another."""
    symbols = np.asarray(symbols, np.int64)
    if np.count_nonzero(lengths) == 1:
        return np.zeros(0, np.uint8)
    codes, sizes = canonical(lengths)[symbols], lengths[symbols]
    owner = np.repeat(np.arange(len(symbols)), sizes)  # which symbol each bit belongs to
    place = np.arange(len(owner)) - np.repeat(np.cumsum(sizes) - sizes, sizes)
    return ((codes[owner] >> (sizes[owner] - 1 - place)) & 1).astype(np.uint8)


class HuffmanError(ValueError):
    """The bits are not a valid stream for these code lengths."""


def decode(bits: np.ndarray, count: int, lengths: np.ndarray) -> tuple[np.ndarray, int]:
    """Read `count` symbols from the start of bits (uint8 0/1) -> (symbols (count,) int64,
    bits used). Raises HuffmanError if the bits run out or spell no code."""
    used = np.flatnonzero(lengths)
    if count == 0:
        return np.zeros(0, np.int64), 0
    if len(used) == 0:
        raise HuffmanError(f"{count} symbols to decode but no symbol has a code")
    if len(used) == 1:
        return np.full(count, used[0], np.int64), 0
    longest = int(lengths.max())
    # window[p]: the next `longest` bits from p as an integer (zeros past the end)
    span = min(len(bits), count * longest)
    padded = np.concatenate([bits[:span], np.zeros(longest, np.uint8)]).astype(np.int64)
    window = np.zeros(span + 1, np.int64)
    for j in range(longest):
        window = (window << 1) | padded[j : j + span + 1]
    # A code of length l is a number in [first[l], first[l] + number[l]) (canonical order).
    order = sorted(used, key=lambda s: (lengths[s], s))
    number = np.bincount(lengths[used], minlength=longest + 1)
    codes = canonical(lengths)
    first: dict[int, int] = {}  # length -> its first code, shortest length first
    for s in order:
        first.setdefault(int(lengths[s]), int(codes[s]))
    start = {length: int(np.sum(number[:length])) for length in first}
    out = np.zeros(count, np.int64)
    p = 0
    for i in range(count):
        if p >= len(window):
            raise HuffmanError(f"the bits ran out after {i} of {count} symbols")
        w = int(window[p])
        for length, f in first.items():
            c = (w >> (longest - length)) - f
            if 0 <= c < number[length]:
                out[i] = order[start[length] + c]
                p += length
                break
        else:
            raise HuffmanError(f"symbol {i} of {count}: the bits spell no code")
    if p > span:
        raise HuffmanError(f"the bits ran out: {count} symbols need {p} bits, {span} are left")
    return out, p


def total_bits(counts: np.ndarray) -> int:
    """Bits of a Huffman-coded stream with these symbol counts (0 for one symbol used)."""
    if np.count_nonzero(counts) <= 1:
        return 0
    return int(np.dot(code_lengths(counts), counts))
