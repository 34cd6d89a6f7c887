"""A graph of int8 tensors and operators as a TensorFlow Lite flatbuffer (.tflite), written with
the `flatbuffers` library alone, by the field slots of TFLite's schema
(tensorflow/compiler/mlir/lite/schema/schema.fbs: file_identifier "TFL3", schema version 3).

    data = flatbuffer([Tensor(...), ...], [Op(...), ...], inputs=[0], outputs=[5])

A table's fields are numbered in the order the schema declares them, from 0 (SLOTS below lists
them up to the last one written); a union takes two slots, its type then its value. A field not
written keeps its default. A tensor's real value is scale * (q - zero_point), per channel
along quantized_dimension when it has several scales.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

try:
    from flatbuffers import Builder
except ImportError:  # an optional dependency: the `export` extra
    Builder = None

SCHEMA_VERSION = 3
# Each table's fields in the schema's order (the slot is the place in the list), and their
# types: a scalar, "string", a vector of scalars "[int]", a table, or a vector of tables.
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
BUILTIN_OPTIONS = {
    "Conv2DOptions": 1,
    "Pool2DOptions": 5,
    "FullyConnectedOptions": 8,
    "ReshapeOptions": 17,
}
# enum BuiltinOperator
CONV_2D, FULLY_CONNECTED, MAX_POOL_2D, RESHAPE, PADV2, QUANTIZE = 3, 9, 17, 22, 60, 114
# enum TensorType
TENSOR_TYPE = {np.dtype(np.uint8): 3, np.dtype(np.int8): 9, np.dtype(np.int32): 2}
VALID = 1  # enum Padding
NONE, RELU = 0, 1  # enum ActivationFunctionType

PREPEND = {  # scalar type -> the Builder's method writing a field of that type
    "byte": "PrependInt8Slot",
    "ubyte": "PrependUint8Slot",
    "int": "PrependInt32Slot",
    "uint": "PrependUint32Slot",
}
VECTOR = {"[int]": np.int32, "[long]": np.int64, "[float]": np.float32}


@dataclass
class Tensor:
    """A tensor: shape (NHWC for images), dtype int8, uint8 or int32, its quantization
    (scale and zero_point: one each, or one per index of quantized_dimension), and its data
    for a constant (weights, biases, shapes), None for an activation."""

    name: str
    shape: tuple[int, ...]
    dtype: type
    scale: list[float] = field(default_factory=list)
    zero_point: list[int] = field(default_factory=list)
    quantized_dimension: int = 0
    data: np.ndarray | None = None


@dataclass
class Op:
    """An operator: its BuiltinOperator code, its input and output tensors (indices), and
    its options table's name and fields, e.g. ("FullyConnectedOptions",
    {"fused_activation_function": RELU})."""

    code: int
    inputs: list[int]
    outputs: list[int]
    options: tuple[str, dict] | None = None


def table(b: Builder, name: str, /, **fields) -> int:
    """Write table `name` of the schema with these fields (by their schema names) -> its
    offset. Vectors and strings go first: a flatbuffer is built back to front, and a table's
    children must be finished before it starts."""
    slots = [f.split(":") for f in SLOTS[name].split()]
    kinds = {field: (slot, kind) for slot, (field, kind) in enumerate(slots)}
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
        if kind in PREPEND:
            getattr(b, PREPEND[kind])(slot, value, 0)
        else:
            b.PrependUOffsetTRelativeSlot(slot, value, 0)
    return b.EndObject()


def write_tensor(b: Builder, t: Tensor, buffer: int) -> int:
    """A Tensor table; buffer: its index in Model.buffers (0, the empty one, if not constant)."""
    quantization = {}
    if t.scale:
        quantization["quantization"] = table(
            b,
            "QuantizationParameters",
            scale=t.scale,
            zero_point=t.zero_point,
            quantized_dimension=t.quantized_dimension,
        )
    dtype = TENSOR_TYPE[np.dtype(t.dtype)]
    return table(b, "Tensor", shape=t.shape, type=dtype, buffer=buffer, name=t.name, **quantization)


def write_operator(b: Builder, op: Op, opcode_index: int) -> int:
    """An Operator table; opcode_index: its code's index in Model.operator_codes."""
    options = {}
    if op.options is not None:
        name, fields = op.options
        options["builtin_options_type"] = BUILTIN_OPTIONS[name]
        options["builtin_options"] = table(b, name, **fields)
    return table(
        b, "Operator", opcode_index=opcode_index, inputs=op.inputs, outputs=op.outputs, **options
    )


def flatbuffer(
    tensors: list[Tensor], ops: list[Op], inputs: list[int], outputs: list[int]
) -> bytes:
    """The model as .tflite bytes: one subgraph of these tensors and operators (in the order
    they run), inputs and outputs the indices of its input and output tensors."""
    if Builder is None:
        raise ImportError("writing .tflite needs flatbuffers: pip install 'tinyprune[export]'")
    b = Builder(1024)
    buffers = [table(b, "Buffer")]  # buffer 0: the empty one every activation points at
    buffer_of = []
    for t in tensors:
        buffer_of.append(0 if t.data is None else len(buffers))
        if t.data is not None:
            little_endian = np.ascontiguousarray(t.data, t.data.dtype.newbyteorder("<"))
            buffers.append(table(b, "Buffer", data=little_endian.tobytes()))
    codes = sorted({op.code for op in ops})
    subgraph = table(
        b,
        "SubGraph",
        tensors=[write_tensor(b, t, i) for t, i in zip(tensors, buffer_of)],
        inputs=inputs,
        outputs=outputs,
        operators=[write_operator(b, op, codes.index(op.code)) for op in ops],
        name="main",
    )
    # deprecated_builtin_code: the code again, for readers from before builtin_code (< 127)
    operator_codes = [
        table(b, "OperatorCode", deprecated_builtin_code=c, version=1, builtin_code=c)
        for c in codes
    ]
    model = table(
        b,
        "Model",
        version=SCHEMA_VERSION,
        operator_codes=operator_codes,
        subgraphs=[subgraph],
        description="tinyprune",
        buffers=buffers,
    )
    b.Finish(model, file_identifier=b"TFL3")
    return bytes(b.Output())
