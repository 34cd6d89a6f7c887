"""Export an Int8Model (deploy/int8_model.py) as C99 with no float at all, equal to its NumPy
reference bit for bit:

    int lenet5_int8_predict(const uint8_t pixels[LENET5_INT8_INPUT_SIZE],
                            int32_t logits[LENET5_INT8_CLASSES]);

takes the raw 0..255 pixels, writes the int32 logits and returns the class (the first largest).
Weights are int8 in the CSR form of kernels/sparse.py; biases int32; each layer's requantisation
two integers. Activations are int8 and live on the stack; a conv block is computed two conv rows
at a time and pooled at once, so no whole conv output plane is ever held: LeNet-5 needs about
3 KB of activations (a float32 conv1 output alone would be 18.8 KB).
"""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from tinyprune.deploy.c_export import C_TYPES, c_array
from tinyprune.deploy.int8_model import INPUT_ZERO, Int8Model
from tinyprune.files import write_text
from tinyprune.kernels.sparse import conv_taps, csr_from_dense

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
/* out[f] = requantize(maxpool2x2(bias[f] + sum of the taps of channel f)), for f < F.
 * in (C, Hp, Wp): the input, already padded. The taps of channel f are entries ptr[f] ..
 * ptr[f+1]-1; a tap starting at offset c*Hp*Wp + kh*Wp + kw of `in` (the previous tap's offset,
 * or 0, plus gap[t]) adds w[t] * in[offset + oh*Wp + ow] to conv output (oh, ow). Two conv rows
 * at a time go into rows (2 * Wo accumulators), then pool into one output row.
 * out (F, Hq + 2*opad, Wq + 2*opad): the pooled planes inside a border of opad values `zero`
 * (a real 0), the padding of the next conv. */
