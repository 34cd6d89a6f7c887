"""The .tpz file: a pruned model as it ships, its zeros not stored, its values float32, int8 or
shared (weight sharing), entropy-coded where that is smaller. Every .tpz a run writes
(pruned.tpz, pruned-int8.tpz, shared.tpz) is this format, version 4; `read` also reads versions
2 and 3 (b"TPZ2", b"TPZ3": a deflated JSON header, then the same payload; 2 has no coder bits).

A file is magic b"TPZ4", then one bit stream (bitstream.py), zero-padded to a whole byte, then a
CRC-32 of all the bytes before it (4 bytes, little-endian). The stream is the header, where
every number x >= 0 is Elias gamma of x + 1 (arithmetic.gamma) and a text is its length then
its ASCII bytes:

    the model's name; L, its number of layers; per layer: its name, its weight's rank and
    shape (its bias is (shape[0],)), then the weight's entry and the bias's:
        weight: 1 if stored as a weight (below), 0 as plain floats;  half: 1 if its floats
        are float16, 0 float32;  and for a weight 7 more: masked (0/1), n its kept count,
        g (0: a bitmask), values (0 float32, 1 int8, 2 shared), m its gap symbols (0 if
        g = 0), coded (int8: 1 if coded), k its codebook's size (shared; else 0)

then the payload: per parameter in the same order,

    plain      size floats
    a weight   positions  g = 0: size bits, 1 = kept (row-major); else the m gap symbols of g
                          bits (positions.py), a coded field of alphabet 2^g
               values     float32: n floats; int8: a float per output channel c (its scale),
                          then q + 127 per kept weight (q in -127..127, the weight is
                          q * scale[c], quantize.py): n x 8 bits or, if coded, a coded field of
                          alphabet 255; shared: k floats (the codebook), then the n indices into
                          it (weight_sharing.py), a coded field of alphabet k

A coded field of symbols < A is a coder bit, then 0: A Huffman code lengths (LENGTH_BITS each,
canonical codes: huffman.py) and the symbols' codes, or 1: an arithmetic-coded field
(arithmetic.py). The writer takes the smaller coder per field, the smaller of a bitmask and the
best gap width under it per weight, and float16 wherever it loses nothing; `encode` says, per
layer, what each choice cost.
"""

from __future__ import annotations

import copy
import json
import struct
import zlib
from pathlib import Path

import numpy as np

from tinyprune.deploy import arithmetic, huffman
from tinyprune.deploy.bitstream import BitReader, BitWriter
from tinyprune.deploy.positions import gap_positions, gap_symbols
from tinyprune.deploy.quantize import quantize_int8
from tinyprune.deploy.weight_sharing import SharedWeight, kept_pattern
from tinyprune.files import atomic_write
from tinyprune.nn.layers import Param
from tinyprune.nn.model import Sequential, layer_of, mask_name

FORMAT = "tinyprune-compressed"
VERSION = 4
MAGIC = b"TPZ4"
VERSIONS = {b"TPZ2": 2, b"TPZ3": 3, MAGIC: VERSION}  # 2 and 3: a JSON header; 2: all Huffman
LENGTH_BITS = 5  # a Huffman code length, 0..31, is stored in 5 bits
MAX_GAP_BITS = 8  # gap codings tried: 1..8 bits
VALUE_KINDS = ("float32", "int8", "shared")  # in a header, 2 bits: their index here


class CompressedFormatError(ValueError):
    """The file is not a .tpz this version can read, or not for this model."""


def costs(symbols: np.ndarray, alphabet: int) -> tuple[int, int]:
    """Bits of the symbols (< alphabet) as a coded field, coder bit and table included ->
    (Huffman-coded, arithmetic-coded)."""
    huff = alphabet * LENGTH_BITS + huffman.total_bits(np.bincount(symbols, minlength=alphabet))
    return 1 + huff, 1 + arithmetic.field_bits(symbols, alphabet)


def write_floats(out: BitWriter, values: np.ndarray, entry: dict) -> None:
    """values as float16 (entry "half") if every one is exactly a float16, else as float32."""
    values = np.asarray(values, np.float32).ravel()
    half = values.astype(np.float16)
    if np.array_equal(half.astype(np.float32), values):
        entry["half"] = True
        out.uints(half.view(np.uint16), 16)
    else:
        out.floats(values)


def read_floats(bits: BitReader, n: int, entry: dict) -> np.ndarray:
    if entry.get("half"):
        return bits.uints(n, 16).astype(np.uint16).view(np.float16).astype(np.float32)
    return bits.floats(n)


def write_numbers(out: BitWriter, *numbers: int) -> None:
    """Each number x >= 0 as Elias gamma of x + 1 (arithmetic.gamma)."""
    out.bits(np.array([b for x in numbers for b in arithmetic.gamma(int(x) + 1)], np.uint8))


def read_numbers(bits: BitReader, n: int) -> list[int]:
    return [arithmetic.read_gamma(bits, 40) - 1 for _ in range(n)]


def write_text(out: BitWriter, text: str) -> None:
    write_numbers(out, len(text))
    out.uints(np.frombuffer(text.encode("ascii"), np.uint8), 8)


def read_text(bits: BitReader) -> str:
    return bits.uints(read_numbers(bits, 1)[0], 8).astype(np.uint8).tobytes().decode("ascii")


