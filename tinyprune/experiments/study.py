"""Studies of one trained dense model: each layer pruned alone (sensitivity), and one point of
a sweep (prune a copy to one sparsity on one schedule, fine-tune, measure)."""

from __future__ import annotations

from tinyprune.config import PruneConfig, TrainConfig
from tinyprune.data.mnist import Mnist
from tinyprune.deploy.tpz import compressed_bytes, dense_float32_bytes
from tinyprune.nn.model import Sequential, layer_of
from tinyprune.prune.criteria import magnitude_mask
from tinyprune.prune.report import sparsity_report, weight_uses
from tinyprune.prune.schedules import prune_and_finetune
from tinyprune.train.dense_cache import fresh_copy
from tinyprune.train.loop import evaluate


def layer_sensitivity(
    model: Sequential, data: Mnist, sparsities: list[float]
) -> dict[str, list[dict]]:
    """Layer -> [{"sparsity", "test_accuracy"}], pruning one layer at a time in place (smallest
    |w| first, no fine-tuning) and restoring its weights afterwards."""
    result: dict[str, list[dict]] = {}
    for name, p in model.prunable().items():
        layer = layer_of(name)
        dense = p.value.copy()
        result[layer] = []
        for sparsity in sparsities:
            p.value[...] = dense * magnitude_mask(dense, sparsity)
            _, accuracy = evaluate(model, data.test_images, data.test_labels, dataset=data.dataset)
            result[layer].append({"sparsity": sparsity, "test_accuracy": accuracy})
            print(f"{layer:6} pruned {sparsity:4.0%}: test accuracy {accuracy:.2%}", flush=True)
        p.value[...] = dense
    return result


def sweep_point(dense: Sequential, data: Mnist, train: TrainConfig, prune: PruneConfig) -> dict:
    """A copy of dense pruned to prune.sparsity on prune.schedule and fine-tuned -> {"sparsity",
    "test_accuracy", "weight_sparsity", "bytes", "after_prune", "rounds", "layers"}; bytes: the
    sizes of its files as the run writes them (deploy/compress.py). Raises Diverged."""
    model = fresh_copy(dense, train.seed)
    pruning = prune_and_finetune(model, data, prune, train)
    layers = sparsity_report(model.params(), weight_uses(model))
    return {
        "sparsity": prune.sparsity,
        "test_accuracy": pruning["rounds"][-1]["test_accuracy"],
        # differs from sparsity for method filter, whose sparsity counts filters
        "weight_sparsity": 1
        - sum(r["nonzero"] for r in layers) / sum(r["weights"] for r in layers),
        "bytes": {
            "dense_float32": dense_float32_bytes(model),
            "compressed": compressed_bytes(model),
            "compressed_int8": compressed_bytes(model, quantize=True),
        },
        "after_prune": pruning["rounds"][0]["after_prune"],
        "rounds": pruning["rounds"],
        "layers": layers,
    }
