"""An Int8Model (deploy/int8_model.py) as a TensorFlow Lite flatbuffer, written with the
`flatbuffers` library alone, by the field slots of TFLite's schema (schema.fbs, file identifier
"TFL3", schema version 3); docs/tflite.md says what the file holds.

    write(int8_model, "lenet5.tflite")      # or any graph of int8 tensors and operators:
    g = Graph(); x = g.tensor("x", (1, 4), np.int8, [0.5], [-3])   # scale 0.5, zero point -3
    y = g.op(FULLY_CONNECTED, [x, w, b], Tensor("y", (1, 2), np.int8, [0.7], [5]))
    data = flatbuffer(g, inputs=[x], outputs=[y])                # the .tflite bytes

A tensor's real value is scale * (q - zero_point), per channel along quantized_dimension if it
has several scales.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from tinyprune.deploy.int8_model import Int8Model, IntStage
from tinyprune.files import atomic_write

try:
    from flatbuffers import Builder
except ImportError:  # an optional dependency: the `export` extra
    Builder = None

# Each table's fields in the schema's order, up to the last one written (a field's slot is its
# place, from 0; a union takes two, its type then its value), and their types: a scalar,
# "string", a vector of scalars "[int]", a table, or a vector of tables.
SLOTS = {
    "Model": "version:uint operator_codes:[table] subgraphs:[table] description:string "
    "buffers:[table]",
    "OperatorCode": "deprecated_builtin_code:byte custom_code:string version:int builtin_code:int",
    "SubGraph": "tensors:[table] inputs:[int] outputs:[int] operators:[table] name:string",
    "Buffer": "data:[ubyte]",
    "Tensor": "shape:[int] type:byte buffer:uint name:string quantization:table",
    "QuantizationParameters": "min:[float] max:[float] scale:[float] zero_point:[long] "
    "details_type:ubyte details:table quantized_dimension:int",
    "Operator": "opcode_index:uint inputs:[int] outputs:[int] builtin_options_type:ubyte "
    "builtin_options:table",
    "Conv2DOptions": "padding:byte stride_w:int stride_h:int fused_activation_function:byte",
    "Pool2DOptions": "padding:byte stride_w:int stride_h:int filter_width:int "
    "filter_height:int fused_activation_function:byte",
    "FullyConnectedOptions": "fused_activation_function:byte",
    "ReshapeOptions": "new_shape:[int]",
}
# union BuiltinOptions: each options table's place in the union (0 is NONE)
OPTIONS = {"Conv2DOptions": 1, "Pool2DOptions": 5, "FullyConnectedOptions": 8, "ReshapeOptions": 17}
# enum BuiltinOperator
CONV_2D, FULLY_CONNECTED, MAX_POOL_2D, RESHAPE, PADV2, QUANTIZE = 3, 9, 17, 22, 60, 114
# enum TensorType
TENSOR_TYPE = {np.dtype(np.uint8): 3, np.dtype(np.int8): 9, np.dtype(np.int32): 2}
VALID, NONE, RELU = 1, 0, 1  # enum Padding; enum ActivationFunctionType
# The schema's scalar types -> the Builder's names for them; vectors of scalars -> NumPy's.
SCALAR = {"byte": "Int8", "ubyte": "Uint8", "int": "Int32", "uint": "Uint32"}
VECTOR = {"[int]": np.int32, "[long]": np.int64, "[float]": np.float32}


@dataclass
class Tensor:
    """A tensor: shape (NHWC for images), dtype int8, uint8 or int32, quantization (one scale
    and zero point, or one per index of quantized_dimension), data if constant."""

    name: str
    shape: tuple[int, ...]
    dtype: type
    scale: list[float] = field(default_factory=list)
    zero_point: list[int] = field(default_factory=list)
    quantized_dimension: int = 0
    data: np.ndarray | None = None


Op = tuple[int, list[int], list[int], tuple[str, dict] | None]  # see Graph


@dataclass
class Graph:
    """Tensors, and operators in the order they run, each (BuiltinOperator code, input tensors,
    output tensors, options), the options a table's name and fields or None, e.g.
    ("FullyConnectedOptions", {"fused_activation_function": RELU})."""

    tensors: list[Tensor] = field(default_factory=list)
    ops: list[Op] = field(default_factory=list)

    def tensor(self, *args, **kwargs) -> int:
        """Add Tensor(*args, **kwargs) -> its index."""
        self.tensors.append(Tensor(*args, **kwargs))
        return len(self.tensors) - 1

    def op(self, code: int, inputs: list[int], output: Tensor, options=None) -> int:
        """Add an operator writing one new tensor, output -> the output's index."""
        self.tensors.append(output)
        self.ops.append((code, inputs, [len(self.tensors) - 1], options))
        return len(self.tensors) - 1


