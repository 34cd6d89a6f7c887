"""The IDX parser: every element type round-trips; every kind of bad file raises IdxError."""

import gzip
import struct

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from tinyprune.data.idx import IdxError, parse_idx, read_bytes, read_idx

# The IDX type codes, written out from the format's spec rather than taken from tinyprune.data.idx.
CODES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def make_idx(array: np.ndarray, code: int) -> bytes:
    """An IDX file holding array, with the element type of `code`."""
    header = struct.pack(f">BBBB{array.ndim}I", 0, 0, code, array.ndim, *array.shape)
    return header + array.astype(CODES[code]).tobytes()


GOOD = make_idx(np.arange(12, dtype=np.uint8).reshape(3, 4), 0x08)


def test_hand_built_file_parses_big_endian():
    # int16, 2 elements: 0x0102 = 258 and 0xFFFE = -2
    data = bytes([0, 0, 0x0B, 1, 0, 0, 0, 2, 0x01, 0x02, 0xFF, 0xFE])
    out = parse_idx(data)
    assert out.tolist() == [258, -2]
    assert out.dtype == np.int16 and out.dtype.isnative
    # float32 0x3F800000 = 1.0, shape 1x1
    assert parse_idx(bytes([0, 0, 0x0D, 2, 0, 0, 0, 1, 0, 0, 0, 1, 0x3F, 0x80, 0, 0])).tolist() == [
        [1.0]
    ]


@pytest.mark.parametrize("code", CODES)
def test_every_type_round_trips(code):
    dtype = np.dtype(CODES[code])
    if dtype.kind == "f":
        values = np.array([0.0, -1.5, np.finfo(dtype).max, np.finfo(dtype).tiny, np.inf, 3.25])
    else:
        values = np.array(
            [0, 1, np.iinfo(dtype).min, np.iinfo(dtype).max, 7, 100 % np.iinfo(dtype).max]
        )
    array = values.astype(dtype).reshape(1, 2, 3)
    out = parse_idx(make_idx(array, code))
    assert out.shape == (1, 2, 3)
    assert out.dtype == dtype.newbyteorder("=") and out.dtype.isnative
    np.testing.assert_array_equal(out, array)
    out[0, 0, 0] = 1  # the result owns writable memory, unlike a frombuffer view of bytes


def test_zero_sized_dimension_is_a_valid_empty_array():
    assert parse_idx(struct.pack(">BBBBII", 0, 0, 0x08, 2, 0, 28)).shape == (0, 28)


@pytest.mark.parametrize("gzipped", [False, True])
@pytest.mark.parametrize("filename", ["labels-idx1-ubyte", "labels-idx1-ubyte.gz"])
def test_read_idx_detects_gzip_by_content_not_name(tmp_path, gzipped, filename):
    path = tmp_path / filename
    path.write_bytes(gzip.compress(GOOD) if gzipped else GOOD)
    assert read_bytes(path) == GOOD
    np.testing.assert_array_equal(read_idx(path), np.arange(12).reshape(3, 4))


