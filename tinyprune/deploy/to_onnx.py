"""Export a float pruned model as an ONNX graph, to run on ONNX Runtime and the tools built on it.

    export_onnx(model, "lenet5.onnx", dataset=MNIST)

The graph's input "pixels" is the raw pixels, 0..255, float32 (N, 1, 28, 28) with N free; its
first nodes normalise them as data/transforms.py's to_input does, ((pixels / 255) - mean) / std
(Div, Sub, Div in float32: to_input's operations in its order), then each layer becomes its
ONNX operator (Conv, MaxPool, Relu, Flatten, Gemm; a fused ConvPool the Conv, MaxPool and Relu
of the plain model), and the output "logits" is (N, classes).
Weights are float32 initializers with the mask applied, so pruned weights are exactly 0.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

try:
    import onnx
    from onnx import TensorProto, helper
    from onnx.helper import make_node
    from onnx.numpy_helper import from_array
except ImportError as error:  # an optional dependency: say how to get it
    raise ImportError("the ONNX export needs onnx: pip install -e '.[export]'") from error

import tinyprune
from tinyprune.data.datasets import MNIST, Dataset
from tinyprune.files import atomic_write
from tinyprune.nn.conv_pool import ConvPool
from tinyprune.nn.layers import Conv2d, Flatten, Layer, Linear, MaxPool2d, Param, ReLU
from tinyprune.nn.model import Sequential

# Opset 17 (ONNX 1.12, 2022): every operator used here is in it, unchanged since, and ONNX
# Runtime and the converters of the last years all read it. IR version 8 is opset 17's.
OPSET, IR_VERSION = 17, 8


def masked(p: Param) -> np.ndarray:
    """The parameter as float32 with its mask applied: +0.0 where the mask is 0."""
    value = p.value.astype(np.float32)
    return value if p.mask is None else np.where(p.mask, value, np.float32(0))


def layer_nodes(name: str, layer: Layer, x: str, out: str) -> tuple[list, list]:
    """The ONNX nodes computing layer(x) into `out`, and the initializers they read."""
    if isinstance(layer, (Conv2d, Linear)):
        inits = [from_array(masked(p), f"{name}.{key}") for key, p in layer.params.items()]
        inputs = [x, f"{name}.weight", f"{name}.bias"]
        if isinstance(layer, Linear):  # W is (out, in): x @ W.T + b
            return [make_node("Gemm", inputs, [out], name=name, transB=1)], inits
        k, pad = layer.weight.value.shape[2], layer.padding
        conv = make_node("Conv", inputs, [out], name=name, kernel_shape=[k, k], pads=[pad] * 4)
        return [conv], inits
    if isinstance(layer, ConvPool):  # as the plain model's Conv, MaxPool and Relu, one by one
        nodes, inits = layer_nodes(name, layer.conv, x, f"{name}.conv")
        pooled = f"{name}.pool" if layer.relu else out
        pool, _ = layer_nodes(f"{name}.pool", MaxPool2d(), f"{name}.conv", pooled)
        relu, _ = layer_nodes(f"{name}.relu", ReLU(), pooled, out) if layer.relu else ([], [])
        return nodes + pool + relu, inits
    if isinstance(layer, MaxPool2d):
        pool = make_node("MaxPool", [x], [out], name=name, kernel_shape=[2, 2], strides=[2, 2])
        return [pool], []
    if isinstance(layer, ReLU):
        return [make_node("Relu", [x], [out], name=name)], []
    if isinstance(layer, Flatten):  # (N, C, H, W) -> (N, C*H*W) in C order, as Flatten does
        return [make_node("Flatten", [x], [out], name=name, axis=1)], []
    raise ValueError(
        f"the ONNX export does not know layer {name!r} ({type(layer).__name__}); it knows "
        "Conv2d, MaxPool2d, ReLU, Flatten, Linear and ConvPool: build the model from those, or "
        "teach tinyprune/deploy/to_onnx.py's layer_nodes the new layer"
    )


def to_onnx(model: Sequential, dataset: Dataset = MNIST) -> onnx.ModelProto:
    """The model as a checked ONNX model: raw pixels (N, 1, 28, 28) in, logits (N, classes) out."""
    constants = {"255": 255.0, "mean": dataset.mean, "std": dataset.std}
    inits = [from_array(np.array(v, np.float32), k) for k, v in constants.items()]
    nodes = [
        make_node("Div", ["pixels", "255"], ["scaled"], name="scale"),
        make_node("Sub", ["scaled", "mean"], ["centred"], name="centre"),
        make_node("Div", ["centred", "std"], ["input"], name="normalise"),
    ]
    x, names = "input", list(model.layers)
    for name, layer in model.layers.items():
        out = "logits" if name == names[-1] else name
        layer_steps, layer_inits = layer_nodes(name, layer, x, out)
        nodes += layer_steps
        inits += layer_inits
        x = out
    graph = helper.make_graph(
        nodes,
        model.name,
        [helper.make_tensor_value_info("pixels", TensorProto.FLOAT, ["N", 1, 28, 28])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", len(dataset.classes)])],
        inits,
    )
    onnx_model = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", OPSET)],
        ir_version=IR_VERSION,
        producer_name="tinyprune",
        producer_version=tinyprune.__version__,
        doc_string=f"{model.name} trained on {dataset.title}, exported by tinyprune "
        f"{tinyprune.__version__}. Input 'pixels': raw pixels 0..255, float32 (N, 1, 28, 28), "
        f"normalised inside as (pixels / 255 - {dataset.mean}) / {dataset.std}. "
        f"Output 'logits': (N, {len(dataset.classes)}), classes {', '.join(dataset.classes)}.",
    )
    onnx.checker.check_model(onnx_model, full_check=True)  # also infers shapes: logits agree
    return onnx_model


def export_onnx(model: Sequential, path: str | Path, dataset: Dataset = MNIST) -> Path:
    """Write the model as an .onnx file at path, atomically; -> the path."""
    path = Path(path)
    with atomic_write(path) as tmp:
        tmp.write_bytes(to_onnx(model, dataset).SerializeToString())
    return path
