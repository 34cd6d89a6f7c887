"""The .tpz file: a pruned model as it ships, its zeros not stored, its values float32, int8 or
shared (weight sharing), Huffman-coded where that is smaller. Every .tpz a run writes
(pruned.tpz, pruned-int8.tpz, shared.tpz) is this format, version 2; `read` also reads the
version 1 files of older tinyprunes (tpz_v1.py).

A file is

    magic     4 bytes  b"TPZ2"
    header    4 bytes  H, its length (uint32, little-endian), then H bytes: JSON, deflated (zlib)
    payload   one bit stream (bitstream.py) of the fields below, zero-padded to a whole byte
    checksum  4 bytes  CRC-32 of all the bytes before it (uint32, little-endian)

The header is {"format", "version": 2, "model", "params": [...]}, one entry per parameter in
the model's order, which says what the payload holds for it, in this order:

    a bias {"name", "shape"}:  size x float32 (32 bits each); a shared bias is stored like a
                               weight whose every entry is kept
    a weight {"name", "shape", "masked", "kept": n, "positions", "gap_symbols": m, "values"}:
      positions  "bitmask": size bits, 1 = kept (row-major)
                 g (an int): gap coding in g bits (positions.py): 2^g Huffman code lengths
                 (LENGTH_BITS each), then the m gap symbols, Huffman-coded
      values     "float32": n x 32 bits
                 "int8": a float32 scale per output channel c, then q + 127 per kept weight
                 (q in -127..127, the weight is q * scale[c], see quantize.py): n x 8 bits,
                 or, with "coded" in the entry, 255 Huffman code lengths (LENGTH_BITS each),
                 then the n symbols q + 127, Huffman-coded
                 "shared": k (entry "codebook") float32 shared values, k Huffman code lengths
                 (LENGTH_BITS each), then n indices into them, Huffman-coded (weight_sharing.py)

Code lengths are canonical Huffman codes' (huffman.py). Per weight, positions are stored as a
bitmask or as gaps, whichever is smaller; `encode` says, per layer, what each part cost.
"""

from __future__ import annotations

import copy
import json
import struct
import zipfile
import zlib
from pathlib import Path

import numpy as np

from tinyprune.deploy import huffman
from tinyprune.deploy.bitstream import BitReader, BitStreamError, BitWriter
from tinyprune.deploy.positions import PositionsError, gap_positions, gap_symbols
from tinyprune.deploy.quantize import quantize_int8
from tinyprune.deploy.tpz_v1 import FORMAT, read_v1
from tinyprune.deploy.weight_sharing import SharedWeight, kept_pattern
from tinyprune.files import atomic_write
from tinyprune.nn.layers import Param
from tinyprune.nn.model import Sequential, layer_of, mask_name

VERSION = 2
MAGIC = b"TPZ2"
LENGTH_BITS = 5  # a Huffman code length, 0..31, is stored in 5 bits
MAX_GAP_BITS = 8  # gap codings tried: 1..8 bits
VALUE_KINDS = ("float32", "int8", "shared")


class CompressedFormatError(ValueError):
    """The file is not a .tpz this version can read, or not for this model."""


def write_table(out: BitWriter, counts: np.ndarray) -> tuple[np.ndarray, int]:
    """Write the code lengths for these symbol counts; -> (lengths, bits the stream takes)."""
    lengths = huffman.code_lengths(counts)
    if lengths.max(initial=0) >= 2**LENGTH_BITS:
        raise ValueError(f"a Huffman code of {lengths.max()} bits does not fit the format")
    out.uints(lengths, LENGTH_BITS)
    return lengths, huffman.total_bits(counts)


def best_gap_bits(kept: np.ndarray) -> int | None:
    """The gap width (bits) that stores kept (flat bool) in the fewest bits, or None if a
    bitmask is smaller."""
    best, cost = None, kept.size
    for bits in range(1, MAX_GAP_BITS + 1):
        symbols = gap_symbols(kept, bits)
        total = 2**bits * LENGTH_BITS + huffman.total_bits(np.bincount(symbols, minlength=2**bits))
        if total < cost:
            best, cost = bits, total
    return best


def write_positions(out: BitWriter, kept: np.ndarray, entry: dict) -> dict:
    """The kept pattern (flat bool), as a bitmask or as gaps; -> its part of the report."""
    bits = best_gap_bits(kept)
    n = max(int(kept.sum()), 1)
    if bits is None:
        entry["positions"] = "bitmask"
        out.bits(kept.astype(np.uint8))
        return {
            "positions": "mask",
            "position_bits": kept.size / n,
            "position_bits_coded": kept.size / n,
        }
    symbols = gap_symbols(kept, bits)
    entry["positions"], entry["gap_symbols"] = bits, len(symbols)
    lengths, _ = write_table(out, np.bincount(symbols, minlength=2**bits))
    coded = huffman.encode(symbols, lengths)
    out.bits(coded)
    return {
        "positions": f"gaps{bits}",
        "position_bits": bits * len(symbols) / n,
        "position_bits_coded": len(coded) / n,
    }


