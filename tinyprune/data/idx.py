"""Read IDX files, the format MNIST ships in.

An IDX file is a tiny header followed by one array in row-major order, all big-endian:

    offset 0      0x00 0x00     magic: two zero bytes
    offset 2      type code     0x08 uint8, 0x09 int8, 0x0B int16, 0x0C int32, 0x0D float32,
                                0x0E float64
    offset 3      ndim          number of dimensions
    offset 4      dims          ndim x uint32, e.g. 60000, 28, 28
    offset 4+4*ndim   data      prod(dims) elements of the type above

Every field is checked against the file's real length, so a truncated or wrong file raises
IdxError instead of becoming a silently wrong array.
"""

import gzip
import math
import zlib
from os import PathLike

import numpy as np

# type code -> big-endian element type
IDX_DTYPES: dict[int, np.dtype] = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
GZIP_MAGIC = b"\x1f\x8b"
REDOWNLOAD = "delete it and download again"


class IdxError(ValueError):
    """A file is not a well-formed IDX file; the message names the file and says what is wrong."""


def parse_idx(data: bytes, name: str = "<bytes>") -> np.ndarray:
    """Parse the bytes of an (uncompressed) IDX file.

    Returns an array of shape dims, in native byte order, that owns its (writable) memory.
    `name` is only used in error messages.
    """
    if len(data) < 4:
        raise IdxError(
            f"{name}: {len(data)} bytes is too short for an IDX header (4 bytes at least); "
            f"the file is empty or truncated — {REDOWNLOAD}"
        )
    code, ndim = data[2], data[3]
    if data[:2] != b"\0\0":
        hint = " (it is still gzip-compressed)" if data[:2] == GZIP_MAGIC else ""
        raise IdxError(
            f"{name}: starts with bytes {data[:4].hex(' ')}, but an IDX file starts with "
            f"two zero bytes; this is not an IDX file{hint}"
        )
    if code not in IDX_DTYPES:
        known = ", ".join(f"0x{c:02X}" for c in IDX_DTYPES)
        raise IdxError(f"{name}: unknown IDX element type 0x{code:02X} (known: {known})")
    if ndim == 0:
        raise IdxError(
            f"{name}: header says the array has 0 dimensions; an IDX array needs at least 1"
        )
    header = 4 + 4 * ndim
    if len(data) < header:
        raise IdxError(
            f"{name}: header says {ndim} dimensions, which needs {header} header bytes, "
            f"but the file has only {len(data)}; the file is truncated — {REDOWNLOAD}"
        )

    dims = tuple(int(d) for d in np.frombuffer(data, ">u4", count=ndim, offset=4))
    dtype = IDX_DTYPES[code]
    # Python ints, so a hostile header cannot overflow the size computation.
    expected, got = math.prod(dims) * dtype.itemsize, len(data) - header
    if got != expected:
        shape = "x".join(map(str, dims))
        fault = (
            "the file is truncated"
            if got < expected
            else f"{got - expected} bytes trail the data; the file is not a clean IDX file"
        )
        raise IdxError(
            f"{name}: header says {shape} {dtype.name} = {expected} bytes of data "
            f"but the file has {got}; {fault} — {REDOWNLOAD}"
        )
    try:
        array = np.frombuffer(data, dtype, count=math.prod(dims), offset=header).reshape(dims)
    except ValueError as e:  # e.g. more dimensions than NumPy supports (IDX allows 255)
        raise IdxError(f"{name}: cannot make a {ndim}-dimensional array: {e}") from None
    # astype copies: native byte order for fast kernels, and writable memory, unlike frombuffer's.
    return array.astype(dtype.newbyteorder("="))


def read_bytes(path: str | PathLike) -> bytes:
    """Return the content of a file, gunzipped if it is gzip-compressed.

    Compression is detected by the gzip magic bytes 1f 8b, not by the file name, so
    `x.gz` holding raw IDX and `x` holding gzip both work. A corrupt gzip stream raises IdxError.
    """
    with open(path, "rb") as f:
        return gunzip(f.read(), str(path))


def gunzip(raw: bytes, name: str = "<bytes>") -> bytes:
    """raw decompressed if it starts with the gzip magic bytes, else raw itself."""
    if raw[:2] != GZIP_MAGIC:
        return raw
    try:
        return gzip.decompress(raw)
    except (OSError, EOFError, zlib.error) as e:  # bad CRC or header / truncated / bad deflate data
        raise IdxError(f"{name}: corrupt gzip stream ({e}); {REDOWNLOAD}") from None


def read_idx(path: str | PathLike) -> np.ndarray:
    """Read an IDX file, raw or gzip-compressed; returns an array of shape dims (see parse_idx)."""
    return parse_idx(read_bytes(path), str(path))
