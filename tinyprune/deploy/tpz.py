"""The .tpz file: a pruned model as it ships, its zeros not stored, its values float32, int8 or
shared (weight sharing), entropy-coded where that is smaller. Every .tpz a run writes
(pruned.tpz, pruned-int8.tpz, shared.tpz) is this format, version 3; `read` also reads the
version 2 files (b"TPZ2": the same, without coder bits) and version 1 files (tpz_v1.py).

A file is

    magic     4 bytes  b"TPZ3"
    header    4 bytes  H, its length (uint32, little-endian), then H bytes: JSON, deflated (zlib)
    payload   one bit stream (bitstream.py) of the fields below, zero-padded to a whole byte
    checksum  4 bytes  CRC-32 of all the bytes before it (uint32, little-endian)

The header is {"format", "version": 3, "model", "params": [...]}, one entry per parameter in
the model's order, which says what the payload holds for it, in this order:

    a bias {"name", "shape"}:  size x float32 (32 bits each); a shared bias is stored like a
                               weight whose every entry is kept
    a weight {"name", "shape", "masked", "kept": n, "positions", "gap_symbols": m, "values"}:
      positions  "bitmask": size bits, 1 = kept (row-major)
                 g (an int): gap coding in g bits (positions.py): the m gap symbols, a coded
                 field of alphabet 2^g
      values     "float32": n x 32 bits
                 "int8": a float32 scale per output channel c, then q + 127 per kept weight
                 (q in -127..127, the weight is q * scale[c], see quantize.py): n x 8 bits,
                 or, with "coded" in the entry, the n symbols q + 127, a coded field of 255
                 "shared": k (entry "codebook") float32 shared values, then the n indices into
                 them (weight_sharing.py), a coded field of alphabet k

A coded field of symbols < A is a coder bit, then 0: A Huffman code lengths (LENGTH_BITS each,
canonical codes: huffman.py) and the symbols' codes, or 1: an arithmetic-coded field
(arithmetic.py). The writer takes the smaller coder per field, the smaller of a bitmask and the
best gap width under it per weight; `encode` says, per layer, what each choice cost.
"""

from __future__ import annotations

import copy
import json
import struct
import zipfile
import zlib
from pathlib import Path

import numpy as np

from tinyprune.deploy import arithmetic, huffman
from tinyprune.deploy.bitstream import BitReader, BitStreamError, BitWriter
from tinyprune.deploy.positions import PositionsError, gap_positions, gap_symbols
from tinyprune.deploy.quantize import quantize_int8
from tinyprune.deploy.tpz_v1 import FORMAT, read_v1
from tinyprune.deploy.weight_sharing import SharedWeight, kept_pattern
from tinyprune.files import atomic_write
from tinyprune.nn.layers import Param
from tinyprune.nn.model import Sequential, layer_of, mask_name

VERSION = 3
MAGIC = b"TPZ3"
VERSIONS = {b"TPZ2": 2, MAGIC: VERSION}  # version 2 files have no coder bits: all Huffman
LENGTH_BITS = 5  # a Huffman code length, 0..31, is stored in 5 bits
MAX_GAP_BITS = 8  # gap codings tried: 1..8 bits
VALUE_KINDS = ("float32", "int8", "shared")


class CompressedFormatError(ValueError):
    """The file is not a .tpz this version can read, or not for this model."""


def costs(symbols: np.ndarray, alphabet: int) -> tuple[int, int]:
    """Bits of the symbols (< alphabet) as a coded field, coder bit and table included ->
    (Huffman-coded, arithmetic-coded)."""
    huff = alphabet * LENGTH_BITS + huffman.total_bits(np.bincount(symbols, minlength=alphabet))
    return 1 + huff, 1 + arithmetic.field_bits(symbols, alphabet)


def write_coded(out: BitWriter, symbols: np.ndarray, alphabet: int, arith: bool) -> None:
    """The symbols (< alphabet) as a coded field: the coder bit, then the field."""
    out.uints(np.array([int(arith)]), 1)
    if arith:
        arithmetic.write_field(out, symbols, alphabet)
        return
    lengths = huffman.code_lengths(np.bincount(symbols, minlength=alphabet))
    if lengths.max(initial=0) >= 2**LENGTH_BITS:
        raise ValueError(f"a Huffman code of {lengths.max()} bits does not fit the format")
    out.uints(lengths, LENGTH_BITS)
    out.bits(huffman.encode(symbols, lengths))


