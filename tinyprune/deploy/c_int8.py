"""Export an Int8Model (deploy/int8_model.py) as C99 with no float at all, equal to its NumPy
reference bit for bit:

    int lenet5_int8_predict(const uint8_t pixels[LENET5_INT8_INPUT_SIZE],
                            int8_t logits[LENET5_INT8_CLASSES]);

takes the raw 0..255 pixels, writes the int8 logits and returns the class (the first largest).
("lenet5_shared" for a model with shared weights.) Per layer, the C holds:

    ptr, gap   where the kept weights are: row r's entries are ptr[r] .. ptr[r+1]-1, and each
               entry's gap (one byte) moves the input pointer on from the previous entry (or
               the row's start); a gap of 255 is a jump with no weight, so longer gaps cost a
               byte per 255 columns. For a conv a row is an output channel and the "column" is
               the tap's offset c*Hp*Wp + kh*Wp + kw in the padded input.
    weights    int8: one int8 value per kept weight. Shared: the int8 codebook (<= 2^b values)
               and one b-bit index per kept weight, packed (the flash saving of weight sharing
               survives on the device: nothing is expanded).
    bias       int32, the input's zero point folded in (bias - z_in * sum of the row's weights);
    mult, shift  each output channel's requantisation (int32 and int8).

Activations are int8 and live on the stack; a conv block is computed two conv rows at a time and
pooled at once, so no whole conv output plane is ever held: LeNet-5 needs about 3 KB of them
(a float32 conv1 output alone would be 18.8 KB).
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from tinyprune.deploy.c_export import C_TYPES, c_array
from tinyprune.deploy.int8_model import Int8Model, IntStage
from tinyprune.files import write_text

SKIP = 255  # a gap byte that only moves the input pointer on, with no weight
KERNELS = Path(__file__).with_name("int8_kernels.c")  # the C functions every export shares


def gap_encode(ptr: np.ndarray, columns: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """CSR rows (ptr, increasing columns per row) -> (ptr of the gap stream, gaps uint8): each
    column as the gap from the previous one of its row (the first: from 0), a gap of 255 or more
    preceded by SKIP bytes of 255 each (Han et al. 2016 use filler zeros instead)."""
    new_ptr, gaps = [0], []
    for r in range(len(ptr) - 1):
        previous = 0
        for column in columns[ptr[r] : ptr[r + 1]]:
            gap = int(column) - previous
            gaps += [SKIP] * (gap // SKIP) + [gap % SKIP]
            previous = int(column)
        new_ptr.append(len(gaps))
    return np.array(new_ptr, np.int64), np.array(gaps, np.uint8)


def pack_indices(index: np.ndarray, bits: int) -> np.ndarray:
    """index (n,) ints < 2^bits -> uint8: index t in bits t*bits .. t*bits + bits-1 of the
    stream, lowest bit first, plus one zero byte (the C reads two bytes at a time)."""
    planes = ((index.astype(np.int64)[:, None] >> np.arange(bits)) & 1).astype(np.uint8)
    return np.append(np.packbits(planes.ravel(), bitorder="little"), np.uint8(0))


def index_bits(stage: IntStage) -> int:
    """Bits per shared index: enough for the codebook's size."""
    assert stage.codebook is not None
    return max(1, int(np.ceil(np.log2(len(stage.codebook)))))


def stage_entries(stage: IntStage, shape: tuple[int, int, int]):
    """-> (ptr, columns, stored): the kept weights row by row (row-major), their columns (a
    conv's: offsets in the padded input of shape (C, H, W)) and what is stored for each (the
    int8 value, or the shared index)."""
    rows = len(stage.weight)
    kept = stage.kept.reshape(rows, -1)
    r, cols = np.nonzero(kept)
    ptr = np.zeros(rows + 1, np.int64)
    np.cumsum(np.bincount(r, minlength=rows), out=ptr[1:])
    stored = (stage.weight if stage.index is None else stage.index).reshape(rows, -1)[r, cols]
    if stage.is_conv:
        C, H, W = shape
        K = stage.weight.shape[2]
        c, kh, kw = np.unravel_index(cols, (C, K, K))
        Hp, Wp = H + 2 * stage.pad, W + 2 * stage.pad
        cols = c * Hp * Wp + kh * Wp + kw
    return ptr, cols, stored


