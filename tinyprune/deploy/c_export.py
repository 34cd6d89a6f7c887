"""Export a pruned model as one dependency-free C99 source file and its header.

    export_c(model, out_dir)

writes out_dir/lenet5.c and out_dir/lenet5.h (named after the model) with

    int lenet5_predict(const float image[LENET5_INPUT_SIZE], float logits[LENET5_CLASSES]);
    int lenet5_predict_u8(const unsigned char pixels[LENET5_INPUT_SIZE], float logits[...]);

Both return the predicted class. `image` is normalised as tinyprune.data.transforms.to_input does,
(pixel / 255 - mean) / std; `pixels` are the raw 0..255 pixels, normalised inside with the
mean and std of the data set the model was trained on.
The weights are const float32 arrays in the CSR form of kernels/sparse.py (only non-zeros, with
their row pointers and column indices); an integer-only export is c_int8.py's. No malloc, no
globals written, only <stdint.h> included: activations live on the stack (about 14 KB for
LeNet-5), so predict is re-entrant. Compiles cleanly with gcc -std=c99 -Wall
-Wextra.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from tinyprune.data.datasets import MNIST, Dataset
from tinyprune.deploy import tpz
from tinyprune.deploy.sparse_model import SparseModel
from tinyprune.deploy.weight_sharing import SharedWeight
from tinyprune.files import write_text
from tinyprune.nn.layers import Conv2d
from tinyprune.nn.model import MODELS, Sequential

C_TYPES = {
    np.dtype(np.float32): ("float", 4),
    np.dtype(np.int8): ("int8_t", 1),
    np.dtype(np.uint16): ("uint16_t", 2),
    np.dtype(np.uint32): ("uint32_t", 4),
    np.dtype(np.int32): ("int32_t", 4),
    np.dtype(np.uint8): ("uint8_t", 1),
}

# The two layer functions of the exports (a model without convs needs only the second);
# index_t is set per model.
CONV_POOL = r"""
/* out[f] = relu?(maxpool2x2(b[f] + sum of the taps of channel f)), for f < F.
 * in (C, Hp, Wp): the input, already padded. A tap's index is c*Hp*Wp + kh*Wp + kw, so it adds
 * w * in[index + oh*Wp + ow] to output pixel (oh, ow). plane: room for one Ho x Wo plane.
 * out (F, Hq + 2*opad, Wq + 2*opad), zeroed by the caller: the pooled planes go inside a
 * border of opad zeros, the padding the next conv needs. */
