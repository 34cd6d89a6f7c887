"""Huffman coding: optimal totals (against the heap-merge sum computed independently), canonical
prefix codes, exact round trips; gap positions round trip, fillers included."""

import heapq

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tinyprune.deploy import huffman
from tinyprune.deploy.bitstream import BitReader, BitWriter, from_bits, to_bits
from tinyprune.deploy.positions import PositionsError, gap_positions, gap_symbols


def optimal_total(counts) -> int:
    """The bits of any optimal prefix code: the sum of the weights of the internal nodes that
    Huffman's merging creates (each merge adds one bit to every symbol below it)."""
    heap = [c for c in counts if c > 0]
    heapq.heapify(heap)
    total = 0
    while len(heap) > 1:
        merged = heapq.heappop(heap) + heapq.heappop(heap)
        total += merged
        heapq.heappush(heap, merged)
    return total


def test_by_hand():
    lengths = huffman.code_lengths(np.array([5, 2, 1, 1, 0]))
    np.testing.assert_array_equal(lengths, [1, 2, 3, 3, 0])
    np.testing.assert_array_equal(huffman.canonical(lengths), [0b0, 0b10, 0b110, 0b111, 0])
    np.testing.assert_array_equal(huffman.encode(np.array([1, 0, 3]), lengths), [1, 0, 0, 1, 1, 1])
    assert (
        huffman.total_bits(np.array([5, 2, 1, 1, 0]))
        == 5 + 4 + 3 + 3
        == optimal_total([5, 2, 1, 1])
    )


def test_a_lone_symbol_costs_nothing():
    lengths = huffman.code_lengths(np.array([0, 0, 7]))
    np.testing.assert_array_equal(lengths, [0, 0, 1])  # the table names it
    assert huffman.encode(np.full(7, 2), lengths).size == 0 == huffman.total_bits([0, 0, 7])
    symbols, used = huffman.decode(np.zeros(0, np.uint8), 7, lengths)
    np.testing.assert_array_equal(symbols, 2) and used == 0


@settings(deadline=None, max_examples=100)
@given(st.lists(st.integers(0, 1000), min_size=1, max_size=300), st.randoms())
def test_optimal_prefix_code_and_exact_round_trip(counts, random):
    counts = np.array(counts)
    lengths = huffman.code_lengths(counts)
    assert huffman.total_bits(counts) == optimal_total(counts)
    assert np.all((lengths > 0) == (counts > 0))
    used = lengths[lengths > 0]
    if len(used) > 1:  # Kraft: a full binary tree, and no code is a prefix of another
        assert sum(2.0**-used) == 1
        codes = huffman.canonical(lengths)
        words = {format(int(c), f"0{int(n)}b") for c, n in zip(codes, lengths) if n}
        assert not any(a != b and b.startswith(a) for a in words for b in words)
    symbols = np.repeat(np.arange(len(counts)), counts)
    random.shuffle(symbols)
    bits = huffman.encode(symbols, lengths)
    assert len(bits) == huffman.total_bits(counts)
    tail = np.array([1, 0, 1], np.uint8)  # what follows in a file is not read
    decoded, read = huffman.decode(np.concatenate([bits, tail]), len(symbols), lengths)
    np.testing.assert_array_equal(decoded, symbols)
    assert read == len(bits)


def test_decode_refuses_bits_that_run_out():
    lengths = huffman.code_lengths(np.array([5, 2, 1, 1]))
    bits = huffman.encode(np.array([3, 3, 3]), lengths)
    with pytest.raises(huffman.HuffmanError, match="ran out"):
        huffman.decode(bits[:-1], 3, lengths)


@settings(deadline=None, max_examples=100)
@given(st.integers(0, 3000), st.floats(0, 1), st.integers(1, 8), st.integers(0, 2**32 - 1))
def test_gap_positions_round_trip(size, density, bits, seed):
    kept = np.random.default_rng(seed).random(size) < density
    symbols = gap_symbols(kept, bits)
    assert np.all(symbols < 2**bits)
    assert np.count_nonzero(symbols != 2**bits - 1) == kept.sum()
    np.testing.assert_array_equal(gap_positions(symbols, bits, size), kept)


def test_gaps_by_hand():
    kept = np.zeros(20, bool)
    kept[[0, 2, 13]] = True
    # bits 2: filler 3; gaps 0, 1, 10 = 3 + 3 + 3 + 1
    np.testing.assert_array_equal(gap_symbols(kept, 2), [0, 1, 3, 3, 3, 1])
    with pytest.raises(PositionsError, match="reach position"):
        gap_positions(np.array([0, 1, 3, 3, 3, 1]), 2, 13)


def test_bit_fields_round_trip():
    out = BitWriter()
    out.uints(np.array([5, 0, 31]), 5)
    out.floats(np.array([1.5, -0.1], np.float32))
    out.bits(np.array([1, 0, 1], np.uint8))
    assert len(out) == 15 + 64 + 3
    back = BitReader(out.bytes())
    np.testing.assert_array_equal(back.uints(3, 5), [5, 0, 31])
    np.testing.assert_array_equal(back.floats(2), np.array([1.5, -0.1], np.float32))
    np.testing.assert_array_equal(back.bits(3), [1, 0, 1])
    np.testing.assert_array_equal(from_bits(to_bits(np.array([6]), 3), 3), [6])
    with pytest.raises(ValueError, match="does not fit"):
        out.uints(np.array([32]), 5)
