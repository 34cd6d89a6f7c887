"""Export an Int8Model (deploy/int8_model.py) as C99 with no float at all, equal to its NumPy
reference bit for bit:

    int lenet5_int8_predict(const uint8_t pixels[LENET5_INT8_INPUT_SIZE],
                            int32_t logits[LENET5_INT8_CLASSES]);

takes the raw 0..255 pixels, writes the int32 logits and returns the class (the first largest).
("lenet5_shared" for a model with shared weights.) Per layer, the C holds:

    ptr, gap   where the kept weights are: row r's entries are ptr[r] .. ptr[r+1]-1, and each
               entry's gap (one byte) moves the input pointer on from the previous entry (or
               the row's start); a gap of 255 is a jump with no weight, so longer gaps cost a
               byte per 255 columns. For a conv a row is an output channel and the "column" is
               the tap's offset c*Hp*Wp + kh*Wp + kw in the padded input.
    weights    int8: one int8 value per kept weight. Shared: the int8 codebook (<= 2^b values)
               and one b-bit index per kept weight, packed (the flash saving of weight sharing
               survives on the device: nothing is expanded).
    bias       int32, and the requantisation's two integers in the call.

Activations are int8 and live on the stack; a conv block is computed two conv rows at a time and
pooled at once, so no whole conv output plane is ever held: LeNet-5 needs about 3 KB of them
(a float32 conv1 output alone would be 18.8 KB).
"""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from tinyprune.deploy.c_export import C_TYPES, c_array
from tinyprune.deploy.int8_model import INPUT_ZERO, Int8Model, IntStage
from tinyprune.files import write_text

SKIP = 255  # a gap byte that only moves the input pointer on, with no weight

WEIGHTS_INT8 = r"""
/* A layer's kept weights, one int8 each, in the order of its entries. */
typedef struct { const int8_t *values; } weights_t;
#define WEIGHT(w, n) ((w)->values[n])
"""

WEIGHTS_SHARED = r"""
/* A layer's kept weights as shared values: weight n is codebook[index n], the indices `bits`
 * bits each, packed from the lowest bit of index[0] up (index has one spare byte at the end). */
typedef struct { const int8_t *codebook; const uint8_t *index; uint32_t bits; } weights_t;
static inline int32_t shared_weight(const weights_t *w, uint32_t n)
{
    const uint32_t bit = n * w->bits;
    const uint32_t two = w->index[bit >> 3] | (uint32_t)w->index[(bit >> 3) + 1] << 8;
    return w->codebook[(two >> (bit & 7)) & ((1u << w->bits) - 1)];
}
#define WEIGHT(w, n) shared_weight(w, n)
"""

REQUANTIZE = r"""
/* The int8 value of an accumulator: clamp(zero + ((acc * mult + 2^(shift-1)) >> shift), lo, 127).
 * >> of a negative number is an arithmetic shift in gcc and clang (C99 leaves it to them). */
static int8_t requantize(int32_t acc, int32_t mult, int shift, int zero, int lo)
{
    int32_t y = (int32_t)(((int64_t)acc * mult + ((int64_t)1 << (shift - 1))) >> shift) + zero;
    return (int8_t)(y < lo ? lo : (y > 127 ? 127 : y));
}
"""

