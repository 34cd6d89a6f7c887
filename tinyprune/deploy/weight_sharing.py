"""Trained quantization (weight sharing), as Deep Compression does it (Han, Mao & Dally 2016).

Each layer's kept weights are clustered by k-means (kmeans.py) into at most 2^b shared values,
its codebook. The layer then stores, per kept weight, only the index of its shared value:

    codebook  (k,) float32, k <= 2^b       the layer's shared values
    index     int16, shaped like the weight the codebook entry of each kept weight; -1 where
                                           the weight is pruned (it stays exactly 0.0 and
                                           takes no shared value)
    weight    = codebook[index] where index >= 0, else 0

Fine-tuning then trains the codebook. Every weight w_i with index c *is* codebook[c], so by the
chain rule dL/dcodebook[c] = sum of dL/dw_i over its members (codebook_grad). SharedSGD steps
the codebook with that gradient and momentum, and writes the weights back as codebook[index];
the index and the pruned pattern never change.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tinyprune.deploy.kmeans import kmeans_1d
from tinyprune.nn.conv_pool import ConvPool
from tinyprune.nn.layers import Conv2d, Param
from tinyprune.nn.model import Sequential, layer_of
from tinyprune.nn.optim import MaskedSGD

MAX_BITS = 8  # indices are stored in at most 8 bits (and kept in memory as int16)


@dataclass
class SharedWeight:
    """One layer's weight as a codebook and an index per weight (-1: pruned); see above."""

    codebook: np.ndarray  # (k,) float32
    index: np.ndarray  # shaped like the weight, int16, -1 or 0..k-1

    @property
    def kept(self) -> np.ndarray:
        """bool, shaped like the weight: True where a weight is kept."""
        return self.index >= 0

    def weight(self) -> np.ndarray:
        """The weight it stands for: codebook[index] where kept, exactly 0.0 where pruned."""
        out = np.zeros(self.index.shape, self.codebook.dtype)
        kept = self.kept
        out[kept] = self.codebook[self.index[kept]]
        return out


def kept_pattern(p: Param) -> np.ndarray:
    """bool, shaped like p.value: its mask, or its non-zeros for a weight never pruned."""
    return p.mask.astype(bool) if p.mask is not None else p.value != 0


def share(weight: np.ndarray, kept: np.ndarray, bits: int) -> SharedWeight:
    """Cluster weight[kept] into at most 2^bits shared values (k-means, linear start)."""
    if not 1 <= bits <= MAX_BITS:
        raise ValueError(f"weight sharing takes 1 to {MAX_BITS} bits per index, got {bits}")
    codebook, labels = kmeans_1d(weight[kept], 2**bits)
    index = np.full(weight.shape, -1, np.int16)
    index[kept] = labels
    return SharedWeight(codebook, index)


def share_weights(
    model: Sequential, bits: dict[str, int], bias_bits: int | None = None
) -> dict[str, SharedWeight]:
    """Share the weights of each layer named in bits ({'conv1': 8, ...}): cluster its kept
    weights, set the weights to their shared values and the mask to the kept pattern. With
    bias_bits, share each such layer's bias too (all of it kept). -> {'conv1.weight':
    SharedWeight, ...}."""
    shared = {}
    for name, p in model.params().items():
        layer = layer_of(name)
        if layer not in bits or not (p.prunable or bias_bits):
            continue
        kept = kept_pattern(p) if p.prunable else np.ones(p.value.shape, bool)
        shared[name] = share(p.value, kept, bits[layer] if p.prunable else bias_bits or 0)
        p.value[...] = shared[name].weight()
        if p.prunable:
            p.mask = kept
    return shared


def round_to_half(model: Sequential, shared: dict[str, SharedWeight]) -> None:
    """Round every codebook and every unshared bias to the nearest float16, in place (the
    weights written back), so that a .tpz stores each in 16 bits, not 32: tpz.py takes float16
    for any float field that loses nothing by it. A value beyond float16's range stays float32."""
    for name, p in model.params().items():
        if name in shared:
            shared[name].codebook = to_half(shared[name].codebook)
            p.value[...] = shared[name].weight()
        elif not p.prunable:
            p.value[...] = to_half(p.value)


def to_half(values: np.ndarray) -> np.ndarray:
    half = values.astype(np.float16)
    return half.astype(values.dtype) if np.all(np.isfinite(half)) else values


def parse_bits(spec: str, model: Sequential) -> dict[str, int]:
    """'5' -> every weighted layer 5 bits; 'conv=8,fc=5' -> by kind (the paper's setting);
    'conv1=8,fc1=4,fc=5' -> by layer name, names before kinds. -> {layer name: bits}.
    Raises ValueError, saying what is wrong, on anything else."""
    layers = [layer_of(name) for name in model.prunable()]
    convs = (Conv2d, ConvPool)
    kinds = {name: "conv" if isinstance(model.layers[name], convs) else "fc" for name in layers}
    given: dict[str, int] = {}
    for part in spec.split(","):
        key, _, value = part.rpartition("=")
        key = key.strip() or "all"
        if key not in (*layers, "conv", "fc", "all") or not value.strip().isdigit():
            raise ValueError(
                f"bits {spec!r}: {part!r} is not N or NAME=N with NAME one of conv, fc, "
                f"{', '.join(layers)} (e.g. '5' or 'conv=8,fc=5')"
            )
        given[key] = int(value)
    bits = {name: given.get(name, given.get(kinds[name], given.get("all", -1))) for name in layers}
    for name, b in bits.items():
        if not 1 <= b <= MAX_BITS:
            raise ValueError(
                f"bits {spec!r}: layer {name} gets {'no' if b < 0 else b} bits; "
                f"give every layer 1 to {MAX_BITS} (e.g. 'conv=8,fc=5')"
            )
    return bits


def codebook_grad(shared: SharedWeight, grad: np.ndarray) -> np.ndarray:
    """grad (dL/dweight, shaped like the weight) -> (k,) float64: dL/dcodebook[c], the sum of
    the gradients of the weights whose index is c. Pruned weights contribute nothing."""
    kept = shared.kept
    return np.bincount(shared.index[kept], weights=grad[kept], minlength=len(shared.codebook))


class SharedSGD(MaskedSGD):
    """MaskedSGD for the parameters not shared (biases, weights not shared), and for each
    shared weight:  v_c = momentum * v_c + dL/dcodebook[c];  codebook -= lr * v;
    weight = codebook[index].

    Shared values are not weight-decayed: a decay of the weights would pull each shared value
    with the strength of all its members at once, hundreds of times a single weight's.
    """

    def __init__(
        self,
        params: dict[str, Param],
        shared: dict[str, SharedWeight],
        lr: float,
        momentum: float = 0.9,
        weight_decay: float = 0.0,
    ):
        super().__init__(
            {n: p for n, p in params.items() if n not in shared}, lr, momentum, weight_decay
        )
        self.shared = shared
        self.shared_params = {name: params[name] for name in shared}
        self.codebook_velocity = {name: np.zeros(len(s.codebook)) for name, s in shared.items()}

    def step(self) -> None:
        super().step()
        for name, s in self.shared.items():
            v = self.codebook_velocity[name]
            v *= self.momentum
            v += codebook_grad(s, self.shared_params[name].grad)
            s.codebook -= (self.lr * v).astype(s.codebook.dtype)
            self.shared_params[name].value[...] = s.weight()
