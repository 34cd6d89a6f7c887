"""Export a pruned model as one dependency-free C99 source file and its header, in float32 or in
integers only (an Int8Model, TFLite's int8 arithmetic, equal to its NumPy reference bit for bit).

    export_c(model, out_dir)        -> out_dir/lenet5.c, .h, _main.c (named after the model):
        int lenet5_predict(const float image[LENET5_INPUT_SIZE], float logits[LENET5_CLASSES]);
        int lenet5_predict_u8(const unsigned char pixels[LENET5_INPUT_SIZE], float logits[...]);
    export_c_int8(q, out_dir)       -> out_dir/lenet5_int8.c, .h, _main.c (or lenet5_shared):
        int lenet5_int8_predict(const uint8_t pixels[...], int8_t logits[LENET5_INT8_CLASSES]);

Each returns the predicted class (the first largest logit). `image` is normalised as
data/transforms.py's to_input does; `pixels` are the raw 0..255 pixels. The kernels are C, in
c_kernels.c, which both exports copy in; this module writes only the model's arrays, one
`layer_t` per layer and the predict function's calls, and fills in c_header.h (the API: input,
output, the stack a call takes) and c_example.c (<prefix>_main.c: one image, one call). Per layer:

    ptr, gap   where the kept weights are: row r's entries are ptr[r] .. ptr[r+1]-1, and each
               entry's gap (one byte) moves the input pointer on from the previous entry (or
               the row's start); a gap of 255 is a jump with no weight, so longer gaps cost a
               byte per 255 columns. For a conv a row is an output channel and the "column" is
               the tap's offset c*Hp*Wp + kh*Wp + kw in the padded input.
    weights    one value per kept weight (float32, or int8); or, shared, the int8 codebook
               (<= 2^b values) and one b-bit index per kept weight, packed (nothing expanded)
    bias       float32; int8: int32, the input's zero point folded in (bias - z_in * sum of the
               row's weights), and each output channel's requantisation (mult int32, shift int8)

An int8 layer (not shared) whose every weight takes fewer bytes than its gap stream is stored
dense instead: no ptr or gap, every weight, each row padded with zeros to a multiple of 4 (a
conv's row is C*K*K), which the C multiplies four at a time (SMLAD on the DSP extension).

No malloc, no globals written, only <stdint.h> included: activations live on the stack, a conv
block computed two conv rows at a time and pooled at once, so predict is re-entrant. Compiles
cleanly with gcc -std=c99 -Wall -Wextra -Werror. A sparse int8 conv: <= 65,536 input values.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from string import Template
from textwrap import fill

import numpy as np

from tinyprune.data.datasets import MNIST, Dataset
from tinyprune.deploy import tpz
from tinyprune.deploy.int8_model import Int8Model
from tinyprune.deploy.sparse_model import sparse_stages
from tinyprune.deploy.weight_sharing import SharedWeight
from tinyprune.files import write_text
from tinyprune.nn import model as nn_model
from tinyprune.nn.layers import Conv2d
from tinyprune.nn.model import Sequential

SKIP = 255  # a gap byte that only moves the input pointer on, with no weight
KERNELS = Path(__file__).with_name("c_kernels.c")  # the C functions every export shares
HEADER = Path(__file__).with_name("c_header.h")  # the header: its API comment, to fill in
EXAMPLE = Path(__file__).with_name("c_example.c")  # <prefix>_main.c: one image, one call
C_TYPES = {
    np.dtype(np.float32): ("float", 4),
    np.dtype(np.int8): ("int8_t", 1),
    np.dtype(np.uint16): ("uint16_t", 2),
    np.dtype(np.uint32): ("uint32_t", 4),
    np.dtype(np.int32): ("int32_t", 4),
    np.dtype(np.uint8): ("uint8_t", 1),
}


@dataclass
class CLayer:
    """What the C holds for one layer. kept: bool like the weight; arrays: (suffix, values) of
    its weights (in the order of the kept weights, row-major; dense: every weight, each row
    padded with zeros to a multiple of 4), bias and the rest; init: the fields of its layer_t
    after ptr and gap."""

    name: str
    kept: np.ndarray
    pad: int
    arrays: list[tuple[str, np.ndarray]]
    init: str
    dense: bool = False

    @property
    def is_conv(self) -> bool:
        return self.kept.ndim == 4


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


def float_layers(model: Sequential) -> list[CLayer]:
    """The float32 model's layers: its non-zero weights, its biases, its ReLUs."""
    layers = []
    for stage in sparse_stages(model):
        w, b = stage.layer.weight.value, stage.layer.bias.value
        pad = stage.layer.padding if isinstance(stage.layer, Conv2d) else 0
        arrays = [("values", w[w != 0].astype(np.float32)), ("bias", b.astype(np.float32))]
        n = stage.name
        layers.append(CLayer(n, w != 0, pad, arrays, f"{{{n}_values}}, {n}_bias, {stage.relu:d}"))
    return layers