CONV_POOL = r"""
#ifdef __GNUC__
#define NOINLINE __attribute__((noinline))  /* few live variables: the MAC loop's stay in registers */
#else
#define NOINLINE
#endif

/* Two rows of one channel's conv output, before pooling: rows[r*Wo + j] = b + the sum over the
 * taps (entries g .. end-1, weights n, n+1, ...) of weight * x[offset + r*Wp + j], r = 0, 1,
 * where each gap moves the tap's offset on. -> the number of the channel's next weight. */
static NOINLINE uint32_t conv_rows(const int8_t *x, int Wp, int Wo, const uint8_t *g,
                                   const uint8_t *end, const weights_t *weights, uint32_t n,
                                   int32_t b, int32_t *rows)
{
    const weights_t w = *weights;     /* a local copy, so that its pointers stay in registers */
    int32_t *rows1 = rows + Wo;
    for (int j = 0; j < 2 * Wo; j++)
        rows[j] = b;
    for (; g < end; g++) {
        x += *g;
        if (*g == SKIP)
            continue;
        const int32_t wt = WEIGHT(&w, n++);
        const int8_t *x1 = x + Wp;
        for (int j = 0; j < Wo; j++) {
            rows[j] += wt * x[j];
            rows1[j] += wt * x1[j];
        }
    }
    return n;
}

/* out[f] = requantize(maxpool2x2(bias[f] + sum of the taps of channel f)), for f < F.
 * in (C, Hp, Wp): the input, already padded; channel f's taps are entries ptr[f] .. ptr[f+1]-1
 * of gap, a tap at offset o of `in` adding weight * in[o + oh*Wp + ow] to conv output (oh, ow).
 * Two conv rows at a time go into rows (2 * Wo accumulators), then pool into one output row.
 * out (F, Hq + 2*opad, Wq + 2*opad): the pooled planes inside a border of opad values `zero`
 * (a real 0), the padding of the next conv. */
static void conv_pool(const int8_t *in, int Hp, int Wp, int K, int F, const ptr_t *ptr,
                      const uint8_t *gap, const weights_t *weights, const int32_t *bias,
                      int32_t mult, int shift, int zero, int lo, int opad, int32_t *rows,
                      int8_t *out)
{
    const int Ho = Hp - K + 1, Wo = Wp - K + 1, Hq = Ho / 2, Wq = Wo / 2;
    const int Hs = Hq + 2 * opad, Ws = Wq + 2 * opad;
    uint32_t first = 0, n = 0;            /* the number of channel f's first weight */
    for (int j = 0; opad > 0 && j < F * Hs * Ws; j++)
        out[j] = (int8_t)zero;
    for (int f = 0; f < F; f++, first = n) {
        int8_t *o = out + f * Hs * Ws + opad * Ws + opad;
        for (int i = 0; i < Hq; i++) {
            n = conv_rows(in + 2 * i * Wp, Wp, Wo, gap + ptr[f], gap + ptr[f + 1], weights,
                          first, bias[f], rows);
            for (int k = 0; k < Wq; k++) {
                int32_t m = rows[2 * k];
                if (rows[2 * k + 1] > m) m = rows[2 * k + 1];
                if (rows[Wo + 2 * k] > m) m = rows[Wo + 2 * k];
                if (rows[Wo + 2 * k + 1] > m) m = rows[Wo + 2 * k + 1];
                o[i * Ws + k] = requantize(m, mult, shift, zero, lo);
            }
        }
    }
}
"""

LINEAR = r"""
/* acc[r] = bias[r] + sum of row r's weights times the inputs they pick, for r < R; then
 * out[r] = requantize(acc[r]), or, for the last layer (out == 0), logits[r] = acc[r]. */
static void linear(const int8_t *x, int R, const ptr_t *ptr, const uint8_t *gap,
                   const weights_t *weights, const int32_t *bias, int32_t mult, int shift,
                   int zero, int lo, int8_t *out, int32_t *logits)
{
    const weights_t w = *weights;     /* a local copy, so that its pointers stay in registers */
    const uint8_t *g = gap + ptr[0];
    uint32_t n = 0;
    for (int r = 0; r < R; r++) {
        int32_t acc = bias[r];
        const int8_t *xp = x;
        for (const uint8_t *end = gap + ptr[r + 1]; g < end; g++) {
            xp += *g;
            if (*g != SKIP)
                acc += WEIGHT(&w, n++) * *xp;
        }
        if (out)
            out[r] = requantize(acc, mult, shift, zero, lo);
        else
            logits[r] = acc;
    }
}
"""