static void conv_pool(const int8_t *in, int Hp, int Wp, int K, int F, const ptr_t *ptr,
                      const uint8_t *gap, const int8_t *w, const int32_t *bias, int32_t mult,
                      int shift, int zero, int lo, int opad, int32_t *rows, int8_t *out)
{
    const int Ho = Hp - K + 1, Wo = Wp - K + 1, Hq = Ho / 2, Wq = Wo / 2;
    const int Hs = Hq + 2 * opad, Ws = Wq + 2 * opad;
    for (int j = 0; opad > 0 && j < F * Hs * Ws; j++)
        out[j] = (int8_t)zero;
    for (int f = 0; f < F; f++) {
        int8_t *o = out + f * Hs * Ws + opad * Ws + opad;
        for (int i = 0; i < Hq; i++) {
            for (int j = 0; j < 2 * Wo; j++)
                rows[j] = bias[f];
            const int8_t *x = in + 2 * i * Wp;
            for (ptr_t t = ptr[f]; t < ptr[f + 1]; t++) {
                const int32_t wt = w[t];
                x += gap[t];
                for (int j = 0; j < Wo; j++) {
                    rows[j] += wt * x[j];
                    rows[Wo + j] += wt * x[Wp + j];
                }
            }
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
/* acc[r] = bias[r] + sum of row r's weights w[t] times the input they pick, x[column], where
 * column is the previous entry's column (or 0) plus gap[t]; for r < R. Then out[r] =
 * requantize(acc[r]), or, for the last layer (out == 0), logits[r] = acc[r]. */
static void linear(const int8_t *x, int R, const ptr_t *ptr, const uint8_t *gap,
                   const int8_t *w, const int32_t *bias, int32_t mult, int shift, int zero,
                   int lo, int8_t *out, int32_t *logits)
{
    for (int r = 0; r < R; r++) {
        int32_t acc = bias[r];
        const int8_t *xp = x;
        for (ptr_t t = ptr[r]; t < ptr[r + 1]; t++) {
            xp += gap[t];
            acc += w[t] * *xp;
        }
        if (out)
            out[r] = requantize(acc, mult, shift, zero, lo);
        else
            logits[r] = acc;
    }
}
"""


def gap_encode(ptr: np.ndarray, index: np.ndarray,
               values: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """CSR (ptr, index, values) -> (ptr, gap uint8, values): each entry's index as the gap from
    the previous entry of its row (the first: from 0), one byte instead of two. A gap over 255
    is bridged by filler entries of gap 255 and weight 0, which add nothing (Han et al. 2016)."""
    new_ptr, gaps, kept = [0], [], []
    for r in range(len(ptr) - 1):
        previous = 0
        for t in range(ptr[r], ptr[r + 1]):
            gap = int(index[t]) - previous
            while gap > 255:
                gaps.append(255)
                kept.append(0)
                gap -= 255
            gaps.append(gap)
            kept.append(int(values[t]))
            previous = int(index[t])
        new_ptr.append(len(gaps))
    return (np.array(new_ptr, np.int64), np.array(gaps, np.uint8),
            np.array(kept, values.dtype))


def c_prefix(q: Int8Model) -> str:
    """The file and function prefix of the export: 'lenet5_int8'."""
    return re.sub(r"\W", "_", q.name).lower() + "_int8"


def _stage_csr(q: Int8Model, shape: tuple[int, int, int]):
    """-> per stage (ptr, index, values, output shape), following the activation shape."""
    C, H, W = shape
    out = []
    for stage in q.stages:
        if stage.is_conv:
            ptr, index, values = conv_taps(stage.weight, H, W, stage.pad)
            K = stage.weight.shape[2]
            C, H, W = len(stage.weight), (H + 2 * stage.pad - K + 1) // 2, \
                (W + 2 * stage.pad - K + 1) // 2
        else:
            ptr, index, values = csr_from_dense(stage.weight)
            C, H, W = len(stage.weight), 1, 1
        out.append((ptr, index, values, (C, H, W)))
    return out


def generate_c_int8(q: Int8Model, input_shape: tuple[int, int, int] = (1, 28, 28),
                    source: str = "a tinyprune model") -> tuple[str, str, int]:
    """-> (C source, header, bytes of the weight arrays) of the integer-only model."""
    prefix = c_prefix(q)
    macro = prefix.upper()
    csr = _stage_csr(q, input_shape)
    encoded = [gap_encode(ptr, index, values) for ptr, index, values, _ in csr]
    big = max(int(ptr[-1]) for ptr, _, _ in encoded)
    ptr_dtype = np.uint16 if big < 2**16 else np.uint32
    arrays, weights = [], 0
    for stage, (ptr, gap, values) in zip(q.stages, encoded):
        for suffix, array in (("ptr", ptr.astype(ptr_dtype)), ("gap", gap),
                              ("values", values.astype(np.int8)), ("bias", stage.bias)):
            text, size = c_array(f"{stage.name}_{suffix}", array)
            arrays.append(text)
            weights += size
    buffers, calls = _body(q, csr, input_shape)
    kernels = REQUANTIZE + (CONV_POOL if q.stages[0].is_conv else "") + LINEAR
    C, H, W = input_shape
    classes = len(q.stages[-1].bias)
    kept = sum(len(values) for _, _, values, _ in csr)
    fillers = sum(len(values) for _, _, values in encoded) - kept
    header = f"""/* {prefix}.h: {q.name} in integers only, exported by tinyprune from {source}. */
#ifndef {macro}_H
#define {macro}_H

#include <stdint.h>

#define {macro}_INPUT_SIZE ({C} * {H} * {W})
#define {macro}_CLASSES {classes}

/* pixels: ({C}, {H}, {W}) raw 0..255. Writes the int32 logits (real logits times
 * {1 / q.logit_scale:.6g}) and returns the predicted class (the first largest logit). */
int {prefix}_predict(const uint8_t pixels[{macro}_INPUT_SIZE], int32_t logits[{macro}_CLASSES]);

#endif
"""
    body = "\n    ".join(buffers + calls)
    source_text = f"""/* {prefix}.c: {q.name} exported by tinyprune (deploy/c_int8.py) from {source}.
 * Generated: do not edit. Integer arithmetic only, equal bit for bit to
 * tinyprune.deploy.int8_model.Int8Model: int8 weights and activations, int32 accumulators
 * and biases, requantisation by an integer multiply and shift. {kept:,} weights kept, in CSR
 * rows with each column (conv: input offset) stored as a one-byte gap from the previous one
 * ({fillers:,} zero fillers bridge longer gaps). {weights:,} bytes of weight arrays.
 * C99; no malloc; includes <stdint.h> only. */
#include <stdint.h>

#include "{prefix}.h"

typedef {C_TYPES[np.dtype(ptr_dtype)][0]} ptr_t;
{kernels}
{"".join(arrays)}
int {prefix}_predict(const uint8_t pixels[{macro}_INPUT_SIZE], int32_t logits[{macro}_CLASSES])
{{
    {body}
    int best = 0;
    for (int k = 1; k < {macro}_CLASSES; k++)
        if (logits[k] > logits[best])
            best = k;
    return best;
}}
"""
    return source_text, header, weights


def _body(q: Int8Model, csr, input_shape) -> tuple[list[str], list[str]]:
    """-> (the activation buffers, the statements) of predict."""
    C, H, W = input_shape
    pad = q.stages[0].pad
    Hp, Wp = H + 2 * pad, W + 2 * pad
    buffers = [(f"int8_t input[{C * Hp * Wp}];  /* ({C}, {Hp}, {Wp}): pixel - 128, "
                f"in a border of {pad} zero points ({INPUT_ZERO}) */")]
    calls = []
    if pad:
        calls.append(f"for (int j = 0; j < {C * Hp * Wp}; j++) input[j] = {INPUT_ZERO};")
    calls.append(f"for (int c = 0; c < {C}; c++) for (int h = 0; h < {H}; h++) "
                 f"for (int w = 0; w < {W}; w++)\n        "
                 f"input[(c * {Hp} + h + {pad}) * {Wp} + w + {pad}] = "
                 f"(int8_t)(pixels[(c * {H} + h) * {W} + w] - 128);")
    current, shape, row_room = "input", (C, Hp, Wp), 1
    for i, (stage, (ptr, _, _, out_shape)) in enumerate(zip(q.stages, csr)):
        n = stage.name
        rq = f"{stage.mult}, {stage.shift}, {stage.zero}, {stage.lo}"
        weights = f"{n}_ptr, {n}_gap, {n}_values, {n}_bias"
        if stage.is_conv:
            K = stage.weight.shape[2]
            row_room = max(row_room, 2 * (shape[2] - K + 1))
            nxt = q.stages[i + 1] if i + 1 < len(q.stages) else None
            opad = nxt.pad if nxt is not None and nxt.is_conv else 0
            F, Hq, Wq = out_shape
            size = F * (Hq + 2 * opad) * (Wq + 2 * opad)
            buffers.append(f"int8_t {n}_out[{size}];  /* ({F}, {Hq + 2 * opad}, "
                           f"{Wq + 2 * opad}) */")
            calls.append(f"conv_pool({current}, {shape[1]}, {shape[2]}, {K}, {F}, {weights}, "
                         f"{rq}, {opad}, rows, {n}_out);")
            shape = (F, Hq + 2 * opad, Wq + 2 * opad)
            current = f"{n}_out"
        elif i + 1 < len(q.stages):
            buffers.append(f"int8_t {n}_out[{len(ptr) - 1}];")
            calls.append(f"linear({current}, {len(ptr) - 1}, {weights}, {rq}, {n}_out, 0);")
            current = f"{n}_out"
        else:
            calls.append(f"linear({current}, {len(ptr) - 1}, {weights}, {rq}, 0, logits);")
    if any(s.is_conv for s in q.stages):
        buffers.append(f"int32_t rows[{row_room}];  /* two conv output rows before pooling */")
    return buffers, calls


def export_c_int8(q: Int8Model, out_dir: str | Path, source: str = "a tinyprune model") -> dict:
    """Write <name>_int8.c and .h into out_dir; -> their paths and the weight arrays' bytes."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    c_text, h_text, weights = generate_c_int8(q, source=source)
    c_path, h_path = out_dir / f"{c_prefix(q)}.c", out_dir / f"{c_prefix(q)}.h"
    write_text(h_path, h_text)
    write_text(c_path, c_text)
    return {"c": c_path, "h": h_path, "weight_bytes": weights, "prefix": c_prefix(q)}