def table(b: Builder, name: str, /, **fields) -> int:
    """Write table `name` of the schema with these fields (by their schema names) -> its
    offset. Vectors and strings go first: a flatbuffer is built back to front, and a table's
    children must be finished before it starts."""
    slots = [f.split(":") for f in SLOTS[name].split()]
    kinds = {key: (slot, kind) for slot, (key, kind) in enumerate(slots)}
    values = {}
    for field_name, value in fields.items():
        kind = kinds[field_name][1]
        if kind == "string":
            value = b.CreateString(value)
        elif kind in VECTOR:
            value = b.CreateNumpyVector(np.asarray(value, VECTOR[kind]))
        elif kind == "[table]":
            b.StartVector(4, len(value), 4)
            for offset in reversed(value):
                b.PrependUOffsetTRelative(offset)
            value = b.EndVector()
        elif kind == "[ubyte]":  # Buffer.data: force_align 16, so the data starts aligned
            b.Prep(16, len(value))
            value = b.CreateByteVector(value)
        values[field_name] = value
    b.StartObject(len(slots))
    for field_name, value in values.items():
        slot, kind = kinds[field_name]
        if kind in SCALAR:
            getattr(b, f"Prepend{SCALAR[kind]}Slot")(slot, value, 0)
        else:
            b.PrependUOffsetTRelativeSlot(slot, value, 0)
    return b.EndObject()


def write_tensor(b: Builder, t: Tensor, buffer: int) -> int:
    """A Tensor table; buffer: its index in Model.buffers (0, the empty one, if not constant)."""
    fields = dict(shape=t.shape, type=TENSOR_TYPE[np.dtype(t.dtype)], buffer=buffer, name=t.name)
    if t.scale:
        q = dict(scale=t.scale, zero_point=t.zero_point, quantized_dimension=t.quantized_dimension)
        fields["quantization"] = table(b, "QuantizationParameters", **q)
    return table(b, "Tensor", **fields)


def write_operator(b: Builder, op: Op, opcode_index: int) -> int:
    """An Operator table; opcode_index: its code's index in Model.operator_codes."""
    _, inputs, outputs, options = op
    fields = dict(opcode_index=opcode_index, inputs=inputs, outputs=outputs)
    if options is not None:
        fields["builtin_options_type"] = OPTIONS[options[0]]
        fields["builtin_options"] = table(b, options[0], **options[1])
    return table(b, "Operator", **fields)


def flatbuffer(g: Graph, inputs: list[int], outputs: list[int]) -> bytes:
    """The graph as .tflite bytes: one subgraph, inputs and outputs the indices of its input
    and output tensors."""
    if Builder is None:
        raise ImportError("writing .tflite needs flatbuffers: pip install -e '.[export]'")
    b = Builder(1024)
    buffers = [table(b, "Buffer")]  # buffer 0: the empty one every activation points at
    buffer_of = []
    for t in g.tensors:
        buffer_of.append(0 if t.data is None else len(buffers))
        if t.data is not None:
            data = np.asarray(t.data, np.dtype(t.dtype).newbyteorder("<"))  # little-endian
            if not np.array_equal(data, t.data):
                raise ValueError(f"tensor {t.name!r}: its values do not fit {np.dtype(t.dtype)}")
            buffers.append(table(b, "Buffer", data=data.tobytes()))
    codes = sorted({op[0] for op in g.ops})
    tensors = [write_tensor(b, t, i) for t, i in zip(g.tensors, buffer_of)]
    ops = [write_operator(b, op, codes.index(op[0])) for op in g.ops]
    subgraph = table(b, "SubGraph", tensors=tensors, inputs=inputs, outputs=outputs, operators=ops)
    # deprecated_builtin_code: the code again, for readers older than builtin_code (all < 127)
    code_tables = [
        table(b, "OperatorCode", deprecated_builtin_code=c, version=1, builtin_code=c)
        for c in codes
    ]
    model = dict(version=3, operator_codes=code_tables, subgraphs=[subgraph])  # schema 3
    b.Finish(table(b, "Model", **model, buffers=buffers), file_identifier=b"TFL3")
    return bytes(b.Output())


def activation(name: str, shape: tuple[int, ...], scale: float, zero: int) -> Tensor:
    return Tensor(name, shape, np.int8, [scale], [zero])


