"""A graph of int8 tensors and operators as a TensorFlow Lite flatbuffer (.tflite), written with
the `flatbuffers` library alone, by the field slots of TFLite's schema
(tensorflow/compiler/mlir/lite/schema/schema.fbs, file_identifier "TFL3", schema version 3).

    data = flatbuffer([Tensor(...), ...], [Op(...), ...], inputs=[0], outputs=[5])

A table's fields are numbered in the order the schema declares them, from 0; a union field
takes two slots, its type then its value. Only the tables and slots written here are listed;
every other field keeps its default. A tensor's real value is scale * (q - zero_point), per
channel along quantized_dimension when it has several scales.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

try:
    from flatbuffers import Builder
except ImportError:  # an optional dependency: the `export` extra
    Builder = None

SCHEMA_VERSION = 3
# enum TensorType
UINT8, INT8, INT32 = 3, 9, 2
TENSOR_TYPE = {np.dtype(np.uint8): UINT8, np.dtype(np.int8): INT8, np.dtype(np.int32): INT32}
# enum BuiltinOperator
CONV_2D, FULLY_CONNECTED, MAX_POOL_2D, RESHAPE, PADV2, QUANTIZE = 3, 9, 17, 22, 60, 114
# union BuiltinOptions: the index of each options table in the union (NONE = 0)
CONV_2D_OPTIONS, POOL_2D_OPTIONS, FULLY_CONNECTED_OPTIONS, RESHAPE_OPTIONS = 1, 5, 8, 17
# enum Padding, enum ActivationFunctionType
VALID = 1
NONE, RELU = 0, 1


@dataclass
class Tensor:
    """A tensor: shape (NHWC for images), dtype int8, uint8 or int32, its quantization
    (scale and zero_point: one each, or one per index of quantized_dimension), and its data
    for a constant (weights, biases, shapes), None for an activation."""

    name: str
    shape: tuple[int, ...]
    dtype: np.dtype
    scale: list[float] = field(default_factory=list)
    zero_point: list[int] = field(default_factory=list)
    quantized_dimension: int = 0
    data: np.ndarray | None = None


@dataclass
class Op:
    """An operator: its BuiltinOperator code, its input and output tensor indices, and its
    options as (union index, a function writing the options table) or None."""

    code: int
    inputs: list[int]
    outputs: list[int]
    options: tuple[int, Callable[[Builder], int]] | None = None


def conv_options(relu: bool) -> tuple[int, Callable[[Builder], int]]:
    """Conv2DOptions: 0 padding, 1 stride_w, 2 stride_h, 3 fused_activation_function
    (dilations 4, 5 keep their default 1). Padding VALID, stride 1: padding is a PADV2 op."""

    def write(b: Builder) -> int:
        b.StartObject(4)
        b.PrependInt8Slot(0, VALID, 0)
        b.PrependInt32Slot(1, 1, 0)
        b.PrependInt32Slot(2, 1, 0)
        b.PrependInt8Slot(3, RELU if relu else NONE, 0)
        return b.EndObject()

    return CONV_2D_OPTIONS, write


def max_pool_options(size: int) -> tuple[int, Callable[[Builder], int]]:
    """Pool2DOptions: 0 padding, 1 stride_w, 2 stride_h, 3 filter_width, 4 filter_height,
    5 fused_activation_function; a size x size window moved by its size, VALID."""

    def write(b: Builder) -> int:
        b.StartObject(6)
        b.PrependInt8Slot(0, VALID, 0)
        for slot in (1, 2, 3, 4):
            b.PrependInt32Slot(slot, size, 0)
        b.PrependInt8Slot(5, NONE, 0)
        return b.EndObject()

    return POOL_2D_OPTIONS, write


def fully_connected_options(relu: bool) -> tuple[int, Callable[[Builder], int]]:
    """FullyConnectedOptions: 0 fused_activation_function (weights_format and the rest keep
    their defaults: DEFAULT, (rows, inputs) row-major weights)."""

    def write(b: Builder) -> int:
        b.StartObject(1)
        b.PrependInt8Slot(0, RELU if relu else NONE, 0)
        return b.EndObject()

    return FULLY_CONNECTED_OPTIONS, write


def reshape_options(shape: tuple[int, ...]) -> tuple[int, Callable[[Builder], int]]:
    """ReshapeOptions: 0 new_shape (the shape tensor, the op's second input, says it too)."""

    def write(b: Builder) -> int:
        new_shape = b.CreateNumpyVector(np.array(shape, np.int32))
        b.StartObject(1)
        b.PrependUOffsetTRelativeSlot(0, new_shape, 0)
        return b.EndObject()

    return RESHAPE_OPTIONS, write


def vector_of_tables(b: Builder, offsets: list[int]) -> int:
    """A vector of tables already written: [Table] in the schema."""
    b.StartVector(4, len(offsets), 4)
    for offset in reversed(offsets):  # a flatbuffer is built back to front
        b.PrependUOffsetTRelative(offset)
    return b.EndVector()


def ints(b: Builder, values, dtype=np.int32) -> int:
    return b.CreateNumpyVector(np.asarray(values, dtype))


def write_buffer(b: Builder, data: np.ndarray | None) -> int:
    """Buffer: 0 data ([ubyte], force_align 16): the constant's little-endian bytes."""
    blob = None
    if data is not None:
        raw = np.ascontiguousarray(data, data.dtype.newbyteorder("<")).tobytes()
        b.Prep(16, len(raw))  # so that the data starts on a 16-byte boundary
        blob = b.CreateByteVector(raw)
    b.StartObject(1)
    if blob is not None:
        b.PrependUOffsetTRelativeSlot(0, blob, 0)
    return b.EndObject()


def write_quantization(b: Builder, t: Tensor) -> int:
    """QuantizationParameters: 2 scale ([float]), 3 zero_point ([long]), 6 quantized_dimension
    (min 0, max 1 and the union details 4, 5 are left out)."""
    scale, zero = ints(b, t.scale, np.float32), ints(b, t.zero_point, np.int64)
    b.StartObject(7)
    b.PrependUOffsetTRelativeSlot(2, scale, 0)
    b.PrependUOffsetTRelativeSlot(3, zero, 0)
    b.PrependInt32Slot(6, t.quantized_dimension, 0)
    return b.EndObject()


def write_tensor(b: Builder, t: Tensor, buffer: int) -> int:
    """Tensor: 0 shape ([int]), 1 type (TensorType), 2 buffer (index into Model.buffers, 0 for
    none), 3 name, 4 quantization."""
    shape, name = ints(b, t.shape), b.CreateString(t.name)
    quantization = write_quantization(b, t) if t.scale else None
    b.StartObject(5)
    b.PrependUOffsetTRelativeSlot(0, shape, 0)
    b.PrependInt8Slot(1, TENSOR_TYPE[np.dtype(t.dtype)], 0)
    b.PrependUint32Slot(2, buffer, 0)
    b.PrependUOffsetTRelativeSlot(3, name, 0)
    if quantization is not None:
        b.PrependUOffsetTRelativeSlot(4, quantization, 0)
    return b.EndObject()


def write_operator(b: Builder, op: Op, opcode_index: int) -> int:
    """Operator: 0 opcode_index (into Model.operator_codes), 1 inputs, 2 outputs,
    3 builtin_options_type, 4 builtin_options (the union BuiltinOptions)."""
    inputs, outputs = ints(b, op.inputs), ints(b, op.outputs)
    options = None if op.options is None else op.options[1](b)
    b.StartObject(5)
    b.PrependUint32Slot(0, opcode_index, 0)
    b.PrependUOffsetTRelativeSlot(1, inputs, 0)
    b.PrependUOffsetTRelativeSlot(2, outputs, 0)
    if op.options is not None and options is not None:
        b.PrependUint8Slot(3, op.options[0], 0)
        b.PrependUOffsetTRelativeSlot(4, options, 0)
    return b.EndObject()


def write_operator_code(b: Builder, code: int) -> int:
    """OperatorCode: 0 deprecated_builtin_code (byte: the code, for readers older than slot 3;
    ours are all < 127), 2 version (1), 3 builtin_code (int)."""
    b.StartObject(4)
    b.PrependInt8Slot(0, code, 0)
    b.PrependInt32Slot(2, 1, 1)
    b.PrependInt32Slot(3, code, 0)
    return b.EndObject()


def flatbuffer(
    tensors: list[Tensor], ops: list[Op], inputs: list[int], outputs: list[int]
) -> bytes:
    """The model as .tflite bytes: one subgraph of these tensors and operators (in the order
    they run), inputs and outputs the indices of its input and output tensors."""
    if Builder is None:
        raise ImportError("writing .tflite needs flatbuffers: pip install 'tinyprune[export]'")
    b = Builder(1024)
    # Buffer 0 is the empty sentinel every activation points at; constants get one each.
    buffer_of = [0] * len(tensors)
    buffers = [write_buffer(b, None)]
    for i, t in enumerate(tensors):
        if t.data is not None:
            buffer_of[i] = len(buffers)
            buffers.append(write_buffer(b, t.data))
    codes = sorted({op.code for op in ops})
    tensor_tables = [write_tensor(b, t, buffer_of[i]) for i, t in enumerate(tensors)]
    op_tables = [write_operator(b, op, codes.index(op.code)) for op in ops]
    subgraph = write_subgraph(b, tensor_tables, op_tables, inputs, outputs)
    return finish_model(b, [write_operator_code(b, c) for c in codes], subgraph, buffers)


def write_subgraph(b: Builder, tensors: list[int], ops: list[int], inputs, outputs) -> int:
    """SubGraph: 0 tensors, 1 inputs, 2 outputs, 3 operators (in execution order), 4 name."""
    tensor_vector, op_vector = vector_of_tables(b, tensors), vector_of_tables(b, ops)
    input_vector, output_vector = ints(b, inputs), ints(b, outputs)
    name = b.CreateString("main")
    b.StartObject(5)
    b.PrependUOffsetTRelativeSlot(0, tensor_vector, 0)
    b.PrependUOffsetTRelativeSlot(1, input_vector, 0)
    b.PrependUOffsetTRelativeSlot(2, output_vector, 0)
    b.PrependUOffsetTRelativeSlot(3, op_vector, 0)
    b.PrependUOffsetTRelativeSlot(4, name, 0)
    return b.EndObject()


def finish_model(b: Builder, codes: list[int], subgraph: int, buffers: list[int]) -> bytes:
    """Model: 0 version, 1 operator_codes, 2 subgraphs (the first is the model), 3 description,
    4 buffers (the first empty); the root table, behind the file identifier "TFL3"."""
    code_vector, subgraph_vector = vector_of_tables(b, codes), vector_of_tables(b, [subgraph])
    buffer_vector = vector_of_tables(b, buffers)
    description = b.CreateString("tinyprune")
    b.StartObject(5)
    b.PrependUint32Slot(0, SCHEMA_VERSION, 0)
    b.PrependUOffsetTRelativeSlot(1, code_vector, 0)
    b.PrependUOffsetTRelativeSlot(2, subgraph_vector, 0)
    b.PrependUOffsetTRelativeSlot(3, description, 0)
    b.PrependUOffsetTRelativeSlot(4, buffer_vector, 0)
    b.Finish(b.EndObject(), file_identifier=b"TFL3")
    return bytes(b.Output())
