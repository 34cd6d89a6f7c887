"""Arithmetic coding with a static model: a symbol of probability p costs log2(1/p) bits, not
Huffman's whole number of bits (docs/coder.md is the full specification).

A field (the n symbols of one layer's positions or value indices, each < alphabet) is

    table    P in 4 bits: the frequencies sum to T = 2^P; then, for symbols 0 .. alphabet-2,
             Elias-gamma(f + 1) (an unused symbol costs 1 bit); the last frequency is T minus
             the others
    payload  the symbols, arithmetic-coded with 32-bit integers (Witten, Neal and Cleary 1987)
             and ended so that the decoder reads exactly these bits; empty when a single
             symbol is used (it is the only thing the payload could say)

An empty field (n = 0) takes no bits at all. The reader is told n and the alphabet, so a field
can sit anywhere in a .tpz file's one bit stream (tpz.py): write_field / read_field / field_bits.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from tinyprune.deploy.bitstream import BitReader, BitWriter

PRECISION_BITS = 4  # P, 0..15: frequencies sum to 2^P <= 2^15, so 32-bit state never underflows


class ArithmeticCodeError(ValueError):
    """The bits are not a valid arithmetic-coded field."""


@njit(cache=True)
def _emit(out: np.ndarray, n: int, bit: int, pending: int) -> int:
    """Write bit, then `pending` opposite bits, at out[n:]; -> the new n."""
    out[n] = bit
    for k in range(pending):
        out[n + 1 + k] = 1 - bit
    return n + 1 + pending


@njit(cache=True)
def encode_kernel(symbols: np.ndarray, cum: np.ndarray, total: int, out: np.ndarray) -> int:
    """symbols (n,) int64, cum (alphabet + 1,) int64 (cum[s] = frequencies of the symbols
    before s, cum[-1] = total <= 2^15) -> writes the payload into out (uint8, one bit each, at
    least n * (P + 2) + 2 long) and returns its length: sequential, one symbol at a time.

        for s:  [low, high] <- the part [cum[s], cum[s+1]) / total of [low, high]
                while the interval lies in one half: emit that half's bit (and the pending
                    ones), double it;  while it straddles the middle within the middle
                    quarters: pending += 1, double it about the middle
        end:    emit 2 + pending bits naming a quarter inside [low, high]
    """
    half, quarter = 1 << 31, 1 << 30
    low, high, pending, n = 0, 2 * half - 1, 0, 0
    for s in symbols:
        span = high - low + 1
        high = low + span * cum[s + 1] // total - 1
        low = low + span * cum[s] // total
        while True:
            if high < half:
                n, pending = _emit(out, n, 0, pending), 0
            elif low >= half:
                n, pending = _emit(out, n, 1, pending), 0
                low, high = low - half, high - half
            elif low >= quarter and high < 3 * quarter:
                pending += 1
                low, high = low - quarter, high - quarter
            else:
                break
            low, high = 2 * low, 2 * high + 1
    # low < quarter <= half <= high, or low < half < 3 * quarter <= high: 01 or 10 then anything
    # lies inside [low, high], whatever bits follow the field in the stream
    return _emit(out, n, 0 if low < quarter else 1, pending + 1)


@njit(cache=True)
def decode_kernel(
    bits: np.ndarray, cum: np.ndarray, symbol_of: np.ndarray, total: int, out: np.ndarray
) -> tuple[int, bool]:
    """bits (m,) uint8 from the field's first payload bit (bits past m read as 0), cum as in
    encode_kernel, symbol_of (total,) the symbol s with cum[s] <= t < cum[s+1] -> writes
    len(out) symbols into out; returns (the payload bits the encoder wrote: doublings + 2,
    whether the last bits name the quarter the encoder ends with: False = damaged bits).

    Keeps the encoder's [low, high] and value, the next 32 bits as a number in it (low <=
    value <= high holds for any bits, so symbol_of is never indexed out of range); every symbol
    does at most P + 2 doublings, so the loop ends on any input."""
    half, quarter = 1 << 31, 1 << 30
    low, high, value, position = 0, 2 * half - 1, 0, 0
    for _ in range(32):
        value = 2 * value + (int(bits[position]) if position < len(bits) else 0)
        position += 1
    for i in range(len(out)):
        span = high - low + 1
        s = symbol_of[((value - low + 1) * total - 1) // span]
        out[i] = s
        high = low + span * cum[s + 1] // total - 1
        low = low + span * cum[s] // total
        while True:
            if high < half:
                pass
            elif low >= half:
                low, high, value = low - half, high - half, value - half
            elif low >= quarter and high < 3 * quarter:
                low, high, value = low - quarter, high - quarter, value - quarter
            else:
                break
            bit = int(bits[position]) if position < len(bits) else 0
            low, high, value = 2 * low, 2 * high + 1, 2 * value + bit
            position += 1
    ends_right = quarter <= value < half if low < quarter else half <= value < 3 * quarter
    return position - 30, ends_right


def quantise(counts: np.ndarray, total: int) -> np.ndarray:
    """counts (alphabet,) int >= 0 -> frequencies (alphabet,) int64 summing to total, >= 1
    where counts > 0, 0 elsewhere: counts scaled to total, then moved one unit at a time where
    it costs the coded field least (total must be >= the number of symbols used)."""
    counts = np.asarray(counts, np.float64)
    used = counts > 0
    if total < used.sum():
        raise ValueError(f"{used.sum()} symbols used cannot share a total of {total}")
    f = np.where(used, np.maximum(1, np.round(counts * total / counts.sum())), 0).astype(np.int64)
    while f.sum() > total:  # take from where counts * log2(f / (f - 1)) is least
        loss = np.where(f > 1, counts * np.log2(np.maximum(f, 2) / np.maximum(f - 1, 1)), np.inf)
        f[np.argmin(loss)] -= 1
    while f.sum() < total:  # give to where counts * log2((f + 1) / f) is most
        f[np.argmax(np.where(used, counts * np.log2((f + 1) / np.maximum(f, 1)), -1))] += 1
    return f


def gamma(x: int) -> list[int]:
    """Elias gamma code of x >= 1: floor(log2 x) zeros, then x in binary (2 floor(log2 x) + 1
    bits)."""
    return [0] * (x.bit_length() - 1) + [int(b) for b in bin(x)[2:]]


def table_code(freqs: np.ndarray, precision: int) -> list[int]:
    """The table's bits: P in 4 bits, then gamma(f + 1) of every symbol but the last."""
    head = [(precision >> k) & 1 for k in range(PRECISION_BITS - 1, -1, -1)]
    return head + [b for f in freqs[:-1] for b in gamma(int(f) + 1)]