def int8_model_graph(model: Int8Model, height: int = 28, width: int = 28) -> Graph:
    """The Int8Model as TFLite operators, batch 1 (a reader may resize it): uint8 pixels
    (1, H, W, 1) -> QUANTIZE -> int8 pixel - 128, then per conv stage [PADV2] CONV_2D (ReLU
    fused) MAX_POOL_2D, a RESHAPE, per linear stage FULLY_CONNECTED (ReLU fused) -> int8
    scores (1, classes)."""
    g = Graph()
    shape: tuple[int, ...] = (1, height, width, 1)
    pixels = g.tensor("pixels", shape, np.uint8, [1.0], [0])
    x = g.op(QUANTIZE, [pixels], activation("pixels - 128", shape, 1.0, -128))
    # TFLite reads q = pixel - 128 as the pixel, 1 (q + 128); the reference as the normalised
    # pixel, input_scale (q - input_zero). Past the first stage the two agree.
    s_in, z_in, s_ref = 1.0, -128, float(model.input_scale)
    for stage in model.stages:
        weight = stage.weight
        if stage.is_conv:
            weight = weight.transpose(0, 2, 3, 1)  # (F, C, K, K) -> TFLite's (F, K, K, C)
            if stage.pad:  # PADV2 with the reference's real 0, its input zero point
                p, value = stage.pad, np.int8(stage.in_zero)
                paddings = np.array([[0, 0], [p, p], [p, p], [0, 0]])
                shape = (1, shape[1] + 2 * p, shape[2] + 2 * p, shape[3])
                inputs = [x, g.tensor(f"{stage.name}.paddings", (4, 2), np.int32, data=paddings)]
                inputs += [g.tensor(f"{stage.name}.pad", (), np.int8, [s_in], [z_in], data=value)]
                x = g.op(PADV2, inputs, activation(f"{stage.name}.padded", shape, s_in, z_in))
        elif len(shape) == 4:  # the flatten: ours is (C, H, W), TFLite's (H, W, C)
            _, H, W, C = shape
            weight = weight.reshape(-1, C, H, W).transpose(0, 2, 3, 1).reshape(len(weight), -1)
            shape = (1, H * W * C)
            new_shape = g.tensor("flat.shape", (2,), np.int32, data=np.array([-1, H * W * C]))
            options = ("ReshapeOptions", {"new_shape": [-1, H * W * C]})
            x = g.op(RESHAPE, [x, new_shape], activation("flat", shape, s_in, z_in), options)
        # The normalisation, folded in: filter scales times s_ref / s_in keep the bias's scale
        # s_in s_w; TFLite subtracts z_in from each input, the bias the rest of in_zero.
        s_w = stage.weight_scale * np.float32(s_ref / s_in)
        rows = weight.reshape(len(weight), -1).astype(np.int64)
        bias = stage.bias + (z_in - stage.in_zero) * rows.sum(axis=1)
        x, shape = layer(g, x, shape, stage, weight, s_w, bias, s_in)
        s_in = s_ref = float(stage.out_scale)
        z_in = stage.zero
    return g


def layer(g: Graph, x: int, shape, stage: IntStage, weight, s_w, bias, s_in: float):
    """CONV_2D and MAX_POOL_2D, or FULLY_CONNECTED: int8 weight (F, K, K, C) or (F, inputs)
    with scales s_w (F,), int32 bias (F,) at scales s_in s_w -> (output tensor, its shape)."""
    F = len(weight)
    w = g.tensor(f"{stage.name}.weight", weight.shape, np.int8, list(s_w), [0] * F, 0, weight)
    b = g.tensor(f"{stage.name}.bias", (F,), np.int32, list(s_in * s_w), [0] * F, 0, bias)
    relu = {"fused_activation_function": RELU if stage.lo > -128 else NONE}
    K = weight.shape[1] if stage.is_conv else 0
    shape = (1, shape[1] - K + 1, shape[2] - K + 1, F) if stage.is_conv else (1, F)
    y = activation(stage.name, shape, float(stage.out_scale), stage.zero)
    if not stage.is_conv:
        return g.op(FULLY_CONNECTED, [x, w, b], y, ("FullyConnectedOptions", relu)), shape
    options = {"padding": VALID, "stride_w": 1, "stride_h": 1, **relu}
    x = g.op(CONV_2D, [x, w, b], y, ("Conv2DOptions", options))
    shape = (1, shape[1] // 2, shape[2] // 2, F)
    pool = {"padding": VALID, "stride_w": 2, "stride_h": 2, "filter_width": 2, "filter_height": 2}
    y = activation(f"{stage.name}.pool", shape, float(stage.out_scale), stage.zero)
    return g.op(MAX_POOL_2D, [x], y, ("Pool2DOptions", pool)), shape


def write(model: Int8Model, path: str | Path) -> int:
    """Write the Int8Model to path as a .tflite file, atomically -> its size in bytes."""
    g = int8_model_graph(model)
    with atomic_write(path) as tmp:
        tmp.write_bytes(flatbuffer(g, [0], [len(g.tensors) - 1]))
    return Path(path).stat().st_size