def coded_row(field: str, n: int, fixed: float, huff: int, arith: int, coded: bool) -> dict:
    """A field's part of the report: bits per kept weight uncoded and in each coder, and which
    was written: "fixed", or, if coded, the smaller coder ("huffman" or "arith")."""
    coder = ("arith" if arith < huff else "huffman") if coded else "fixed"
    row = {"bits": fixed, "huffman": huff / max(n, 1), "arith": arith / max(n, 1), "coder": coder}
    return {f"{field}_{key}": value for key, value in row.items()}


def gap_options(kept: np.ndarray) -> list[tuple[int, int, int]]:
    """Every way to store kept (flat bool) as gaps, fewest bits first: (bits as `costs` counts
    them, coder: 0 Huffman or 1 arithmetic, gap width g); Huffman, then narrower, on a tie."""
    return sorted(
        (bits, coder, g)
        for g in range(1, MAX_GAP_BITS + 1)
        for coder, bits in enumerate(costs(gap_symbols(kept, g), 2**g))
    )


def write_positions(out: BitWriter, kept: np.ndarray, entry: dict) -> dict:
    """The kept pattern (flat bool), as a bitmask or as gaps; -> its part of the report (the
    fixed bits are the bitmask's, each coder's those of its best gap width)."""
    options = gap_options(kept)
    bits, arith, g = options[0]
    huff, arith_bits = (next(o[0] for o in options if o[1] == coder) for coder in (0, 1))
    layout = "mask" if kept.size <= bits else f"gaps{g}"
    if layout == "mask":
        entry["positions"] = "bitmask"
        out.bits(kept.astype(np.uint8))
    else:
        symbols = gap_symbols(kept, g)
        entry["positions"], entry["gap_symbols"] = g, len(symbols)
        write_coded(out, symbols, 2**g, bool(arith))
    n = int(kept.sum())
    row = coded_row("position", n, kept.size / max(n, 1), huff, arith_bits, layout != "mask")
    return {"positions": layout, **row}


def write_int8(out: BitWriter, weight: np.ndarray, kept: np.ndarray, entry: dict) -> dict:
    """The kept weights as int8, one scale per output channel (quantize.py); -> its part of
    the report."""
    q, scales = quantize_int8(weight)
    entry["values"] = "int8"
    out.floats(scales)
    symbols = q[kept].astype(np.int64) + 127
    huff, arith = costs(symbols, 255)
    if min(huff, arith) >= 8 * len(symbols):
        out.uints(symbols, 8)
        return coded_row("value", len(symbols), 8, huff, arith, False)
    entry["coded"] = True  # a layer's int8 values are peaked around 0: coding pays
    write_coded(out, symbols, 255, arith < huff)
    return coded_row("value", len(symbols), 8, huff, arith, True)


def write_values(
    out: BitWriter, values: np.ndarray, kind: str, entry: dict, shared: SharedWeight | None
) -> dict:
    """The kept weights' values (row-major) as `kind`; -> its part of the report."""
    entry["values"] = kind
    if kind == "float32":
        out.floats(values)
        return {"value_bits": 32, "value_coder": "fixed"}
    assert shared is not None
    index, k = shared.index[shared.kept].astype(np.int64), len(shared.codebook)
    entry["codebook"] = k
    out.floats(shared.codebook)
    huff, arith = costs(index, k)
    write_coded(out, index, k, arith < huff)
    fixed = int(np.ceil(np.log2(max(k, 2))))
    return coded_row("value", len(index), fixed, huff, arith, True)


def check_shared(name: str, value: np.ndarray, kept: np.ndarray, s: SharedWeight) -> None:
    """Refuse to write a shared weight the model does not hold exactly."""
    if not (np.array_equal(s.kept, kept) and np.array_equal(s.weight(), value)):
        raise ValueError(
            f"{name}: the model's weights are not codebook[index] of its shared "
            f"weight; write them back (SharedWeight.weight) before saving"
        )