def _corrupt_body(gz: bytes) -> bytes:
    bad = bytearray(gz)
    bad[len(gz) // 2] ^= 0xFF
    return bytes(bad)


BAD_IDX = {  # case -> (file content, words the message must contain)
    "empty": (b"", "too short"),
    "shorter than the header": (b"\0\0\x08", "too short"),
    "non-zero magic": (b"\x01\x00" + GOOD[2:], "two zero bytes"),
    "unknown type code": (GOOD[:2] + b"\x0a" + GOOD[3:], "unknown IDX element type 0x0A"),
    "ndim 0": (b"\0\0\x08\x00" + GOOD[4:], "0 dimensions"),
    "header cut inside dims": (GOOD[:10], "needs 12 header bytes"),
    "data truncated": (GOOD[:-1], "truncated"),
    "trailing bytes": (GOOD + b"\0", "1 bytes trail"),
    "more dims than NumPy allows": (
        struct.pack(">BBBB65I", 0, 0, 0x08, 65, *[1] * 65) + b"\7",
        "65-dimensional",
    ),
}


@pytest.mark.parametrize("case", BAD_IDX)
@pytest.mark.parametrize("gzipped", [False, True])
def test_bad_idx_raises_idx_error_naming_the_file(tmp_path, case, gzipped):
    content, words = BAD_IDX[case]
    path = tmp_path / "broken-idx1-ubyte"
    path.write_bytes(gzip.compress(content) if gzipped else content)
    with pytest.raises(IdxError, match=words) as info:
        read_idx(path)
    assert str(path) in str(info.value)
    with pytest.raises(IdxError, match=f"^some-name: .*{words}"):
        parse_idx(content, "some-name")


def test_bad_magic_names_the_file_when_parsing_bytes():
    with pytest.raises(IdxError, match="^train-images-idx3-ubyte.gz: "):
        parse_idx(b"\xff" * 20, "train-images-idx3-ubyte.gz")


def test_gzip_inside_gzip_is_not_taken_for_idx(tmp_path):
    path = tmp_path / "double.gz"
    path.write_bytes(gzip.compress(gzip.compress(GOOD)))
    with pytest.raises(
        IdxError, match="two zero bytes; this is not an IDX file .it is still gzip-compressed"
    ):
        read_idx(path)


def test_truncation_message_states_sizes():
    data = make_idx(np.zeros((2, 3), np.int32), 0x0C)
    with pytest.raises(
        IdxError, match="header says 2x3 int32 = 24 bytes of data but the file has 20"
    ):
        parse_idx(data[:-4], "x")


BIG = gzip.compress(make_idx(np.arange(5000, dtype=np.int32) % 251, 0x0C))
BAD_GZIP = {
    "flipped byte in the compressed body": _corrupt_body(BIG),
    "flipped byte in the CRC": BIG[:-5] + bytes([BIG[-5] ^ 1]) + BIG[-4:],
    "truncated in the body": BIG[: len(BIG) // 2],
    "truncated in the trailer": BIG[:-3],
    "only the magic": b"\x1f\x8b",
    "bad compression method": b"\x1f\x8b\x07" + BIG[3:],
}


@pytest.mark.parametrize("case", BAD_GZIP)
def test_corrupt_gzip_raises_idx_error_naming_the_file(tmp_path, case):
    path = tmp_path / "train-images-idx3-ubyte.gz"
    path.write_bytes(BAD_GZIP[case])
    with pytest.raises(IdxError, match="corrupt gzip stream") as info:
        read_idx(path)
    assert str(path) in str(info.value)


# --- property tests: whatever the bytes, a correct array or IdxError, nothing else ---


@st.composite
def idx_files(draw) -> bytes:
    code = draw(st.sampled_from(sorted(CODES)))
    shape = draw(hnp.array_shapes(min_dims=1, max_dims=3, min_side=0, max_side=4))
    return make_idx(draw(hnp.arrays(np.dtype(CODES[code]), shape)), code)


@st.composite
def damaged_idx_files(draw) -> bytes:
    data = bytearray(draw(idx_files()))
    how = draw(st.sampled_from(["truncate", "mutate", "append", "none"]))
    if how == "truncate":
        del data[draw(st.integers(0, len(data))) :]
    elif how == "mutate":
        for _ in range(draw(st.integers(1, 3))):
            data[draw(st.integers(0, len(data) - 1))] = draw(st.integers(0, 255))
    elif how == "append":
        data += draw(st.binary(min_size=1, max_size=16))
    return bytes(data)


def check_parse(data: bytes) -> None:
    """parse_idx(data) is an IdxError naming the file, or exactly the array the header describes."""
    try:
        out = parse_idx(data, "fuzz.idx")
    except IdxError as e:
        assert str(e).startswith("fuzz.idx: ")
        return
    assert data[:2] == b"\0\0"
    code, ndim = data[2], data[3]
    header = 4 + 4 * ndim
    assert out.shape == struct.unpack(f">{ndim}I", data[4:header])
    assert out.dtype == np.dtype(CODES[code]).newbyteorder("=")
    assert out.astype(CODES[code]).tobytes() == data[header:]  # every byte accounted for


@settings(deadline=None, max_examples=300)
@given(
    st.one_of(
        damaged_idx_files(), st.binary(max_size=40), st.binary(max_size=40).map(b"\0\0".__add__)
    )
)
def test_any_bytes_give_a_correct_array_or_idx_error(data):
    check_parse(data)


@settings(deadline=None)
@given(st.sampled_from(sorted(CODES)), st.data())
def test_valid_files_round_trip(code, data):
    shape = data.draw(hnp.array_shapes(min_dims=1, max_dims=3, min_side=0, max_side=4))
    array = data.draw(hnp.arrays(np.dtype(CODES[code]), shape))
    out = parse_idx(make_idx(array, code))
    assert out.shape == array.shape and out.dtype.isnative
    assert (
        out.astype(CODES[code]).tobytes() == array.tobytes()
    )  # bytewise: NaN payloads and -0.0 too


@settings(deadline=None, max_examples=200)
@given(
    file=idx_files(),
    cuts=st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 255)), max_size=3),
    keep=st.integers(0, 10**6),
)
def test_damaged_gzip_gives_content_or_idx_error(tmp_path_factory, file, cuts, keep):
    gz = bytearray(gzip.compress(file))
    for position, value in cuts:
        gz[position % len(gz)] = value
    path = tmp_path_factory.getbasetemp() / "fuzz-idx.gz"
    path.write_bytes(gz[: max(2, keep % (len(gz) + 1))])
    try:
        content = read_bytes(path)
    except IdxError as e:
        assert str(path) in str(e)
        return
    check_parse(content)
