"""Where a compressed file's bytes go, per layer, in the manner of Deep Compression's Table 3.

Per weighted layer (its bias included in its bytes):

    kept             the share of weights kept by pruning
    value bits       per kept weight: its value uncoded (32 float32, 8 int8, or the index of its
                     shared value, ceil(log2 k) bits), then Huffman- and arithmetic-coded
    position bits    per kept weight: where it is (the paper's "index bits"): a bitmask's
                     size / kept, then gaps Huffman- and arithmetic-coded (each coder's best
                     width; coded bits include their table and coder bit, tpz.py); a * marks
                     what the file holds, the smallest
    bytes, ratio     the layer's bytes in the file (codebook and code tables included) and
                     how many times smaller than its weights and bias in dense float32

A "header" row holds the rest (magic, header, padding, checksum), so the bytes add up to the
file's size.
"""

from __future__ import annotations

from tinyprune.nn.model import Sequential, layer_of


def size_rows(report: list[dict], model: Sequential) -> list[dict]:
    """tpz.encode's report -> the rows of the table, each with dense_bytes and ratio,
    and a last "total" row for the whole file."""
    dense: dict[str, int] = {}
    for name, p in model.params().items():
        dense[layer_of(name)] = dense.get(layer_of(name), 0) + 4 * p.value.size
    rows = [{**r, "dense_bytes": dense.get(r["name"], 0)} for r in report]
    total_bytes = sum(r["bytes"] for r in rows)
    rows.append(
        {
            "name": "total",
            "weights": sum(r.get("weights", 0) for r in rows),
            "kept": sum(r.get("kept", 0) for r in rows),
            "bytes": total_bytes,
            "dense_bytes": 4 * model.num_params(),
        }
    )
    for r in rows:
        r["ratio"] = r["dense_bytes"] / r["bytes"] if r["dense_bytes"] else None
    return rows


def bits_cells(row: dict, field: str) -> str:
    """A field's bits per kept weight, uncoded / Huffman / arithmetic, * after the one written."""
    cells = []
    for coder, key in (("fixed", "bits"), ("huffman", "huffman"), ("arith", "arith")):
        bits, mark = row.get(f"{field}_{key}"), "*" if row[f"{field}_coder"] == coder else " "
        cells.append(f"{bits:7.2f}{mark}" if bits is not None else " " * 8)
    return " ".join(cells)


def format_size_table(rows: list[dict]) -> str:
    """The rows of size_rows as a table to print."""
    coders = f"{'fixed':>7}  {'Huffman':>7}  {'arith':>7} "
    lines = [
        f"{'layer':8} {'weights':>8} {'kept':>7} {'value bits':^26} {'position bits':^33}"
        f" {'bytes':>9} {'smaller':>8}",
        f"{'':8} {'':>8} {'':>7} {coders} {coders} {'':>6} {'':>9} {'':>8}",
    ]
    for r in rows:
        line = f"{r['name']:8} "
        if "weights" in r:
            line += f"{r['weights']:8,d} {r['kept'] / max(r['weights'], 1):7.2%} "
        else:
            line += f"{'':8} {'':7} "
        if "value_bits" in r:
            line += f"{bits_cells(r, 'value')} {bits_cells(r, 'position')} {r['positions']:>6} "
        else:
            line += f"{'':26} {'':26} {'':>6} "
        ratio = f"{r['ratio']:7.1f}x" if r["ratio"] else ""
        lines.append(f"{line}{r['bytes']:9,.0f} {ratio:>8}")
    return "\n".join(lines)