def entry_numbers(entry: dict) -> list[int]:
    """How a parameter is stored, as the header's numbers (the module docstring)."""
    if "kept" not in entry:
        return [0, entry.get("half", 0)]
    g = 0 if entry["positions"] == "bitmask" else entry["positions"]
    kind = VALUE_KINDS.index(entry["values"])
    extra = [entry.get(key, 0) for key in ("gap_symbols", "coded", "codebook")]
    return [1, entry.get("half", 0), entry["masked"], entry["kept"], g, kind, *extra]


def read_entry(bits: BitReader, name: str, shape: list[int]) -> dict:
    """entry_numbers' bits -> the entry, as version 3 headers hold it in JSON."""
    weight, half = read_numbers(bits, 2)
    entry: dict = {"name": name, "shape": shape, "half": bool(half)}
    if weight:
        masked, kept, g, kind, gaps, coded, k = read_numbers(bits, 7)
        entry.update(masked=bool(masked), kept=kept, positions=g or "bitmask", gap_symbols=gaps)
        entry.update(values=VALUE_KINDS[kind], coded=bool(coded), codebook=k)
    return entry


def write_header(out: BitWriter, model: str, entries: list[dict]) -> None:
    """The header of the module docstring; ValueError for a model it cannot describe."""
    write_text(out, model)
    write_numbers(out, len(entries) // 2)
    for weight, bias in zip(entries[::2], entries[1::2]):
        layer, shape = layer_of(weight["name"]), weight["shape"]
        expected = [f"{layer}.weight", f"{layer}.bias", shape[:1]]
        if [weight["name"], bias["name"], bias["shape"]] != expected:
            raise ValueError(f"a .tpz holds layers of a weight and a bias; not {weight['name']}")
        write_text(out, layer)
        write_numbers(out, len(shape), *shape, *entry_numbers(weight), *entry_numbers(bias))


def read_header(bits: BitReader) -> dict:
    """write_header's bits -> meta, as version 3 headers hold it in JSON."""
    meta: dict = {"format": FORMAT, "version": VERSION, "model": read_text(bits), "params": []}
    for _ in range(read_numbers(bits, 1)[0]):
        layer = read_text(bits)
        shape = read_numbers(bits, read_numbers(bits, 1)[0])
        meta["params"].append(read_entry(bits, f"{layer}.weight", shape))
        meta["params"].append(read_entry(bits, f"{layer}.bias", shape[:1]))
    return meta


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
    write_floats(out, scales, entry)
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
        write_floats(out, values, entry)
        return {"value_bits": 32, "value_coder": "fixed"}
    assert shared is not None
    index, k = shared.index[shared.kept].astype(np.int64), len(shared.codebook)
    entry["codebook"] = k
    write_floats(out, shared.codebook, entry)
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
            write_floats(out, p.value, entry)  # a bias, as it is
        else:
            row = write_param(out, name, p, values, shared.get(name), entry)
            if p.prunable:
                rows[layer_of(name)] = row
        rows[layer_of(name)]["bits"] = rows[layer_of(name)].get("bits", 0) + len(out) - start
    header = BitWriter()
    write_header(header, model.name, meta["params"])
    header.parts += out.parts
    body = MAGIC + header.bytes()
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
        values = read_floats(bits, n, entry)
    elif entry["values"] == "int8":
        coded, scales = entry.get("coded", False), read_floats(bits, shape[0], entry)
        q = read_coded(bits, n, 255, version) if coded else bits.uints(n, 8)
        rows = np.nonzero(kept.reshape(shape[0], -1))[0]  # each kept weight's output channel
        values = (q.astype(np.int64) - 127).astype(np.float32) * scales[rows]
    else:
        codebook = read_floats(bits, entry["codebook"], entry).copy()
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
    """A version 2, 3 or 4 file's bytes -> (meta, state, shared): state as load_state takes it
    (weights with their zeros, '<layer>.mask' for masked weights), shared the SharedWeight of
    each shared weight. Raises CompressedFormatError on a damaged or truncated file."""
    damaged = f"{source} is damaged or truncated"
    version = VERSIONS.get(data[:4], 0)
    if len(data) < 12 or not version:
        raise CompressedFormatError(
            f"{source} is not a tinyprune compressed model of version 2 to 4 (version 1, an "
            f".npz, is no longer read): write it again with python -m tinyprune.run"
        )
    if zlib.crc32(data[:-4]) != struct.unpack("<I", data[-4:])[0]:
        raise CompressedFormatError(f"{damaged} (its checksum does not match); write it again")
    try:
        if version == VERSION:
            bits = BitReader(data[4:-4])
            meta = read_header(bits)
        else:
            (size,) = struct.unpack("<I", data[4:8])
            meta = json.loads(zlib.decompress(data[8 : 8 + size]))
            bits = BitReader(data[8 + size : -4])
        state, shared = {}, {}
        for entry in meta["params"]:
            name, shape = entry["name"], entry["shape"]
            if "kept" not in entry:
                state[name] = read_floats(bits, int(np.prod(shape)), entry).reshape(shape)
                continue
            state[name], kept, s = read_weight(bits, entry, version)
            if entry["masked"]:
                state[mask_name(name)] = kept.astype(np.uint8)
            if s is not None:
                shared[name] = s
    # every error of bitstream, positions, huffman and arithmetic is a ValueError
    except (zlib.error, ValueError, KeyError, IndexError, TypeError) as error:
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
    """A .tpz file -> (meta, state, shared) as `decode` returns them. Raises
    CompressedFormatError for anything else."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist; write one with python -m tinyprune.run")
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