def write_param(
    out: BitWriter, name: str, p: Param, values: str, shared: SharedWeight | None, entry: dict
) -> dict:
    """A weight (or a shared bias): its positions, then its values; -> its report row."""
    kept = shared.kept if shared is not None else kept_pattern(p)
    kind = (
        "shared"
        if shared is not None and values == "shared"
        else ("float32" if values == "shared" else values)
    )
    if shared is not None:
        check_shared(name, p.value, kept, shared)
    entry.update(masked=p.prunable and p.mask is not None, kept=int(kept.sum()))
    row = {"name": layer_of(name), "weights": p.value.size, "kept": entry["kept"], "values": kind}
    row.update(write_positions(out, kept.ravel(), entry))
    if kind == "int8":
        row.update(write_int8(out, p.value, kept, entry))
    else:
        row.update(write_values(out, p.value[kept].astype(np.float32), kind, entry, shared))
    return row


def encode(
    model: Sequential, values: str = "float32", shared: dict[str, SharedWeight] | None = None
) -> tuple[bytes, list[dict]]:
    """The model as a .tpz file -> (its bytes, report rows: one per weighted layer, see
    size_report.py, then one "header" row for the rest of the file).

    values: "float32", "int8" or "shared"; with "shared", the weights (and biases) in `shared`
    (as share_weights returns them) are stored as codebook + indices, the others as float32."""
    if values not in VALUE_KINDS:
        raise ValueError(f"values must be one of {', '.join(VALUE_KINDS)}, got {values!r}")
    shared = shared or {}
    meta: dict = {"format": FORMAT, "version": VERSION, "model": model.name, "params": []}
    out, rows = BitWriter(), {}
    for name, p in model.params().items():
        entry: dict = {"name": name, "shape": list(p.value.shape)}
        meta["params"].append(entry)
        start = len(out)
        if not p.prunable and not (values == "shared" and name in shared):
            out.floats(p.value.ravel())  # a bias, as it is
        else:
            row = write_param(out, name, p, values, shared.get(name), entry)
            if p.prunable:
                rows[layer_of(name)] = row
        rows[layer_of(name)]["bits"] = rows[layer_of(name)].get("bits", 0) + len(out) - start
    header = zlib.compress(json.dumps(meta, separators=(",", ":")).encode(), 9)
    body = MAGIC + struct.pack("<I", len(header)) + header + out.bytes()
    data = body + struct.pack("<I", zlib.crc32(body))
    for row in rows.values():
        row["bytes"] = row.pop("bits") / 8
    report = list(rows.values())
    report.append({"name": "header", "bytes": len(data) - sum(r["bytes"] for r in report)})
    return data, report


def read_coded(bits: BitReader, count: int, alphabet: int, version: int) -> np.ndarray:
    """A coded field of `count` symbols < alphabet (version 2: no coder bit, Huffman)."""
    if version >= 3 and bits.bits(1)[0]:
        return arithmetic.read_field(bits, count, alphabet)
    lengths = bits.uints(alphabet, LENGTH_BITS).astype(np.int64)
    symbols, used = huffman.decode(bits.rest(), count, lengths)
    bits.skip(used)
    return symbols


def read_weight(
    bits: BitReader, entry: dict, version: int
) -> tuple[np.ndarray, np.ndarray, SharedWeight | None]:
    """One weight's fields -> (weight float32, kept bool, its SharedWeight or None)."""
    shape, n = tuple(entry["shape"]), entry["kept"]
    size = int(np.prod(shape))
    if entry["positions"] == "bitmask":
        kept = bits.bits(size).astype(bool)
    else:
        g = entry["positions"]
        kept = gap_positions(read_coded(bits, entry["gap_symbols"], 2**g, version), g, size)
    if kept.sum() != n:
        raise CompressedFormatError(f"{entry['name']} has {kept.sum()} kept weights, not {n}")
    shared = None
    if entry["values"] == "float32":
        values = bits.floats(n)
    elif entry["values"] == "int8":
        coded, scales = entry.get("coded", False), bits.floats(shape[0])
        q = read_coded(bits, n, 255, version) if coded else bits.uints(n, 8)
        rows = np.nonzero(kept.reshape(shape[0], -1))[0]  # each kept weight's output channel
        values = (q.astype(np.int64) - 127).astype(np.float32) * scales[rows]
    else:
        codebook = bits.floats(entry["codebook"]).copy()
        index = read_coded(bits, n, len(codebook), version)
        values = codebook[index]
        shared = SharedWeight(codebook, np.full(shape, -1, np.int16))
        shared.index[kept.reshape(shape)] = index
    weight = np.zeros(size, np.float32)
    weight[kept] = values
    return weight.reshape(shape), kept.reshape(shape), shared


