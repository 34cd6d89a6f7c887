"""Models: a named sequence of layers, run in order, LeNet-5 and its kin (with fused=True,
conv blocks as ConvPool layers), and saving/loading their weights."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from tinyprune.files import write_npz
from tinyprune.nn.conv_pool import ConvPool
from tinyprune.nn.layers import Conv2d, Flatten, Layer, Linear, MaxPool2d, Param, ReLU


def layer_of(param_name: str) -> str:
    """'conv1.weight' -> 'conv1'."""
    return param_name.rsplit(".", 1)[0]


def mask_name(param_name: str, prunable: bool = True) -> str:
    """Where a parameter's mask is saved: '<layer>.mask' for a weight, '<layer>.bias_mask'
    for a bias (only filter pruning masks biases)."""
    return f"{layer_of(param_name)}.{'mask' if prunable else 'bias_mask'}"


MASK_SUFFIXES = (".mask", ".bias_mask")


class Sequential:
    """Layers applied in order; each has a name, used for its arrays in a .npz file."""

    def __init__(self, name: str, layers: dict[str, Layer]):
        self.name = name
        self.layers = layers

    def forward(self, x: np.ndarray) -> np.ndarray:
        for layer in self.layers.values():
            x = layer.forward(x)
        return x

    def backward(self, dout: np.ndarray) -> None:
        """After forward: each layer's backward, last to first, filling the gradients."""
        for layer in reversed(self.layers.values()):
            dout = layer.backward(dout)
            if dout is None:  # a layer with input_grad=False: the ones before it have no params
                return

    def params(self) -> dict[str, Param]:
        """'conv1.weight' -> Param, in layer order."""
        return {
            f"{layer_name}.{param_name}": param
            for layer_name, layer in self.layers.items()
            for param_name, param in layer.params.items()
        }

    def prunable(self) -> dict[str, Param]:
        """The weights that pruning may zero: conv and fc weights, not biases."""
        return {name: p for name, p in self.params().items() if p.prunable}

    def num_params(self) -> int:
        return sum(p.value.size for p in self.params().values())

    def state(self, with_masks: bool = False) -> dict[str, np.ndarray]:
        """Arrays named '<layer>.weight', '<layer>.bias' and, with masks, '<layer>.mask' (of
        the weight) and, where filter pruning removed units, '<layer>.bias_mask'."""
        arrays = {name: p.value for name, p in self.params().items()}
        if with_masks:
            for name, p in self.prunable().items():
                arrays[mask_name(name)] = (
                    np.ones(p.value.shape, np.uint8) if p.mask is None else p.mask.astype(np.uint8)
                )
            for name, p in self.params().items():
                if not p.prunable and p.mask is not None:
                    arrays[mask_name(name, prunable=False)] = p.mask.astype(np.uint8)
        return arrays

    def load_state(self, arrays: dict[str, np.ndarray], source: str = "state") -> None:
        """Copy arrays into the parameters (and masks, if present); refuse any mismatch."""
        params = self.params()
        expected = set(params)
        got = {k for k in arrays if not k.endswith(MASK_SUFFIXES)}
        if got != expected:
            raise ValueError(
                f"{source} does not hold a {self.name}: it has {sorted(got - expected) or 'no'} "
                f"unexpected and {sorted(expected - got) or 'no'} missing arrays"
            )
        for name, p in params.items():
            if arrays[name].shape != p.value.shape:
                raise ValueError(
                    f"{source} does not hold a {self.name}: {name} is "
                    f"{arrays[name].shape}, expected {p.value.shape}"
                )
            p.value[...] = arrays[name]
        for name, p in params.items():
            key = mask_name(name, p.prunable)
            if key in arrays:
                if arrays[key].shape != p.value.shape:
                    raise ValueError(
                        f"{source} does not hold a {self.name}: {key} is "
                        f"{arrays[key].shape}, expected {p.value.shape}"
                    )
                p.mask = arrays[key].astype(bool)
                p.value *= p.mask

    def save(self, path: str | Path, with_masks: bool = False) -> None:
        """Write an .npz atomically: a crash leaves the old file or the new one, never half."""
        write_npz(path, self.state(with_masks))

    def load(self, path: str | Path) -> None:
        with np.load(path) as arrays:
            self.load_state(dict(arrays), source=str(path))


def lenet5(
    seed: int = 0, dtype=np.float32, fused: bool = False, widths=(6, 16, 120, 84)
) -> Sequential:
    """LeNet-5 of the original project: 61,706 parameters; input (N, 1, 28, 28). With fused,
    each convolution, its pooling and its ReLU are one ConvPool layer named for the convolution.
    widths: conv1's and conv2's filters, fc1's and fc2's neurons (fewer: structured pruning)."""
    c1, c2, f1, f2 = check_widths(widths, 4)
    rng = np.random.default_rng(seed)
    conv1 = Conv2d(1, c1, 5, padding=2, rng=rng, dtype=dtype, input_grad=False)  # (N, c1, 28, 28)
    conv2 = Conv2d(c1, c2, 5, padding=0, rng=rng, dtype=dtype)  # (N, c2, 10, 10)
    # ReLU after the pool, not before: max(relu(a), relu(b)) = relu(max(a, b)), for the
    # gradients too, so the network is the same, and its ReLUs touch 4x fewer numbers.
    features: dict[str, Layer]
    if fused:  # each block as one layer: the same numbers, faster (nn/conv_pool.py)
        features = {"conv1": ConvPool(conv1, relu=True), "conv2": ConvPool(conv2, relu=True)}
    else:
        features = {
            "conv1": conv1,
            "pool1": MaxPool2d(),  # (N, c1, 28, 28) -> (N, c1, 14, 14)
            "relu1": ReLU(),
            "conv2": conv2,
            "pool2": MaxPool2d(),  # (N, c2, 10, 10) -> (N, c2, 5, 5)
            "relu2": ReLU(),
        }
    return Sequential(
        "lenet5",
        {
            **features,
            "flatten": Flatten(),  # -> (N, 25 c2)
            "fc1": Linear(25 * c2, f1, rng, dtype),
            "relu3": ReLU(),
            "fc2": Linear(f1, f2, rng, dtype),
            "relu4": ReLU(),
            "fc3": Linear(f2, 10, rng, dtype),  # -> (N, 10) logits
        },
    )