def c_prefix(q: Int8Model) -> str:
    """The file and function prefix of the export: 'lenet5_int8' or 'lenet5_shared'."""
    shared = any(stage.codebook is not None for stage in q.stages)
    return re.sub(r"\W", "_", q.name).lower() + ("_shared" if shared else "_int8")


def layer_arrays(q: Int8Model, input_shape: tuple[int, int, int]) -> tuple[list[str], int, str]:
    """-> (the C definitions of every layer's arrays, their bytes, the C type of ptr)."""
    entries, shape = [], input_shape
    for stage in q.stages:
        entries.append(gap_encode(*stage_entries(stage, shape)[:2]))
        shape = stage_output_shape(stage, shape)
    big = max(int(ptr[-1]) for ptr, _ in entries)
    ptr_dtype = np.dtype(np.uint16 if big < 2**16 else np.uint32)
    arrays, size, shape = [], 0, input_shape
    for stage, (ptr, gap) in zip(q.stages, entries):
        stored = stage_entries(stage, shape)[2]
        n = stage.name
        # the input's zero point folded into the bias: sum w (a - z) = sum w a - z sum w
        bias = stage.bias - stage.in_zero * stage.weight.reshape(len(stage.weight), -1).sum(axis=1)
        parts = [
            ("ptr", ptr.astype(ptr_dtype)),
            ("gap", gap),
            ("bias", bias.astype(np.int32)),
            ("mult", stage.mult.astype(np.int32)),
            ("shift", stage.shift.astype(np.int8)),
        ]
        if stage.codebook is None:
            parts.append(("values", stored.astype(np.int8)))
            weights = f"{{{n}_values}}"
        else:
            parts += [
                ("codebook", stage.codebook),
                ("index", pack_indices(stored, index_bits(stage))),
            ]
            weights = f"{{{n}_codebook, {n}_index, {index_bits(stage)}}}"
        for suffix, array in parts:
            text, nbytes = c_array(f"{n}_{suffix}", array)
            arrays.append(text)
            size += nbytes
        arrays.append(f"static const weights_t {n}_weights = {weights};\n")
        shape = stage_output_shape(stage, shape)
    return arrays, size, C_TYPES[ptr_dtype][0]