static void conv_pool(const float *in, int Hp, int Wp, int K, int F, const index_t *ptr,
                      const index_t *index, const float *values, const float *b, int relu,
                      float *plane, int opad, float *out)
{
    const int Ho = Hp - K + 1, Wo = Wp - K + 1, Hq = Ho / 2, Wq = Wo / 2;
    const int Hs = Hq + 2 * opad, Ws = Wq + 2 * opad;
    for (int f = 0; f < F; f++) {
        for (int j = 0; j < Ho * Wo; j++)
            plane[j] = b[f];
        for (index_t t = ptr[f]; t < ptr[f + 1]; t++) {
            const float w = values[t];
            const float *x = in + index[t];
            for (int oh = 0; oh < Ho; oh++)
                for (int ow = 0; ow < Wo; ow++)
                    plane[oh * Wo + ow] += w * x[oh * Wp + ow];
        }
        for (int i = 0; i < Hq; i++) {
            for (int k = 0; k < Wq; k++) {
                const float *p = plane + 2 * i * Wo + 2 * k;
                float m = p[0];
                if (p[1] > m) m = p[1];
                if (p[Wo] > m) m = p[Wo];
                if (p[Wo + 1] > m) m = p[Wo + 1];
                out[f * Hs * Ws + (i + opad) * Ws + k + opad] = (relu && m < 0.0f) ? 0.0f : m;
            }
        }
    }
}
"""

LINEAR = r"""
/* out[r] = relu?(b[r] + sum of the row's weights times the inputs they pick), for r < R. */
static void linear(const float *x, int R, const index_t *ptr, const index_t *index,
                   const float *values, const float *b, int relu, float *out)
{
    for (int r = 0; r < R; r++) {
        float acc = b[r];
        for (index_t t = ptr[r]; t < ptr[r + 1]; t++)
            acc += values[t] * x[index[t]];
        out[r] = (relu && acc < 0.0f) ? 0.0f : acc;
    }
}
"""


def c_float(value) -> str:
    """A C float literal that reads back as exactly this float32."""
    value = np.float32(value)
    if not np.isfinite(value):
        raise ValueError(f"cannot export a non-finite weight ({value}); the model has diverged")
    text = f"{float(value):.9g}"
    return (text if any(c in text for c in ".e") else text + ".0") + "f"


def c_array(name: str, values: np.ndarray) -> tuple[str, int]:
    """-> (a `static const` C definition of the 1-D array, its size in bytes)."""
    ctype, size = C_TYPES[values.dtype]
    items = [c_float(v) for v in values] if ctype == "float" else [str(int(v)) for v in values]
    lines = [", ".join(items[i : i + 12]) for i in range(0, len(items), 12)] or ["0"]
    # C99 forbids an empty initialiser and a zero-length array: give those one dummy element.
    body = ",\n    ".join(lines)
    count = max(len(values), 1)
    return f"static const {ctype} {name}[{count}] = {{\n    {body}\n}};\n", count * size


def float_layers(
    sparse: SparseModel, index_dtype: type, input_shape: tuple[int, int, int]
) -> tuple[list[str], int, list[str], list[str]]:
    """-> (the C arrays of every layer, their bytes, predict's buffers, its calls)."""
    C, H, W = input_shape
    weights, arrays, calls, buffers = 0, [], [], []
    pad0 = getattr(sparse.stages[0].layer, "padding", 0)  # 0 for a first fc layer
    shape = (C, H + 2 * pad0, W + 2 * pad0)  # the current input, padded
    buffers.append(
        f"float input[{np.prod(shape)}] = {{0}};  /* ({C}, {shape[1]}, {shape[2]}), "
        f"image in a border of {pad0} zeros */"
    )
    current, plane = "input", 1
    for i, (stage, (ptr, index, values, b)) in enumerate(zip(sparse.stages, sparse.csr)):
        name = stage.name
        for suffix, array in (
            ("ptr", ptr.astype(index_dtype)),
            ("index", index.astype(index_dtype)),
            ("values", values),
            ("bias", b.astype(np.float32)),
        ):
            text, size = c_array(f"{name}_{suffix}", array)
            arrays.append(text)
            weights += size
        args = f"{name}_ptr, {name}_index, {name}_values, {name}_bias, {int(stage.relu)}"
        rows = len(ptr) - 1
        if isinstance(stage.layer, Conv2d):
            K = stage.layer.weight.value.shape[2]
            Ho, Wo = shape[1] - K + 1, shape[2] - K + 1
            plane = max(plane, Ho * Wo)
            nxt = sparse.stages[i + 1].layer
            opad = nxt.padding if isinstance(nxt, Conv2d) else 0
            out_shape = (rows, Ho // 2 + 2 * opad, Wo // 2 + 2 * opad)
            buffers.append(f"float {name}_out[{np.prod(out_shape)}] = {{0}};  /* {out_shape} */")
            calls.append(
                f"conv_pool({current}, {shape[1]}, {shape[2]}, {K}, {rows}, {args}, "
                f"plane, {opad}, {name}_out);"
            )
            shape = out_shape
            current = f"{name}_out"
        elif i + 1 < len(sparse.stages):
            buffers.append(f"float {name}_out[{rows}];")
            calls.append(f"linear({current}, {rows}, {args}, {name}_out);")
            current = f"{name}_out"
        else:
            calls.append(f"linear({current}, {rows}, {args}, logits);")
    if isinstance(sparse.stages[0].layer, Conv2d):
        buffers.append(f"float plane[{plane}];  /* one conv output plane before pooling */")
    return arrays, weights, buffers, calls


def float_header(
    prefix: str,
    model_name: str,
    source: str,
    input_shape: tuple[int, int, int],
    classes: int,
    dataset: Dataset,
) -> str:
    """The header of a float export: its two predict functions."""
    macro = prefix.upper()
    C, H, W = input_shape
    return f"""/* {prefix}.h: {model_name} exported by tinyprune.export_c from {source}. */
#ifndef {macro}_H
#define {macro}_H

#define {macro}_INPUT_SIZE ({C} * {H} * {W})
#define {macro}_CLASSES {classes}

/* image: ({C}, {H}, {W}) normalised as {dataset.title}'s pixels are:
 * (pixel / 255 - {dataset.mean}) / {dataset.std}.
 * Writes the {classes} logits and returns the predicted class (the first largest logit). */
int {prefix}_predict(const float image[{macro}_INPUT_SIZE], float logits[{macro}_CLASSES]);

/* The same from raw pixels 0..255 ({dataset.title}'s uint8 images). */
int {prefix}_predict_u8(const unsigned char pixels[{macro}_INPUT_SIZE],
{" " * len(prefix)}                float logits[{macro}_CLASSES]);

#endif
"""


def index_type(csr: list) -> type:
    """np.uint16 if every row pointer and column index of the layers' CSR arrays fits in 16
    bits (the smaller tables), else np.uint32."""
    largest = max(int(a.max(initial=0)) for ptr, index, _, _ in csr for a in (ptr, index))
    return np.uint16 if largest < 2**16 else np.uint32


def predict_u8_source(prefix: str, dataset: Dataset) -> str:
    """The C of <prefix>_predict_u8: normalise raw pixels 0..255 as `dataset`'s, then predict."""
    macro = prefix.upper()
    return f"""
int {prefix}_predict_u8(const unsigned char pixels[{macro}_INPUT_SIZE],
{" " * len(prefix)}                float logits[{macro}_CLASSES])
{{
    float image[{macro}_INPUT_SIZE];
    for (int i = 0; i < {macro}_INPUT_SIZE; i++)
        image[i] = ((float)pixels[i] / 255.0f - {c_float(dataset.mean)}) / {c_float(dataset.std)};
    return {prefix}_predict(image, logits);
}}
"""


def generate_c(
    model: Sequential,
    dataset: Dataset = MNIST,
    input_shape: tuple[int, int, int] = (1, 28, 28),
    source: str = "a tinyprune model",
) -> tuple[str, str, int]:
    """-> (C source, header, bytes of the weight arrays) for a model SparseModel accepts."""
    sparse = SparseModel(model, input_shape)
    prefix = re.sub(r"\W", "_", model.name).lower()
    macro = prefix.upper()
    index_dtype = index_type(sparse.csr)
    C, H, W = input_shape
    pad0 = getattr(sparse.stages[0].layer, "padding", 0)
    arrays, weights, buffers, calls = float_layers(sparse, index_dtype, input_shape)
    header = float_header(
        prefix, model.name, source, input_shape, len(sparse.csr[-1][0]) - 1, dataset
    )
    kept = sparse.nonzero
    total = sum(p.value.size for p in model.prunable().values())
    has_conv = isinstance(sparse.stages[0].layer, Conv2d)
    buffer_lines = "\n    ".join(buffers)
    call_lines = "\n    ".join(calls)
    source_text = f"""/* {prefix}.c: {model.name} exported by tinyprune.export_c from {source}.
 * Generated: do not edit. {kept:,} of {total:,} weights kept ({1 - kept / total:.1%} sparse), as
 * CSR: row r's weights are values[ptr[r]..ptr[r+1]-1], at the column (conv: input offset)
 * index[...], float32.
 * {weights:,} bytes of weight arrays. C99; no malloc; includes <stdint.h> only. */
#include <stdint.h>

#include "{prefix}.h"

typedef {C_TYPES[np.dtype(index_dtype)][0]} index_t;
{CONV_POOL if has_conv else ""}{LINEAR}
{"".join(arrays)}
int {prefix}_predict(const float image[{macro}_INPUT_SIZE], float logits[{macro}_CLASSES])
{{
    {buffer_lines}
    for (int c = 0; c < {C}; c++)
        for (int h = 0; h < {H}; h++)
            for (int w = 0; w < {W}; w++)
                input[(c * {H + 2 * pad0} + h + {pad0}) * {W + 2 * pad0} + w + {pad0}] =
                    image[(c * {H} + h) * {W} + w];
    {call_lines}
    int best = 0;
    for (int k = 1; k < {macro}_CLASSES; k++)
        if (logits[k] > logits[best])
            best = k;
    return best;
}}
{predict_u8_source(prefix, dataset)}"""
    return source_text, header, weights


def export_c(
    model: Sequential,
    out_dir: str | Path,
    source: str = "a tinyprune model",
    dataset: Dataset = MNIST,
) -> dict:
    """Write <name>.c and <name>.h into out_dir; -> their paths and sizes in bytes. dataset:
    the one the model was trained on, whose mean and std <name>_predict_u8 normalises with."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    c_text, h_text, weights = generate_c(model, dataset, source=source)
    prefix = re.sub(r"\W", "_", model.name).lower()
    c_path, h_path = out_dir / f"{prefix}.c", out_dir / f"{prefix}.h"
    write_text(h_path, h_text)
    write_text(c_path, c_text)
    return {
        "c": c_path,
        "h": h_path,
        "weight_bytes": weights,
        "c_bytes": c_path.stat().st_size,
        "h_bytes": h_path.stat().st_size,
    }


def load_model(path: Path, model_name: str) -> tuple[Sequential, dict[str, SharedWeight]]:
    """A model from a pruned.npz (Sequential.save, a model_name) or a compressed .tpz of either
    version (it names its own model); -> (model, its shared weights: {} unless the file has
    some)."""
    if path.suffix == ".tpz":
        meta, state, shared = tpz.read(path)
        model_name = meta["model"]
        if model_name not in MODELS:
            raise tpz.CompressedFormatError(
                f"{path} holds a {model_name!r}, which this tinyprune "
                f"does not know ({', '.join(MODELS)})"
            )
        model = MODELS[model_name]()
        model.load_state(state, source=str(path))
        return model, shared
    model = MODELS[model_name]()
    model.load(path)
    return model, {}