def int8_layers(q: Int8Model) -> list[CLayer]:
    """The integer model's layers (see the module's docstring)."""
    layers = []
    for s in q.stages:
        n = s.name
        # the input's zero point folded into the bias: sum w (a - z) = sum w a - z sum w
        bias = s.bias - s.in_zero * s.weight.reshape(len(s.weight), -1).sum(axis=1)
        dense = s.codebook is None and dense_is_smaller(s.kept)
        if dense:
            arrays, weights = [("values", dense_rows(s.weight))], f"{{{n}_values}}"
        elif s.codebook is None:
            arrays, weights = [("values", s.weight[s.kept])], f"{{{n}_values}}"
        else:
            assert s.index is not None
            bits = max(1, int(np.ceil(np.log2(len(s.codebook)))))
            arrays = [("codebook", s.codebook), ("index", pack_indices(s.index[s.kept], bits))]
            weights = f"{{{n}_codebook, {n}_index, {bits}}}"
        arrays += [
            ("bias", bias.astype(np.int32)),
            ("mult", s.mult.astype(np.int32)),
            ("shift", s.shift.astype(np.int8)),
        ]
        init = f"{weights}, {n}_bias, {n}_mult, {n}_shift, {s.zero}, {s.lo}"
        layers.append(CLayer(n, s.kept, s.pad, arrays, init, dense))
    return layers


def dense_rows(weight: np.ndarray) -> np.ndarray:
    """weight (R, ...) int8 -> its rows, each padded with zeros to a multiple of 4, flat."""
    rows = weight.reshape(len(weight), -1)
    return np.pad(rows, ((0, 0), (0, -rows.shape[1] % 4))).ravel()