def stage_output_shape(stage: IntStage, shape: tuple[int, int, int]) -> tuple[int, int, int]:
    """(C, H, W) in -> (F, H', W') out: conv (padded), then 2x2 pool; a linear layer: (R, 1, 1)."""
    if not stage.is_conv:
        return len(stage.weight), 1, 1
    K = stage.weight.shape[2]
    _, H, W = shape
    return (len(stage.weight), (H + 2 * stage.pad - K + 1) // 2, (W + 2 * stage.pad - K + 1) // 2)


def predict_body(q: Int8Model, input_shape: tuple[int, int, int]) -> list[str]:
    """-> the statements of predict: buffers, the input copy, one call per stage."""
    C, H, W = input_shape
    pad = q.stages[0].pad
    Hp, Wp = H + 2 * pad, W + 2 * pad
    lines = [
        (
            f"int8_t input[{C * Hp * Wp}];  /* ({C}, {Hp}, {Wp}): pixel - 128, in a border "
            f"of {pad} zero points ({q.input_zero}) */"
        )
    ]
    if pad:
        lines.append(f"for (int j = 0; j < {C * Hp * Wp}; j++) input[j] = {q.input_zero};")
    lines.append(
        f"for (int c = 0; c < {C}; c++) for (int h = 0; h < {H}; h++) "
        f"for (int w = 0; w < {W}; w++)\n        "
        f"input[(c * {Hp} + h + {pad}) * {Wp} + w + {pad}] = "
        f"(int8_t)(pixels[(c * {H} + h) * {W} + w] - 128);"
    )
    current, shape = "input", (C, Hp, Wp)
    row_room, unpadded = 0, input_shape
    for stage in q.stages:
        if stage.is_conv:  # two rows of conv output: 2 * Wo accumulators
            row_room = max(row_room, 2 * (unpadded[2] + 2 * stage.pad - stage.weight.shape[2] + 1))
        unpadded = stage_output_shape(stage, unpadded)
    if row_room:
        lines.append(f"int32_t rows[{row_room}];  /* two conv output rows before pooling */")
    for i, stage in enumerate(q.stages):
        n, last = stage.name, i == len(q.stages) - 1
        args = (
            f"{n}_ptr, {n}_gap, &{n}_weights, {n}_bias, {n}_mult, {n}_shift, "
            f"{stage.zero}, {stage.lo}"
        )
        F, Hq, Wq = stage_output_shape(
            stage, (shape[0], shape[1] - 2 * stage.pad, shape[2] - 2 * stage.pad)
        )
        if stage.is_conv:
            nxt = q.stages[i + 1] if not last else None
            opad = nxt.pad if nxt is not None and nxt.is_conv else 0
            out = (F, Hq + 2 * opad, Wq + 2 * opad)
            lines.append(f"int8_t {n}_out[{int(np.prod(out))}];  /* {out} */")
            lines.append(
                f"conv_pool({current}, {shape[1]}, {shape[2]}, "
                f"{stage.weight.shape[2]}, {F}, {args}, {opad}, rows, {n}_out);"
            )
            current, shape = f"{n}_out", out
        elif not last:
            lines.append(f"int8_t {n}_out[{F}];")
            lines.append(f"linear({current}, {F}, {args}, {n}_out);")
            current = f"{n}_out"
        else:
            lines.append(f"linear({current}, {F}, {args}, logits);")
    return lines


def generate_c_int8(
    q: Int8Model, input_shape: tuple[int, int, int] = (1, 28, 28), source: str = "a tinyprune model"
) -> tuple[str, str, int]:
    """-> (C source, header, bytes of the weight arrays) of the integer-only model."""
    prefix, shared = c_prefix(q), any(s.codebook is not None for s in q.stages)
    macro = prefix.upper()
    arrays, weight_bytes, ptr_type = layer_arrays(q, input_shape)
    kernels = KERNELS.read_text()
    kept = sum(int(s.kept.sum()) for s in q.stages)
    how = "shared values (an int8 codebook per layer, packed indices)" if shared else "int8"
    C, H, W = input_shape
    signature = (
        f"int {prefix}_predict(const uint8_t pixels[{macro}_INPUT_SIZE], "
        f"int8_t logits[{macro}_CLASSES])"
    )
    header = f"""/* {prefix}.h: {q.name} in integers only, exported by tinyprune from {source}. */
#ifndef {macro}_H
#define {macro}_H

#include <stdint.h>

#define {macro}_INPUT_SIZE ({C} * {H} * {W})
#define {macro}_CLASSES {len(q.stages[-1].bias)}

/* pixels: ({C}, {H}, {W}) raw 0..255. Writes the int8 logits (real logits ~
 * {q.output_scale:.6g} * (logits - ({q.output_zero}))) and returns the predicted class (the
 * first largest logit). */
{signature};

#endif
"""
    body = "\n    ".join(predict_body(q, input_shape))
    source_text = f"""/* {prefix}.c: {q.name} exported by tinyprune (deploy/c_int8.py) from
 * {source}.
 * Generated: do not edit. Integer arithmetic only, equal bit for bit to
 * tinyprune.deploy.int8_model.Int8Model, TensorFlow Lite's int8 arithmetic: weights as {how},
 * {kept:,} kept, a scale per output channel; int8 activations, int32 accumulators and biases,
 * requantisation by TFLite's fixed-point multiplier and shift. {weight_bytes:,} bytes of weight
 * arrays. C99; no malloc; includes <stdint.h> only. */
#include <stdint.h>

#include "{prefix}.h"

typedef {ptr_type} ptr_t;
#define SKIP {SKIP}
{"#define SHARED_WEIGHTS" if shared else ""}
{"#define HAS_CONV" if q.stages[0].is_conv else ""}

{kernels}
{"".join(arrays)}
{signature}
{{
    {body}
    int best = 0;
    for (int k = 1; k < {macro}_CLASSES; k++)
        if (logits[k] > logits[best])
            best = k;
    return best;
}}
"""
    return source_text, header, weight_bytes


def export_c_int8(q: Int8Model, out_dir: str | Path, source: str = "a tinyprune model") -> dict:
    """Write <prefix>.c and .h into out_dir; -> their paths, the prefix and the weight arrays'
    bytes."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    c_text, h_text, weights = generate_c_int8(q, source=source)
    c_path, h_path = out_dir / f"{c_prefix(q)}.c", out_dir / f"{c_prefix(q)}.h"
    write_text(h_path, h_text)
    write_text(c_path, c_text)
    return {"c": c_path, "h": h_path, "weight_bytes": weights, "prefix": c_prefix(q)}