def lenet5_caffe(
    seed: int = 0, dtype=np.float32, fused: bool = False, widths=(20, 50, 500)
) -> Sequential:
    """Caffe's LeNet-5, which Han et al. (2015) pruned 12x: 431,080 parameters; input
    (N, 1, 28, 28). Like Caffe's, it has no ReLU after its convolutions. With fused, each
    convolution and its pooling are one ConvPool layer named for the convolution.
    widths: conv1's and conv2's filters, fc1's neurons (fewer: structured pruning)."""
    c1, c2, f1 = check_widths(widths, 3)
    rng = np.random.default_rng(seed)
    conv1 = Conv2d(1, c1, 5, padding=0, rng=rng, dtype=dtype, input_grad=False)  # (N, c1, 24, 24)
    conv2 = Conv2d(c1, c2, 5, padding=0, rng=rng, dtype=dtype)  # (N, c2, 8, 8)
    features: dict[str, Layer]
    if fused:  # each block as one layer: the same numbers, faster (nn/conv_pool.py)
        features = {"conv1": ConvPool(conv1, relu=False), "conv2": ConvPool(conv2, relu=False)}
    else:
        features = {
            "conv1": conv1,
            "pool1": MaxPool2d(),  # (N, c1, 24, 24) -> (N, c1, 12, 12)
            "conv2": conv2,
            "pool2": MaxPool2d(),  # (N, c2, 8, 8) -> (N, c2, 4, 4)
        }
    return Sequential(
        "lenet5-caffe",
        {
            **features,
            "flatten": Flatten(),  # -> (N, 16 c2)
            "fc1": Linear(16 * c2, f1, rng, dtype),
            "relu1": ReLU(),
            "fc2": Linear(f1, 10, rng, dtype),  # -> (N, 10) logits
        },
    )


def lenet_300_100(seed: int = 0, dtype=np.float32, widths=(300, 100)) -> Sequential:
    """The fully connected LeNet-300-100 of Han et al. (2015) and of the lottery-ticket papers:
    266,610 parameters; input (N, 1, 28, 28). widths: fc1's and fc2's neurons."""
    f1, f2 = check_widths(widths, 2)
    rng = np.random.default_rng(seed)
    return Sequential(
        "lenet-300-100",
        {
            "flatten": Flatten(),  # (N, 1, 28, 28) -> (N, 784)
            "fc1": Linear(784, f1, rng, dtype, input_grad=False),
            "relu1": ReLU(),
            "fc2": Linear(f1, f2, rng, dtype),
            "relu2": ReLU(),
            "fc3": Linear(f2, 10, rng, dtype),  # -> (N, 10) logits
        },
    )


def check_widths(widths, count: int) -> tuple[int, ...]:
    """widths as a tuple of `count` positive ints, or ValueError saying what is wrong."""
    widths = tuple(int(w) for w in widths)
    if len(widths) != count or min(widths) < 1:
        raise ValueError(f"expected {count} widths of at least 1, got {widths}")
    return widths


# Name on the command line (--model) -> builder(seed, dtype, widths=); the LeNet-5s take fused=.
MODELS: dict[str, Callable[..., Sequential]] = {
    "lenet5": lenet5,
    "lenet5-caffe": lenet5_caffe,
    "lenet-300-100": lenet_300_100,
}


def unit_layers(model: Sequential) -> list[str]:
    """The layers whose units (filters, neurons) structured pruning may remove, in order: every
    layer with weights but the last, whose outputs are the classes; their widths are the
    model's widths (the builders' widths=)."""
    return [layer_of(name) for name in model.prunable()][:-1]


def model_widths(model: Sequential) -> tuple[int, ...]:
    params = model.params()
    return tuple(len(params[f"{name}.bias"].value) for name in unit_layers(model))


def model_for(name: str, state: dict[str, np.ndarray], seed: int = 0) -> Sequential:
    """A `name` model at the widths state's biases have (a structurally pruned one is
    narrower), ready to load_state(state); ValueError for an unknown name."""
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; this tinyprune knows {', '.join(MODELS)}")
    names = unit_layers(MODELS[name](seed))
    try:
        widths = tuple(len(state[f"{n}.bias"]) for n in names)
    except KeyError as missing:
        raise ValueError(f"the arrays do not hold a {name}: {missing} is missing") from None
    return MODELS[name](seed, widths=widths)


def load_model(path: str | Path, name: str, seed: int = 0) -> Sequential:
    """The `name` model an .npz (Sequential.save) holds, at the widths it has."""
    with np.load(path) as arrays:
        state = dict(arrays)
    model = model_for(name, state, seed)
    model.load_state(state, source=str(path))
    return model