def write_int8(out: BitWriter, weight: np.ndarray, kept: np.ndarray, entry: dict) -> dict:
    """The kept weights as int8, one scale per output channel (quantize.py); -> its part of
    the report."""
    q, scales = quantize_int8(weight)
    entry["values"] = "int8"
    out.floats(scales)
    symbols = q[kept].astype(np.int64) + 127
    counts = np.bincount(symbols, minlength=255)
    if 255 * LENGTH_BITS + huffman.total_bits(counts) >= 8 * len(symbols):
        out.uints(symbols, 8)
        return {"value_bits": 8, "value_bits_coded": 8.0}
    entry["coded"] = True  # a layer's int8 values are peaked around 0: Huffman pays
    coded = huffman.encode(symbols, write_table(out, counts)[0])
    out.bits(coded)
    return {"value_bits": 8, "value_bits_coded": len(coded) / len(symbols)}


def write_values(
    out: BitWriter, values: np.ndarray, kind: str, entry: dict, shared: SharedWeight | None
) -> dict:
    """The kept weights' values (row-major) as `kind`; -> its part of the report."""
    n = max(len(values), 1)
    entry["values"] = kind
    if kind == "float32":
        out.floats(values)
        return {"value_bits": 32, "value_bits_coded": 32.0}
    assert shared is not None
    index = shared.index[shared.kept]
    entry["codebook"] = len(shared.codebook)
    out.floats(shared.codebook)
    lengths, _ = write_table(out, np.bincount(index, minlength=len(shared.codebook)))
    coded = huffman.encode(index, lengths)
    out.bits(coded)
    return {
        "value_bits": int(np.ceil(np.log2(max(len(shared.codebook), 2)))),
        "value_bits_coded": len(coded) / n,
    }


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


def read_table(bits: BitReader, symbols: int) -> np.ndarray:
    return bits.uints(symbols, LENGTH_BITS).astype(np.int64)


def read_huffman(bits: BitReader, count: int, lengths: np.ndarray) -> np.ndarray:
    symbols, used = huffman.decode(bits.rest(), count, lengths)
    bits.skip(used)
    return symbols


def read_weight(bits: BitReader, entry: dict) -> tuple[np.ndarray, np.ndarray, SharedWeight | None]:
    """One weight's fields -> (weight float32, kept bool, its SharedWeight or None)."""
    shape, n = tuple(entry["shape"]), entry["kept"]
    size = int(np.prod(shape))
    if entry["positions"] == "bitmask":
        kept = bits.bits(size).astype(bool)
    else:
        g = entry["positions"]
        lengths = read_table(bits, 2**g)
        kept = gap_positions(read_huffman(bits, entry["gap_symbols"], lengths), g, size)
    if kept.sum() != n:
        raise CompressedFormatError(f"{entry['name']} has {kept.sum()} kept weights, not {n}")
    shared = None
    if entry["values"] == "float32":
        values = bits.floats(n)
    elif entry["values"] == "int8":
        coded, scales = entry.get("coded", False), bits.floats(shape[0])
        q = read_huffman(bits, n, read_table(bits, 255)) if coded else bits.uints(n, 8)
        rows = np.nonzero(kept.reshape(shape[0], -1))[0]  # each kept weight's output channel
        values = (q.astype(np.int64) - 127).astype(np.float32) * scales[rows]
    else:
        codebook = bits.floats(entry["codebook"]).copy()
        index = read_huffman(bits, n, read_table(bits, len(codebook)))
        values = codebook[index]
        shared = SharedWeight(codebook, np.full(shape, -1, np.int16))
        shared.index[kept.reshape(shape)] = index
    weight = np.zeros(size, np.float32)
    weight[kept] = values
    return weight.reshape(shape), kept.reshape(shape), shared


def decode(
    data: bytes, source: str = "the data"
) -> tuple[dict, dict[str, np.ndarray], dict[str, SharedWeight]]:
    """A version 2 file's bytes -> (meta, state, shared): state as Sequential.load_state takes
    it (weights with their zeros, '<layer>.mask' for masked weights), shared the SharedWeight
    of each shared weight. Raises CompressedFormatError on a damaged or truncated file."""
    damaged = f"{source} is damaged or truncated"
    if len(data) < 12 or data[:4] != MAGIC:
        raise CompressedFormatError(f"{source} is not a version 2 tinyprune compressed model")
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
            state[name], kept, s = read_weight(bits, entry)
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
    """A .tpz file of either version -> (meta, state, shared) as `decode` returns them (a
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