def decode(
    data: bytes, source: str = "the data"
) -> tuple[dict, dict[str, np.ndarray], dict[str, SharedWeight]]:
    """A version 2 or 3 file's bytes -> (meta, state, shared): state as load_state takes it
    (weights with their zeros, '<layer>.mask' for masked weights), shared the SharedWeight of
    each shared weight. Raises CompressedFormatError on a damaged or truncated file."""
    damaged = f"{source} is damaged or truncated"
    version = VERSIONS.get(data[:4], 0)
    if len(data) < 12 or not version:
        raise CompressedFormatError(f"{source} is not a tinyprune compressed model (version 2-3)")
    if zlib.crc32(data[:-4]) != struct.unpack("<I", data[-4:])[0]:
        raise CompressedFormatError(f"{damaged} (its checksum does not match); write it again")
    (size,) = struct.unpack("<I", data[4:8])
    try:
        meta = json.loads(zlib.decompress(data[8 : 8 + size]))
        bits = BitReader(data[8 + size : -4])
        state, shared = {}, {}
        for entry in meta["params"]:
            name = entry["name"]
            if "kept" not in entry:
                state[name] = bits.floats(int(np.prod(entry["shape"]))).reshape(entry["shape"])
                continue
            state[name], kept, s = read_weight(bits, entry, version)
            if entry["masked"]:
                state[mask_name(name)] = kept.astype(np.uint8)
            if s is not None:
                shared[name] = s
    except (
        zlib.error,
        ValueError,
        KeyError,
        TypeError,
        BitStreamError,
        PositionsError,
        huffman.HuffmanError,
        arithmetic.ArithmeticCodeError,
    ) as error:
        raise CompressedFormatError(f"{damaged}: {error}; write it again") from None
    if len(bits.rest()) >= 8 or bits.rest().any():
        raise CompressedFormatError(f"{damaged}: {len(bits.rest())} bits are left over")
    return meta, state, shared


def save(
    model: Sequential,
    path: str | Path,
    values: str = "float32",
    shared: dict[str, SharedWeight] | None = None,
) -> list[dict]:
    """Write the model to path (.tpz) atomically, as `encode` does; -> encode's report."""
    data, report = encode(model, values, shared)
    with atomic_write(path) as tmp:
        tmp.write_bytes(data)
    return report


def read(path: str | Path) -> tuple[dict, dict[str, np.ndarray], dict[str, SharedWeight]]:
    """A .tpz file of any version -> (meta, state, shared) as `decode` returns them (a
    version 1 file has no shared weights). Raises CompressedFormatError for anything else."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist; write one with python -m tinyprune.run")
    if zipfile.is_zipfile(path):  # version 1 is an .npz (a zip)
        try:
            return (*read_v1(path), {})
        except ValueError as error:
            raise CompressedFormatError(str(error)) from None
    return decode(path.read_bytes(), str(path))


def decoded_model(model: Sequential, path: str | Path) -> Sequential:
    """A copy of the model holding what the file at path decodes to (weights, biases, masks),
    e.g. to measure the accuracy of the file itself; the model is left as it is."""
    meta, state, _ = read(path)
    if meta["model"] != model.name:
        raise CompressedFormatError(f"{path} holds a {meta['model']!r} model, not a {model.name!r}")
    twin = copy.deepcopy(model)
    for p in twin.params().values():
        p.mask = None
    twin.load_state(state, source=str(path))
    return twin


def dense_float32_bytes(model: Sequential) -> int:
    """Bytes of the model's parameters stored densely as float32: 4 per parameter."""
    return 4 * model.num_params()


def compressed_bytes(model: Sequential, quantize: bool = False) -> int:
    """The size of the model's .tpz file, float32 or int8 values, in bytes, without writing it."""
    return len(encode(model, "int8" if quantize else "float32")[0])


def write_compressed(model: Sequential, folder: str | Path, stem: str = "pruned") -> dict:
    """Write folder/<stem>.tpz (float32 values) and folder/<stem>-int8.tpz; -> their sizes and
    the dense float32 size, in bytes: {"dense_float32", "compressed", "compressed_int8"}."""
    folder = Path(folder)
    sizes = {"dense_float32": dense_float32_bytes(model)}
    for key, values, name in (("compressed", "float32", ""), ("compressed_int8", "int8", "-int8")):
        save(model, folder / f"{stem}{name}.tpz", values)
        sizes[key] = (folder / f"{stem}{name}.tpz").stat().st_size
    return sizes
