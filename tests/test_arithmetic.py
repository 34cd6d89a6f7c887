"""Arithmetic coding: hand-computed streams; exact round trips of fields back to back in one bit
stream; the bits reported are the bits written; the payload within 2 + n/2^14 bits of the
ideal code length; damaged or truncated fields raise a clear error and never hang."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tinyprune.deploy import arithmetic as ar
from tinyprune.deploy import huffman
from tinyprune.deploy.bitstream import BitReader, BitStreamError, BitWriter


def bits_of(text: str) -> list[int]:
    return [int(c) for c in text]


def test_kernel_by_hand():
    out = np.zeros(20, np.uint8)
    # p = 1/2 each: every symbol emits its own bit; the end emits 01 (low = 0 < a quarter)
    n = ar.encode_kernel(np.array([1, 0, 1]), np.array([0, 1, 2]), 2, out)
    assert out[:n].tolist() == bits_of("101" + "01")
    # p = 1/4, 1/2, 1/4: symbol 1 is [1/4, 3/4), it straddles the middle: pending 1, no bit;
    # symbol 0 then falls in the lower half: 0 and the pending 1, then 0 again; end 01
    n = ar.encode_kernel(np.array([1, 0]), np.array([0, 1, 3, 4]), 4, out)
    assert out[:n].tolist() == bits_of("01" + "0" + "01")


def test_decoder_finds_the_symbol_at_the_edges_of_its_interval():
    # total 3, p = 1/3, 2/3: over the first 32-bit range, symbol 1 starts at floor(2^32 / 3)
    edge = 2**32 // 3
    for value, symbol in ((edge - 1, 0), (edge, 1), (2**32 - 1, 1), (0, 0)):
        bits = np.array([(value >> k) & 1 for k in range(31, -1, -1)], np.uint8)
        out = np.zeros(1, np.int64)
        ar.decode_kernel(bits, np.array([0, 1, 3]), np.array([0, 1, 1]), 3, out)
        assert out[0] == symbol, value


def test_field_by_hand():
    # counts (1, 2): P = 2 wins (f = 1, 3: table 4 + 3 bits, ideal payload 2 + 2 log2(4/3) =
    # 2.83 bits; P = 1 costs 7 + 3, P = 3 costs 9 + 2.77). Payload, by the kernel's steps:
    # 1 -> [1/4, 1); 0 -> [1/4, 7/16): emit 0, then 1; 1 -> [3/16, 1) of what is left; end 01
    bits = ar.encode_field(np.array([1, 0, 1]), 2)
    assert bits.tolist() == bits_of("0010" + "010" + "01" + "01")
    assert ar.field_bits(np.array([1, 0, 1]), 2) == 11
    back = BitReader(np.packbits(bits).tobytes())
    assert ar.read_field(back, 3, 2).tolist() == [1, 0, 1] and back.position == 11


def test_gamma_and_quantise():
    assert ar.gamma(1) == [1] and ar.gamma(5) == bits_of("00101")
    f = ar.quantise(np.array([0, 1000, 1, 0, 3]), 64)
    assert f.sum() == 64 and f[0] == f[3] == 0 and f[2] >= 1 and f[1] == f.max()
    with pytest.raises(ValueError, match="3 symbols used"):
        ar.quantise(np.array([1, 1, 1]), 2)


def test_degenerate_fields():
    assert ar.field_bits(np.zeros(0, np.int64), 7) == 0  # empty: no table, no payload
    # one symbol used: its table says so and the payload is empty, however long the field
    assert ar.field_bits(np.full(100_000, 3), 8) == ar.field_bits(np.full(1, 3), 8) < 4 + 8 * 3
    assert ar.field_bits(np.zeros(10, np.int64), 1) == 4  # a one-symbol alphabet: P only
    with pytest.raises(ValueError, match=r"in \[0, 4\)"):
        ar.encode_field(np.array([0, 4]), 4)
    with pytest.raises(ValueError, match="at most 2\\^15"):
        ar.encode_field(np.arange(2**15 + 1), 2**15 + 1)
    with pytest.raises(ValueError, match="alphabet of 0"):
        ar.read_field(BitReader(bytes(4)), 3, 0)


def skewed(alphabet: int, n: int, concentration: float, seed: int) -> np.ndarray:
    """n symbols < alphabet from a random distribution (small concentration: very skewed)."""
    rng = np.random.default_rng(seed)
    return rng.choice(alphabet, n, p=rng.dirichlet(np.full(alphabet, concentration)))


def write_and_read(fields: list[tuple[np.ndarray, int]]) -> None:
    """The fields back to back then a 7-bit field, in one stream: each reads back exactly,
    consuming exactly the bits write_field reported, and the trailing field is intact."""
    out = BitWriter()
    sizes = [ar.write_field(out, symbols, alphabet) for symbols, alphabet in fields]
    out.uints(np.array([93]), 7)
    assert sizes == [ar.field_bits(s, a) for s, a in fields] and len(out) == sum(sizes) + 7
    back = BitReader(out.bytes())
    for (symbols, alphabet), size in zip(fields, sizes):
        start = back.position
        np.testing.assert_array_equal(ar.read_field(back, len(symbols), alphabet), symbols)
        assert back.position - start == size
    assert back.uints(1, 7)[0] == 93


@settings(deadline=None, max_examples=60)
@given(
    st.lists(
        st.tuples(st.integers(1, 300), st.integers(0, 2000), st.floats(0.02, 10)),
        min_size=1,
        max_size=3,
    ),
    st.integers(0, 2**32 - 1),
)
def test_fields_back_to_back_round_trip(specs, seed):
    write_and_read([(skewed(a, n, c, seed + i), a) for i, (a, n, c) in enumerate(specs)])


def test_very_skewed_and_repeated_fields_round_trip():
    one_in_a_lot = np.zeros(200_001, np.int64)
    one_in_a_lot[[0, 77_777]] = [5, 255]
    write_and_read(
        [
            (one_in_a_lot, 256),
            (np.full(5000, 2), 3),
            (np.array([1]), 2),
            (np.zeros(0, np.int64), 9),
            (np.arange(256), 256),
        ]
    )


@settings(deadline=None, max_examples=30)
@given(st.integers(2, 64), st.integers(1000, 50_000), st.floats(0.05, 5), st.integers(0, 10**6))
def test_payload_is_within_two_bits_of_the_ideal_code_length(alphabet, n, concentration, seed):
    """Each symbol s shrinks the range R (> 2^30 after doubling) to R f/T +- 1, i.e. costs
    log2(T/f) +- log2(1 + T/(R f)) < log2(T/f) + 2^-14 bits (T <= 2^15); the doublings add up
    to those costs plus log2(R_end / 2^32), which is in (-2, 0]; the end adds 2 bits. So
    ideal - n/2^14 < payload < ideal + 2 + n/2^14, ideal = sum of counts * log2(T / f)."""
    symbols = skewed(alphabet, n, concentration, seed)
    counts = np.bincount(symbols, minlength=alphabet)
    freqs, precision = ar.best_table(counts)
    table = len(ar.table_code(freqs, precision))
    payload = ar.field_bits(symbols, alphabet) - table
    used = counts > 0
    ideal = float(np.sum(counts[used] * np.log2(2**precision / freqs[used])))
    if used.sum() == 1:
        assert payload == 0
        return
    assert ideal - n / 2**14 < payload < ideal + 2 + n / 2**14
    # ideal = n*H + n*KL(counts/n || freqs/T): the quantised table's loss, which the
    # precision search trades against the table's size
    p = counts[used] / n
    n_h = -n * np.sum(p * np.log2(p))
    n_kl = n * np.sum(p * np.log2(p / (freqs[used] / 2**precision)))
    assert ideal == pytest.approx(n_h + n_kl)


def test_long_field_costs_its_entropy_plus_a_small_table():
    p = 0.6 ** np.arange(1, 17)  # a geometric distribution, like gap lengths
    symbols = np.random.default_rng(0).choice(16, 400_000, p=p / p.sum())
    counts = np.bincount(symbols, minlength=16)
    q = counts / len(symbols)
    n_h = -len(symbols) * np.sum(q[q > 0] * np.log2(q[q > 0]))
    # within 0.02% of n*H, table included; Huffman (5-bit lengths as tables) pays 3% more
    assert n_h < ar.field_bits(symbols, 16) < n_h * 1.0002
    assert ar.field_bits(symbols, 16) < 1.02 * (5 * 16 + huffman.total_bits(counts))


def as_python(values) -> list[int]:
    return [int(v) for v in values]


@settings(deadline=None, max_examples=20)
@given(st.integers(2, 40), st.integers(1, 3000), st.floats(0.05, 5), st.integers(0, 10**6))
def test_kernels_match_their_plain_python_twins(alphabet, n, concentration, seed):
    """The kernels run as plain Python on Python ints (which never overflow) give the same
    bits and symbols as the compiled ones on int64 arrays."""
    symbols = skewed(alphabet, n, concentration, seed)
    freqs, precision = ar.best_table(np.bincount(symbols, minlength=alphabet))
    cum, total = np.concatenate([[0], np.cumsum(freqs)]), 2**precision
    fast, slow = (np.zeros(n * (precision + 2) + 2, np.uint8) for _ in range(2))
    n_fast = ar.encode_kernel(symbols, cum, total, fast)
    encode_twin = getattr(ar.encode_kernel, "py_func", ar.encode_kernel)
    assert encode_twin(as_python(symbols), as_python(cum), total, slow) == n_fast
    np.testing.assert_array_equal(fast, slow)
    symbol_of = np.repeat(np.arange(alphabet), freqs)
    out_fast, out_slow = np.zeros(n, np.int64), np.zeros(n, np.int64)
    result = ar.decode_kernel(fast[:n_fast], cum, symbol_of, total, out_fast)
    decode_twin = getattr(ar.decode_kernel, "py_func", ar.decode_kernel)
    twin = decode_twin(
        as_python(fast[:n_fast]), as_python(cum), as_python(symbol_of), total, out_slow
    )
    assert tuple(result) == tuple(twin) == (n_fast, True)
    np.testing.assert_array_equal(out_fast, symbols)
    np.testing.assert_array_equal(out_slow, symbols)


def test_truncated_field_says_the_bits_ran_out():
    symbols = skewed(20, 3000, 0.5, 1)
    bits = ar.encode_field(symbols, 20)
    for cut in (1, 2, 9, len(bits) // 2, len(bits) - 5):
        with pytest.raises((ar.ArithmeticCodeError, BitStreamError), match="ran out|too soon"):
            ar.read_field(BitReader(np.packbits(bits[:cut]).tobytes()[: cut // 8]), 3000, 20)


def test_damaged_tables_are_refused():
    out = BitWriter()
    out.uints(np.array([3]), 4)  # T = 8
    out.bits(np.array(ar.gamma(6) + ar.gamma(6), np.uint8))  # 5 + 5 > 8
    with pytest.raises(ar.ArithmeticCodeError, match="add up to 10, over 8"):
        ar.read_field(BitReader(out.bytes()), 5, 3)
    out = BitWriter()
    out.uints(np.array([2]), 4)  # T = 4: a frequency + 1 has at most 3 zeros before its 1
    out.bits(np.zeros(30, np.uint8))
    with pytest.raises(ar.ArithmeticCodeError, match="over 3 zeros"):
        ar.read_field(BitReader(out.bytes()), 5, 3)


def test_the_end_check_catches_about_half_of_single_flipped_payload_bits():
    """A flipped bit leaves value anywhere in the interval; the end checks its top 2 bits."""
    rng, caught = np.random.default_rng(7), 0
    for seed in range(200):
        symbols = skewed(12, 500, 0.3, seed)
        bits = ar.encode_field(symbols, 12)
        table = len(ar.table_code(*ar.best_table(np.bincount(symbols, minlength=12))))
        bits[rng.integers(table, len(bits))] ^= 1
        stream = np.concatenate([bits, rng.integers(0, 2, 64, np.uint8)])  # a next field
        try:
            ar.read_field(BitReader(np.packbits(stream).tobytes()), 500, 12)
        except ar.ArithmeticCodeError as error:
            caught += "damaged" in str(error)
    assert caught > 0.4 * 200, caught  # 107 of 200


@settings(deadline=None, max_examples=100)
@given(st.integers(0, 10**6), st.lists(st.integers(0, 10**6), min_size=1, max_size=8))
def test_damaged_bits_end_in_an_error_or_symbols_in_range_never_a_hang(seed, flips):
    """Arithmetic coding decodes any bits to some symbols (the file's CRC catches damage), but
    the decoder stays in range, stops, and often notices that the end is wrong."""
    symbols = skewed(12, 500, 0.3, seed)
    bits = ar.encode_field(symbols, 12)
    bits[np.array(flips) % len(bits)] ^= 1
    try:
        back = ar.read_field(BitReader(np.packbits(bits).tobytes()), 500, 12)
    except (ar.ArithmeticCodeError, BitStreamError):
        return
    assert len(back) == 500 and back.min() >= 0 and back.max() < 12