def gap_encode(ptr: np.ndarray, columns: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """CSR rows (ptr, increasing columns per row) -> (ptr of the gap stream, gaps uint8): each
    column as the gap from the previous one of its row (the first: from 0), a gap of 255 or more
    preceded by SKIP bytes of 255 each (Han et al. 2016 use filler zeros instead)."""
    new_ptr, gaps = [0], []
    for r in range(len(ptr) - 1):
        previous = 0
        for column in columns[ptr[r]:ptr[r + 1]]:
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
        parts = [("ptr", ptr.astype(ptr_dtype)), ("gap", gap), ("bias", stage.bias)]
        if stage.codebook is None:
            parts.append(("values", stored.astype(np.int8)))
            weights = f"{{{n}_values}}"
        else:
            parts += [("codebook", stage.codebook), ("index", pack_indices(stored,
                                                                           index_bits(stage)))]
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
    return (len(stage.weight), (H + 2 * stage.pad - K + 1) // 2,
            (W + 2 * stage.pad - K + 1) // 2)


def predict_body(q: Int8Model, input_shape: tuple[int, int, int]) -> list[str]:
    """-> the statements of predict: buffers, the input copy, one call per stage."""
    C, H, W = input_shape
    pad = q.stages[0].pad
    Hp, Wp = H + 2 * pad, W + 2 * pad
    lines = [(f"int8_t input[{C * Hp * Wp}];  /* ({C}, {Hp}, {Wp}): pixel - 128, in a border "
              f"of {pad} zero points ({INPUT_ZERO}) */")]
    if pad:
        lines.append(f"for (int j = 0; j < {C * Hp * Wp}; j++) input[j] = {INPUT_ZERO};")
    lines.append(f"for (int c = 0; c < {C}; c++) for (int h = 0; h < {H}; h++) "
                 f"for (int w = 0; w < {W}; w++)\n        "
                 f"input[(c * {Hp} + h + {pad}) * {Wp} + w + {pad}] = "
                 f"(int8_t)(pixels[(c * {H} + h) * {W} + w] - 128);")
    current, shape = "input", (C, Hp, Wp)
    row_room, unpadded = 0, input_shape
    for stage in q.stages:
        if stage.is_conv:     # two rows of conv output: 2 * Wo accumulators
            row_room = max(row_room, 2 * (unpadded[2] + 2 * stage.pad - stage.weight.shape[2] + 1))
        unpadded = stage_output_shape(stage, unpadded)
    if row_room:
        lines.append(f"int32_t rows[{row_room}];  /* two conv output rows before pooling */")
    for i, stage in enumerate(q.stages):
        n, last = stage.name, i == len(q.stages) - 1
        args = (f"{n}_ptr, {n}_gap, &{n}_weights, {n}_bias, {stage.mult}, {stage.shift}, "
                f"{stage.zero}, {stage.lo}")
        F, Hq, Wq = stage_output_shape(stage, (shape[0], shape[1] - 2 * stage.pad,
                                               shape[2] - 2 * stage.pad))
        if stage.is_conv:
            nxt = q.stages[i + 1] if not last else None
            opad = nxt.pad if nxt is not None and nxt.is_conv else 0
            out = (F, Hq + 2 * opad, Wq + 2 * opad)
            lines.append(f"int8_t {n}_out[{int(np.prod(out))}];  /* {out} */")
            lines.append(f"conv_pool({current}, {shape[1]}, {shape[2]}, "
                         f"{stage.weight.shape[2]}, {F}, {args}, {opad}, rows, {n}_out);")
            current, shape = f"{n}_out", out
        elif not last:
            lines.append(f"int8_t {n}_out[{F}];")
            lines.append(f"linear({current}, {F}, {args}, {n}_out, 0);")
            current = f"{n}_out"
        else:
            lines.append(f"linear({current}, {F}, {args}, 0, logits);")
    return lines


def generate_c_int8(q: Int8Model, input_shape: tuple[int, int, int] = (1, 28, 28),
                    source: str = "a tinyprune model") -> tuple[str, str, int]:
    """-> (C source, header, bytes of the weight arrays) of the integer-only model."""
    prefix, shared = c_prefix(q), any(s.codebook is not None for s in q.stages)
    macro = prefix.upper()
    arrays, weight_bytes, ptr_type = layer_arrays(q, input_shape)
    kernels = ((WEIGHTS_SHARED if shared else WEIGHTS_INT8) + REQUANTIZE
               + (CONV_POOL if q.stages[0].is_conv else "") + LINEAR)
    kept = sum(int(s.kept.sum()) for s in q.stages)
    how = "shared values (an int8 codebook per layer, packed indices)" if shared else "int8"
    C, H, W = input_shape
    signature = (f"int {prefix}_predict(const uint8_t pixels[{macro}_INPUT_SIZE], "
                 f"int32_t logits[{macro}_CLASSES])")
    header = f"""/* {prefix}.h: {q.name} in integers only, exported by tinyprune from {source}. */
#ifndef {macro}_H
#define {macro}_H

#include <stdint.h>

#define {macro}_INPUT_SIZE ({C} * {H} * {W})
#define {macro}_CLASSES {len(q.stages[-1].bias)}

/* pixels: ({C}, {H}, {W}) raw 0..255. Writes the int32 logits (real logits times
 * {1 / q.logit_scale:.6g}) and returns the predicted class (the first largest logit). */
{signature};

#endif
"""
    body = "\n    ".join(predict_body(q, input_shape))
    source_text = f"""/* {prefix}.c: {q.name} exported by tinyprune (deploy/c_int8.py) from {source}.
 * Generated: do not edit. Integer arithmetic only, equal bit for bit to
 * tinyprune.deploy.int8_model.Int8Model: weights as {how}, {kept:,} kept;
 * int8 activations, int32 accumulators and biases, requantisation by an integer multiply and
 * shift. {weight_bytes:,} bytes of weight arrays. C99; no malloc; includes <stdint.h> only. */
#include <stdint.h>

#include "{prefix}.h"

typedef {ptr_type} ptr_t;
#define SKIP {SKIP}  /* a gap that only moves on, with no weight */
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
