"""Bits in, bits out: unsigned fields of any width, packed most significant bit first.

The .tpz format (tpz.py) is one stream of such fields; a BitWriter builds it, a
BitReader reads it back in the same order. Bits are held one per uint8 element while in memory.
"""

from __future__ import annotations

import numpy as np


def to_bits(values: np.ndarray, width: int) -> np.ndarray:
    """values (n,) unsigned ints < 2^width -> bits (n * width,) uint8, each value's most
    significant bit first."""
    values = np.asarray(values, np.uint64).ravel()
    shifts = np.arange(width - 1, -1, -1, dtype=np.uint64)
    return ((values[:, None] >> shifts) & np.uint64(1)).astype(np.uint8).ravel()


def from_bits(bits: np.ndarray, width: int) -> np.ndarray:
    """bits (n * width,) 0/1 -> values (n,) uint64: the inverse of to_bits."""
    weights = np.uint64(1) << np.arange(width - 1, -1, -1, dtype=np.uint64)
    return (bits.reshape(-1, width).astype(np.uint64) * weights).sum(axis=1, dtype=np.uint64)


class BitWriter:
    """Collects fields; .bytes() pads the stream with zero bits to a whole byte."""

    def __init__(self) -> None:
        self.parts: list[np.ndarray] = []

    def bits(self, bits: np.ndarray) -> None:
        self.parts.append(np.asarray(bits, np.uint8))

    def uints(self, values: np.ndarray, width: int) -> None:
        """Each value in `width` bits; values must be < 2^width."""
        if np.size(values) and int(np.max(values)) >> width:
            raise ValueError(f"a value {int(np.max(values))} does not fit in {width} bits")
        self.bits(to_bits(values, width))

    def floats(self, values: np.ndarray) -> None:
        """float32 values, 32 bits each (their IEEE 754 bit patterns)."""
        self.uints(np.asarray(values, np.float32).view(np.uint32), 32)

    def __len__(self) -> int:
        """Bits written so far."""
        return sum(len(p) for p in self.parts)

    def bytes(self) -> bytes:
        return np.packbits(np.concatenate([np.zeros(0, np.uint8), *self.parts])).tobytes()


class BitStreamError(ValueError):
    """A read went past the end of the stream."""


class BitReader:
    """Reads fields back from bytes in the order a BitWriter wrote them."""

    def __init__(self, data: bytes):
        self.data = np.unpackbits(np.frombuffer(data, np.uint8))
        self.position = 0  # bits read so far

    def bits(self, n: int) -> np.ndarray:
        if self.position + n > len(self.data):
            raise BitStreamError(
                f"the data ends {self.position + n - len(self.data)} bits too soon"
            )
        out = self.data[self.position : self.position + n]
        self.position += n
        return out

    def uints(self, n: int, width: int) -> np.ndarray:
        return from_bits(self.bits(n * width), width)

    def floats(self, n: int) -> np.ndarray:
        return self.uints(n, 32).astype(np.uint32).view(np.float32)

    def rest(self) -> np.ndarray:
        """The bits not read yet (without moving)."""
        return self.data[self.position :]

    def skip(self, n: int) -> None:
        self.bits(n)