def dense_is_smaller(kept: np.ndarray) -> bool:
    """Whether every weight (rows padded to a multiple of 4) takes fewer bytes than the kept
    ones with their gap stream (at least a gap byte each and a ptr entry per row). A linear
    layer's input must be a multiple of 4 long too: the C reads it four at a time."""
    rows = kept.reshape(len(kept), -1)
    if kept.ndim == 2 and rows.shape[1] % 4:
        return False
    return rows.shape[0] * -(-rows.shape[1] // 4) * 4 <= 2 * int(kept.sum()) + 2 * len(rows)


def output_shape(layer: CLayer, shape: tuple[int, int, int]) -> tuple[int, int, int]:
    """(C, H, W) in -> (F, H', W') out: conv (padded), then 2x2 pool; a linear layer: (R, 1, 1)."""
    if not layer.is_conv:
        return len(layer.kept), 1, 1
    K, (_, H, W) = layer.kept.shape[2], shape
    return len(layer.kept), (H + 2 * layer.pad - K + 1) // 2, (W + 2 * layer.pad - K + 1) // 2


def gap_stream(layer: CLayer, shape: tuple[int, int, int]) -> tuple[np.ndarray, np.ndarray]:
    """The layer's kept weights, row by row, as a gap stream (ptr, gap) over its input of shape
    (C, H, W) (a conv's columns: offsets in the padded input)."""
    rows = len(layer.kept)
    r, cols = np.nonzero(layer.kept.reshape(rows, -1))
    ptr = np.zeros(rows + 1, np.int64)
    np.cumsum(np.bincount(r, minlength=rows), out=ptr[1:])
    if layer.is_conv:
        C, H, W = shape
        K = layer.kept.shape[2]
        c, kh, kw = np.unravel_index(cols, (C, K, K))
        cols = c * (H + 2 * layer.pad) * (W + 2 * layer.pad) + kh * (W + 2 * layer.pad) + kw
    return gap_encode(ptr, cols)


def layer_arrays(layers: list[CLayer], input_shape: tuple[int, int, int]) -> tuple[str, int, str]:
    """-> (the C definitions of every layer's arrays and layer_t, their bytes, ptr's C type)."""
    streams, shape = [], input_shape
    for layer in layers:
        streams.append(None if layer.dense else gap_stream(layer, shape))
        shape = output_shape(layer, shape)
    big = max([int(s[0][-1]) for s in streams if s is not None], default=0)
    ptr_dtype = np.dtype(np.uint16 if big < 2**16 else np.uint32)
    texts, size = [], 0
    for layer, stream in zip(layers, streams):
        n = layer.name
        where = [] if stream is None else [("ptr", stream[0].astype(ptr_dtype)), ("gap", stream[1])]
        for suffix, array in [*where, *layer.arrays]:
            text, nbytes = c_array(f"{n}_{suffix}", array)
            texts.append(text)
            size += nbytes
        ptr_gap = "0, 0" if stream is None else f"{n}_ptr, {n}_gap"
        texts.append(f"static const layer_t {n} = {{{ptr_gap}, {layer.init}}};\n")
    return "".join(texts), size, C_TYPES[ptr_dtype][0]


def predict_body(layers: list[CLayer], shape: tuple[int, int, int], act: str) -> list[str]:
    """-> predict's statements after the input's: the buffers and a call per layer; the input
    (C, Hp, Wp) is already in `input`, padded for the first layer."""
    lines, current, room, col, best, accs, taps = [], "input", 0, 0, 0, 0, 0
    C, H, W = shape
    for i, layer in enumerate(layers):
        F, Hq, Wq = output_shape(layer, shape)
        out = "logits" if i + 1 == len(layers) else f"{layer.name}_out"
        if layer.is_conv:
            K, p = layer.kept.shape[2], layer.pad
            nxt = layers[i + 1] if i + 1 < len(layers) else None
            opad = nxt.pad if nxt is not None and nxt.is_conv else 0
            shape_out = (F, Hq + 2 * opad, Wq + 2 * opad)
            lines.append(f"{act} {out}[{int(np.prod(shape_out))}];  /* {shape_out} */")
            args = f"{H + 2 * p}, {W + 2 * p}, {K}, {F}, &{layer.name}, {opad}"
            if layer.dense:
                col, best = max(col, -(-C * K * K // 4) * 4), max(best, F)
                accs = max(accs, F)
                lines.append(f"conv_pool_dense({current}, {C}, {args}, col, acc, largest, {out});")
            else:
                wo = W + 2 * p - K + 1  # float: two conv rows; int8: one row, pooled
                room = max(room, 2 * wo if act == "float" else wo // 2)
                taps = max(taps, int(layer.kept.reshape(F, -1).sum(axis=1).max()), 1)
                if act == "int8_t" and C * (H + 2 * p) * (W + 2 * p) > 2**16:  # 16-bit offsets
                    raise ValueError(
                        f"{layer.name}: a sparse int8 conv reads at most 65,536 inputs; use float32"
                    )
                lines.append(f"conv_pool({current}, {args}, rows, taps, {out});")
        else:
            if out != "logits":
                lines.append(f"{act} {out}[{F}];")
            if layer.dense:
                accs = max(accs, F)
                lines.append(
                    f"linear_dense({current}, {C * H * W}, {F}, &{layer.name}, acc, {out});"
                )
            else:
                lines.append(f"linear({current}, {F}, &{layer.name}, {out});")
        current, shape = out, (F, Hq, Wq)
        C, H, W = shape
    acc = "int32_t" if act == "int8_t" else "float"
    if room:
        lines.insert(0, f"{acc} rows[{room}];  /* pooled conv outputs (float: two rows first) */")
        lines.insert(0, f"{'int32_t' if act == 'int8_t' else 'tap_t'} taps[{taps}];")
    if accs:
        lines.insert(0, f"{acc} acc[{accs}];  /* a dense layer's accumulators */")
    if col:
        lines.insert(0, f"{acc} largest[{best}];  /* each channel's largest conv output so far */")
        lines.insert(0, f"{act} col[{col}];  /* the taps of one conv output */")
    return lines


def input_lines(shape: tuple[int, int, int], pad: int, act: str, zero: int) -> list[str]:
    """-> predict's first statements: the input, padded, from `pixels` (int8: pixel - 128,
    border: the zero point) or `image` (float: as it is, border 0)."""
    C, H, W = shape
    Hp, Wp = H + 2 * pad, W + 2 * pad
    value = "(int8_t)(pixels[i] - 128)" if act == "int8_t" else "image[i]"
    return [
        f"{act} input[{C * Hp * Wp}];  /* ({C}, {Hp}, {Wp}), in a border of {pad} real zeros */",
        f"for (int j = 0; j < {C * Hp * Wp}; j++) input[j] = {zero};",
        f"for (int c = 0; c < {C}; c++) for (int h = 0; h < {H}; h++) "
        f"for (int w = 0; w < {W}; w++) {{\n        const int i = (c * {H} + h) * {W} + w;\n"
        f"        input[(c * {Hp} + h + {pad}) * {Wp} + w + {pad}] = {value};\n    }}",
    ]


def c_source(
    prefix: str, about: str, layers: list[CLayer], signature: str, body: list[str], int8: bool
) -> tuple[str, int]:
    """-> (the .c file: the kernels, the arrays, predict; the bytes of the arrays)."""
    arrays, size, ptr_type = layer_arrays(layers, (1, 28, 28))
    shared = any(suffix == "codebook" for layer in layers for suffix, _ in layer.arrays)
    kinds = {("CONV" if layer.is_conv else "LINEAR", layer.dense) for layer in layers}
    defines = [
        *(["#define INT8_MODEL"] if int8 else []),
        *(["#define SHARED_WEIGHTS"] if shared else []),
        *(f"#define {kind}_{'DENSE' if dense else 'GAPS'}" for kind, dense in sorted(kinds)),
    ]
    statements = "\n    ".join(body)
    text = f"""/* {prefix}.c: {about}
 * {size:,} bytes of weight arrays. Generated: do not edit. C99; no malloc; <stdint.h> only. */
#include <stdint.h>

#include "{prefix}.h"

typedef {ptr_type} ptr_t;
#define SKIP {SKIP}
{chr(10).join(defines)}

{KERNELS.read_text()}
{arrays}
{signature}
{{
    {statements}
    int best = 0;
    for (int k = 1; k < {len(layers[-1].kept)}; k++)
        if (logits[k] > logits[best])
            best = k;
    return best;
}}
"""
    return text, size


def stack_bytes(statements: list[str]) -> int:
    """The bytes of the arrays these C statements declare: predict's buffers, on the stack."""
    found = re.findall(r"^(float|int32_t|int8_t|tap_t) \w+\[(\d+)\];", "\n".join(statements), re.M)
    return sum({"int8_t": 1, "tap_t": 8}.get(ctype, 4) * int(n) for ctype, n in found)


def api_files(prefix: str, about: str, size: int, classes: int, api: dict) -> tuple[str, str]:
    """-> (header, <prefix>_main.c): c_header.h and c_example.c, their ${fields} filled in."""
    fields = dict(api, prefix=prefix, MACRO=prefix.upper(), weight_bytes=size, classes=classes)
    fields["about"] = fill(f"/* {prefix}.h: {about}", 99, subsequent_indent=" * ")
    for key in ("input", "output"):  # wrapped as the lines of " * Input:  ..." in c_header.h
        fields[key] = fill(" " * 11 + api[key], 99, subsequent_indent=" *" + " " * 9)[11:]
    header, example = (Template(path.read_text()).substitute(fields) for path in (HEADER, EXAMPLE))
    return header, example


def generate_c(
    model: Sequential, dataset: Dataset = MNIST, source: str = "a tinyprune model"
) -> tuple[str, str, str, int]:
    """-> (C source, header, example, bytes of the weight arrays) of the float32 model."""
    prefix = re.sub(r"\W", "_", model.name).lower()
    macro, layers = prefix.upper(), float_layers(model)
    kept = sum(int(layer.kept.sum()) for layer in layers)
    signature = (
        f"int {prefix}_predict(const float image[{macro}_INPUT_SIZE], "
        f"float logits[{macro}_CLASSES])"
    )
    u8 = (
        f"int {prefix}_predict_u8(const unsigned char pixels[{macro}_INPUT_SIZE], "
        f"float logits[{macro}_CLASSES])"
    )
    body = input_lines((1, 28, 28), layers[0].pad, "float", 0) + predict_body(
        layers, (1, 28, 28), "float"
    )
    about = f"{model.name} in float32, exported by tinyprune from {source}; {kept:,} weights kept."
    text, size = c_source(prefix, about, layers, signature, body, int8=False)
    text += f"""
{u8}
{{
    float image[{macro}_INPUT_SIZE];
    for (int i = 0; i < {macro}_INPUT_SIZE; i++)
        image[i] = ((float)pixels[i] / 255.0f - {c_float(dataset.mean)}) / {c_float(dataset.std)};
    return {prefix}_predict(image, logits);
}}
"""
    api = {
        "input": f"pixels: unsigned char[{macro}_INPUT_SIZE] for {prefix}_predict_u8, raw 0 "
        f"(background) .. 255 (ink), as {dataset.title}'s files hold them; or image: float"
        f"[{macro}_INPUT_SIZE] for {prefix}_predict, normalised: (pixel / 255 - "
        f"{dataset.mean}) / {dataset.std}.",
        "output": f"logits: float[{macro}_CLASSES], one score per class (before any softmax).",
        "declarations": f"{signature};\n\n/* From raw pixels: the same, after normalising them "
        f"(its float image is in\n * {macro}_SCRATCH_BYTES). */\n{u8};\n",
        # predict_u8's float image, then predict's buffers
        "scratch": str(stack_bytes(body) + 4 * 28 * 28),
        "predict": f"{prefix}_predict_u8",
        "logit_t": "float",
    }
    return text, *api_files(prefix, about, size, len(layers[-1].kept), api), size


def c_prefix(q: Int8Model) -> str:
    """The file and function prefix of the export: 'lenet5_int8' or 'lenet5_shared'."""
    shared = any(stage.codebook is not None for stage in q.stages)
    return re.sub(r"\W", "_", q.name).lower() + ("_shared" if shared else "_int8")


def generate_c_int8(q: Int8Model, source: str = "a tinyprune model") -> tuple[str, str, str, int]:
    """-> (C source, header, example, bytes of the weight arrays) of the integer-only model."""
    prefix, layers = c_prefix(q), int8_layers(q)
    macro = prefix.upper()
    kept = sum(int(layer.kept.sum()) for layer in layers)
    signature = (
        f"int {prefix}_predict(const uint8_t pixels[{macro}_INPUT_SIZE], "
        f"int8_t logits[{macro}_CLASSES])"
    )
    body = input_lines((1, 28, 28), layers[0].pad, "int8_t", q.input_zero) + predict_body(
        layers, (1, 28, 28), "int8_t"
    )
    about = (
        f"{q.name} in integers only (TFLite's int8 arithmetic, equal bit for bit to "
        f"tinyprune.deploy.int8_model.Int8Model), exported by tinyprune from {source}; "
        f"{kept:,} weights kept."
    )
    text, size = c_source(prefix, about, layers, signature, body, int8=True)
    api = {
        "input": f"pixels: uint8_t[{macro}_INPUT_SIZE], raw 0 (background) .. 255 (ink), as the "
        f"data set's files hold them (the normalisation is inside the model).",
        "output": f"logits: int8_t[{macro}_CLASSES], one score per class, quantised: the real "
        f"logit is about {q.output_scale:.6g} * (logit - ({q.output_zero})).",
        "declarations": f"{signature};\n",
        "scratch": str(stack_bytes(body)),
        "predict": f"{prefix}_predict",
        "logit_t": "int8_t",
    }
    return text, *api_files(prefix, about, size, len(layers[-1].kept), api), size


def write_export(prefix: str, out_dir: str | Path, texts: tuple[str, str, str, int]) -> dict:
    """Write <prefix>.c, .h and the example <prefix>_main.c into out_dir; -> their paths
    ("c", "h", "main") and sizes, the weight arrays' bytes and the prefix."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    ends = {"c": ".c", "h": ".h", "main": "_main.c"}
    written: dict = {key: out_dir / f"{prefix}{end}" for key, end in ends.items()}
    for path, text in zip(written.values(), texts[:3]):
        write_text(path, text)
    sizes = {f"{key}_bytes": written[key].stat().st_size for key in ("c", "h")}
    return {**written, **sizes, "weight_bytes": texts[3], "prefix": prefix}


def export_c(
    model: Sequential,
    out_dir: str | Path,
    source: str = "a tinyprune model",
    dataset: Dataset = MNIST,
) -> dict:
    """Write <name>.c, <name>.h and <name>_main.c, float32, into out_dir; -> write_export's
    dict. dataset: the one the model was trained on, whose mean and std <name>_predict_u8
    normalises with."""
    prefix = re.sub(r"\W", "_", model.name).lower()
    return write_export(prefix, out_dir, generate_c(model, dataset, source))


def export_c_int8(q: Int8Model, out_dir: str | Path, source: str = "a tinyprune model") -> dict:
    """Write <prefix>.c, .h and _main.c of the integer model into out_dir; -> write_export's
    dict."""
    return write_export(c_prefix(q), out_dir, generate_c_int8(q, source))


def load_model(path: Path, model_name: str) -> tuple[Sequential, dict[str, SharedWeight]]:
    """A model from a pruned.npz (Sequential.save, a model_name) or a .tpz of either version
    (it names its own model), at the widths its arrays have; -> (model, its shared weights:
    {} unless the file has some)."""
    if path.suffix != ".tpz":
        return nn_model.load_model(path, model_name), {}
    meta, state, shared = tpz.read(path)
    try:
        model = nn_model.model_for(meta["model"], state)
    except ValueError as error:
        raise tpz.CompressedFormatError(f"{path}: {error}") from None
    model.load_state(state, source=str(path))
    return model, shared
