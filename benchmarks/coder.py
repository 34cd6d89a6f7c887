"""Huffman against arithmetic coding, field by field, on the weights of saved .tpz files; and
the arithmetic coder's speed on a 400,000-symbol field (LeNet-5-Caffe's fc1 has 400,000
weights).

    python benchmarks/coder.py RUN/shared.tpz [MORE.tpz ...] [--json PATH]

Per weight: its positions (the best of bitmask and gaps of 1..8 bits with Huffman tables of
5-bit code lengths, as version 2 files held them, against the best of the kept pattern as
a 2-symbol arithmetic-coded field and the same gaps arithmetic-coded), and, for shared weights,
its value indices. Bits include each field's table (not tpz.py's coder bit, which since version
3 picks the smaller of the two per field); n*H is the field's empirical entropy (its count times
the entropy of its symbol frequencies), the least any static code of it pays before its table.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import write_json  # noqa: E402

from tinyprune.deploy import arithmetic, huffman, tpz  # noqa: E402
from tinyprune.deploy.bitstream import BitReader, BitWriter  # noqa: E402
from tinyprune.deploy.positions import gap_symbols  # noqa: E402
from tinyprune.nn.model import mask_name  # noqa: E402


def entropy_bits(symbols: np.ndarray) -> float:
    """n * H of the symbols' empirical distribution."""
    counts = np.bincount(symbols)
    p = counts[counts > 0] / len(symbols)
    return float(-len(symbols) * np.sum(p * np.log2(p)))


def huffman_field(symbols: np.ndarray, alphabet: int) -> int:
    """Bits of a Huffman-coded field in a .tpz file: its table, then its codes."""
    counts = np.bincount(symbols, minlength=alphabet)
    return alphabet * tpz.LENGTH_BITS + huffman.total_bits(counts)


def row(field: str, count: int, huff: tuple, arith: tuple, symbols: np.ndarray, alphabet: int):
    """A row of the table; huff and arith are (bits, kind), symbols the arithmetic field's."""
    freqs, precision = arithmetic.best_table(np.bincount(symbols, minlength=alphabet))
    return {
        "field": field,
        "count": count,
        "nH": entropy_bits(symbols),
        "huffman": huff[0],
        "huffman_kind": huff[1],
        "arithmetic": arith[0],
        "arithmetic_kind": arith[1],
        "arithmetic_table": len(arithmetic.table_code(freqs, precision)),
    }


def position_row(name: str, kept: np.ndarray) -> dict:
    """The cheapest positions field of each coder, and what it is."""
    huff = [(kept.size, "mask")]
    arith = [(arithmetic.field_bits(kept.astype(np.int64), 2), "mask")]
    for g in range(1, tpz.MAX_GAP_BITS + 1):
        symbols = gap_symbols(kept, g)
        huff.append((huffman_field(symbols, 2**g), f"gaps{g}"))
        arith.append((arithmetic.field_bits(symbols, 2**g), f"gaps{g}"))
    best = min(arith)
    g = 1 if best[1] == "mask" else int(best[1][4:])
    symbols = kept.astype(np.int64) if best[1] == "mask" else gap_symbols(kept, g)
    return row(f"{name} positions", int(kept.sum()), min(huff), best, symbols, 2**g)


def file_rows(path: Path) -> list[dict]:
    meta, state, shared = tpz.read(path)
    rows = []
    for entry in meta["params"]:
        if "kept" not in entry:
            continue
        name = entry["name"]
        if name in shared:
            kept = shared[name].kept.ravel()
        elif mask_name(name) in state:
            kept = state[mask_name(name)].ravel().astype(bool)
        else:
            kept = state[name].ravel() != 0
        rows.append(position_row(name, kept))
        if name in shared:
            index = shared[name].index.ravel()[kept].astype(np.int64)
            k = len(shared[name].codebook)
            huff, arith = (huffman_field(index, k), ""), (arithmetic.field_bits(index, k), "")
            rows.append(row(f"{name} values ({k})", len(index), huff, arith, index, k))
    return [{"file": str(path), **r} for r in rows]


def speed(n: int = 400_000, repeats: int = 5) -> dict:
    """Best seconds to encode and to decode n symbols drawn from 16 with p = 2^-k."""
    p = 0.5 ** np.arange(1, 17)
    symbols = np.random.default_rng(0).choice(16, n, p=p / p.sum())
    encode, decode = [], []
    for _ in range(repeats):
        start = time.perf_counter()
        bits = arithmetic.encode_field(symbols, 16)
        encode.append(time.perf_counter() - start)
        out = BitWriter()
        out.bits(bits)
        reader = BitReader(out.bytes())
        start = time.perf_counter()
        back = arithmetic.read_field(reader, n, 16)
        decode.append(time.perf_counter() - start)
        assert np.array_equal(back, symbols)
    return {"symbols": n, "bits": len(bits), "encode_s": min(encode), "decode_s": min(decode)}


def print_table(rows: list[dict], files: list[Path]) -> None:
    print(
        f"{'field':26} {'count':>7} {'n*H':>9} {'Huffman':>16} {'arithmetic':>16} {'table':>6} gain"
    )
    for path in files:
        print(path)
        mine = [r for r in rows if r["file"] == str(path)]
        for r in mine:
            print(
                f"  {r['field']:24} {r['count']:7,d} {r['nH']:9,.0f} {r['huffman']:9,d} "
                f"{r['huffman_kind']:6} {r['arithmetic']:9,d} {r['arithmetic_kind']:6} "
                f"{r['arithmetic_table']:6,d} "
                f"{r['huffman'] - r['arithmetic']:+6,d}"
            )
        huff, arith = sum(r["huffman"] for r in mine), sum(r["arithmetic"] for r in mine)
        best = sum(min(r["huffman"], r["arithmetic"]) for r in mine)
        print(f"  {'total':24} {'':7} {'':9} {huff:9,d} {'':6} {arith:9,d}")
        print(
            f"  the smaller coder per field: {best:,d} bits, {(huff - best) / 8:,.0f} bytes saved"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("files", nargs="+", type=Path)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    rows = [row for path in args.files for row in file_rows(path)]
    print_table(rows, args.files)
    timing = speed()
    print(
        f"arithmetic coder, {timing['symbols']:,d} symbols: "
        f"encode {timing['encode_s']:.3f} s, decode {timing['decode_s']:.3f} s (best of 5)"
    )
    if args.json:
        write_json(args.json, {"fields": rows, "speed": timing})


if __name__ == "__main__":
    main()