def best_table(counts: np.ndarray) -> tuple[np.ndarray, int]:
    """counts (alphabet,) -> (frequencies, P): the precision P whose table bits plus ideal
    payload bits (sum of counts * log2(2^P / f)) are fewest."""
    used = counts > 0
    best: tuple[float, np.ndarray, int] | None = None
    for precision in range(int(np.ceil(np.log2(used.sum()))), 2**PRECISION_BITS):
        f = quantise(counts, 2**precision)
        ideal = np.sum(counts[used] * np.log2(2**precision / f[used])) if used.sum() > 1 else 0
        cost = len(table_code(f, precision)) + ideal
        if best is None or cost < best[0]:
            best = (cost, f, precision)
    if best is None:
        raise ValueError(f"{used.sum()} symbols used: a table holds at most 2^15 (split the field)")
    return best[1], best[2]


def encode_field(symbols: np.ndarray, alphabet: int) -> np.ndarray:
    """symbols (n,) ints in [0, alphabet) -> the field's bits (uint8, one 0 or 1 each)."""
    symbols = np.asarray(symbols, np.int64).ravel()
    if len(symbols) == 0:
        return np.zeros(0, np.uint8)
    if symbols.min() < 0 or symbols.max() >= alphabet:
        raise ValueError(
            f"symbols must be in [0, {alphabet}); got {symbols.min()}..{symbols.max()}"
        )
    freqs, precision = best_table(np.bincount(symbols, minlength=alphabet))
    table = np.array(table_code(freqs, precision), np.uint8)
    if np.count_nonzero(freqs) == 1:
        return table
    cum = np.concatenate([[0], np.cumsum(freqs)])
    out = np.zeros(len(symbols) * (precision + 2) + 2, np.uint8)
    used = encode_kernel(symbols, cum, 2**precision, out)
    return np.concatenate([table, out[:used]])


def write_field(out: BitWriter, symbols: np.ndarray, alphabet: int) -> int:
    """Append the field to out; -> the bits written."""
    bits = encode_field(symbols, alphabet)
    out.bits(bits)
    return len(bits)


def field_bits(symbols: np.ndarray, alphabet: int) -> int:
    """The exact bits write_field would write, table included."""
    return len(encode_field(symbols, alphabet))


def read_gamma(bits: BitReader, most: int) -> int:
    """One Elias-gamma number of at most `most` leading zeros."""
    zeros = 0
    while bits.bits(1)[0] == 0:
        zeros += 1
        if zeros > most:
            raise ArithmeticCodeError(f"a frequency's code starts with over {most} zeros")
    return int("1" + "".join(str(b) for b in bits.bits(zeros)), 2)


def read_field(bits: BitReader, count: int, alphabet: int) -> np.ndarray:
    """Read a field of `count` symbols written by write_field -> symbols (count,) int64; the
    reader is left just after the field. Raises ArithmeticCodeError (or BitStreamError) on
    bits that are not such a field; damage that still decodes is the file checksum's job."""
    if count == 0:
        return np.zeros(0, np.int64)
    if alphabet < 1:
        raise ValueError(f"{count} symbols to read from an alphabet of {alphabet}")
    precision = int(bits.uints(1, PRECISION_BITS)[0])
    total = 2**precision
    freqs = np.array([read_gamma(bits, precision + 1) - 1 for _ in range(alphabet - 1)], np.int64)
    if freqs.sum() > total:
        raise ArithmeticCodeError(f"the frequencies add up to {freqs.sum()}, over {total}")
    freqs = np.append(freqs, total - freqs.sum())
    if np.count_nonzero(freqs) == 1:
        return np.full(count, np.flatnonzero(freqs)[0], np.int64)
    cum = np.concatenate([[0], np.cumsum(freqs)])
    symbols = np.zeros(count, np.int64)
    symbol_of = np.repeat(np.arange(alphabet), freqs)
    used, ends_right = decode_kernel(bits.rest(), cum, symbol_of, total, symbols)
    if used > len(bits.rest()):
        raise ArithmeticCodeError(f"the bits ran out: the payload needs {used}")
    if not ends_right:
        raise ArithmeticCodeError("the payload does not end as the encoder ends one: damaged")
    bits.skip(used)
    return symbols
