"""The run of `python -m tinyprune.run`, in three phases that each leave their files in --out:

    state = RunState.open(config, model, resume)     # what an interrupted run had done
    trained = train_phase(model, data, config, state)          # -> model.npz, result.json
    model = structure_phase(model, config, state)  # --structure: its zeroed units removed
    pruning = prune_phase(model, trained, data, config, state)  # prunes and fine-tunes model
    shared = share_phase(model, data, config)    # a shared copy of model -> shared.tpz
    results = package_phase(model, data, config, trained, pruning, shared)  # -> pruned.npz, ...

After every epoch, of training and of fine-tuning, RunState saves the run to
--out/checkpoint.npz; resumed from there, a run ends exactly as one never interrupted (every
decision about resuming is train/resume.py's). Nothing here prints but the progress of the
work itself; the command prints the report (run.py).
"""

from __future__ import annotations

import copy
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from tinyprune.config import RunConfig
from tinyprune.data.mnist import Mnist
from tinyprune.data.transforms import to_input
from tinyprune.deploy.int8_model import CALIBRATION_IMAGES, Int8Model
from tinyprune.deploy.sharing_phase import share_and_finetune, write_and_measure
from tinyprune.deploy.tpz import decoded_model, write_compressed
from tinyprune.files import write_json
from tinyprune.nn.model import MODELS, Sequential, model_widths
from tinyprune.prune import structured
from tinyprune.prune.criteria import std_sparsity
from tinyprune.prune.filters import shrink
from tinyprune.prune.report import sparsity_report, weight_uses
from tinyprune.prune.schedules import prune_and_finetune
from tinyprune.report.plots import weight_histograms
from tinyprune.report.run_pictures import draw_run
from tinyprune.train.dense_cache import cache_path, train_dense
from tinyprune.train.loop import evaluate, inference_seconds
from tinyprune.train.resume import RunState


class RunError(Exception):
    """The run cannot go on; the message says why and what to do."""


@dataclass
class Trained:
    """The trained dense model and how it did."""

    model: Sequential
    history: list[dict]
    test_loss: float
    test_accuracy: float
    weights: dict[str, np.ndarray]  # copies of its prunable weights, before any pruning


def last_test_metrics(model: Sequential, data: Mnist, history: list[dict]) -> tuple[float, float]:
    """(test loss, test accuracy) of the model as it is now. fit evaluated it after its last
    epoch and nothing has changed it since, so that entry is reused; with no epoch, measure."""
    if history:
        return history[-1]["test_loss"], history[-1]["test_accuracy"]
    return evaluate(model, data.test_images, data.test_labels, dataset=data.dataset)


def train_phase(model: Sequential, data: Mnist, config: RunConfig, state: RunState) -> Trained:
    """Train model (unless a resumed run is past training, or --cache-dir holds it trained);
    write model.npz and result.json."""
    t, out = config.train, config.out
    if state.finetuning:  # trained and saved before; the model in hand is being fine-tuned
        trained = load_trained(config)
    else:
        trained = model
        cached = None if config.cache_dir is None else cache_path(t, data, config.cache_dir)
        if cached is not None and cached.exists():
            model.load(cached)
            state.train_history = []  # the cache keeps the weights, not their history
            print(f"dense {t.model} loaded from {cached}")
        else:
            train_dense(t, data, model, state, phase="train", penalty=penalty(model, config))
            if cached is not None:
                model.save(cached)
                print(f"dense {t.model} cached in {cached}")
    history = state.train_history
    test_loss, test_accuracy = last_test_metrics(trained, data, history)
    if not state.finetuning:
        model.save(out / "model.npz")
        write_json(
            out / "result.json",
            {
                **asdict(t),
                "dataset": data.dataset.key,
                "train_images": len(data.train_images),
                "test_images": len(data.test_images),
                "test_limit": config.data.test_limit,
                "test_loss": test_loss,
                "test_accuracy": test_accuracy,
                "history": history,
            },
        )
    weights = {name: p.value.copy() for name, p in trained.prunable().items()}
    return Trained(trained, history, test_loss, test_accuracy, weights)


def penalty(model: Sequential, config: RunConfig):
    """--structure's proximal step for train_dense (prune/structured.py); None without."""
    s = config.structure
    return None if s.structure is None else structured.proximal_step(model, s.structure, s.lam)


def structure_phase(model: Sequential, config: RunConfig, state: RunState) -> Sequential:
    """With --structure, the trained model without the filters and neurons its penalty zeroed:
    a smaller dense model (prune/structured.py), which the run prunes and ships from here on
    (state then saves it); without, the model itself."""
    if config.structure.structure is None:
        return model
    small = structured.remove_dead_units(model)
    print(
        f"{config.structure.structure}: widths {model_widths(model)} -> {model_widths(small)}, "
        f"{model.num_params():,} -> {small.num_params():,} parameters"
    )
    state.model = small
    return small


def structure_results(config: RunConfig, trained: Sequential, model: Sequential) -> dict:
    """results.json's "structure", with --structure: the penalty, and the widths and
    parameters before (trained) and after (model) its units were removed."""
    s = config.structure
    if s.structure is None:
        return {}
    before, after = (
        {"widths": model_widths(m), "params": m.num_params()} for m in (trained, model)
    )
    return {"structure": {"method": s.structure, "lam": list(s.lam), "before": before, **after}}


def load_trained(config: RunConfig) -> Sequential:
    """The trained dense model of the run in --out (its model.npz), which a run resumed
    during fine-tuning reports on; RunError if it is gone."""
    trained = MODELS[config.train.model](config.train.seed)
    path = config.out / "model.npz"
    try:
        trained.load(path)
    except Exception as error:  # missing, truncated, not an .npz, another model's
        raise RunError(
            f"the trained model {path} cannot be read ({error}); it is needed to "
            f"finish fine-tuning: start over in another --out"
        ) from None
    return trained


def prune_phase(
    model: Sequential, trained: Trained, data: Mnist, config: RunConfig, state: RunState
) -> dict:
    """Prune and fine-tune model on config.prune's schedule -> prune_and_finetune's result,
    with the target sparsity (set by --quality for method std)."""
    p = config.prune
    sparsity = p.sparsity
    if p.quality is not None:
        sparsity = std_sparsity(trained.model.prunable(), p.quality)
        print(
            f"--quality {p.quality:g}: |w| < {p.quality:g} x std is {sparsity:.2%} of the weights"
        )
    pruning = prune_and_finetune(
        model, data, p, config.train, sparsity=sparsity, progress=state.finetune_progress()
    )
    return {**pruning, "target_sparsity": sparsity}


def share_phase(model: Sequential, data: Mnist, config: RunConfig) -> dict:
    """Share the weights of a copy of the pruned model, fine-tune the shared values, write it
    as shared.tpz -> write_and_measure's results and the phase's."""
    shared_model = copy.deepcopy(model)
    shared, sharing = share_and_finetune(shared_model, data, config.share, config.train)
    return {**sharing, **write_and_measure(shared_model, shared, data, config.out / "shared.tpz")}


def package_phase(
    model: Sequential,
    data: Mnist,
    config: RunConfig,
    trained: Trained,
    pruning: dict,
    shared: dict | None = None,
) -> dict:
    """Write the pruned model as pruned.npz and as it ships (compressed, float32 and int8),
    results.json (with share_phase's results under "shared") and weights.png -> the
    results."""
    p, out = config.prune, config.out
    layers = sparsity_report(model.params(), weight_uses(model))
    model.save(out / "pruned.npz", with_masks=True)
    model_bytes = write_compressed(model, out)  # zeros not stored (deploy/tpz.py)
    # float32 values: pruned.tpz decodes to the model itself (but for filter pruning's bias
    # masks, which it does not store), whose test metrics follow
    state = model.state(with_masks=True)
    shipped = decoded_model(model, out / "pruned.tpz").state(with_masks=True)
    if any(not np.array_equal(v, state[k]) for k, v in shipped.items()):
        raise RuntimeError("pruned.tpz does not decode to the model: a bug in deploy/tpz.py")
    # pruned-int8.tpz run as TFLite runs an int8 model: integers only (deploy/int8_model.py)
    calibration = data.train_images[:CALIBRATION_IMAGES]
    int8 = Int8Model(decoded_model(model, out / "pruned-int8.tpz"), calibration, None, data.dataset)
    int8_accuracy = float((int8.predict(data.test_images) == data.test_labels).mean())
    test_loss, test_accuracy = last_test_metrics(model, data, pruning["history"])
    # agp prunes a little at a time while it trains: there is no moment "just pruned".
    after_prune = pruning["rounds"][0]["after_prune"] or {"test_loss": None, "test_accuracy": None}
    results = {
        "bytes": model_bytes,
        "int8_test_accuracy": int8_accuracy,
        "model": model.name,
        "method": p.method,
        "schedule": p.schedule,
        "quality": p.quality,
        "target_sparsity": pruning["target_sparsity"],
        "sparsity": (
            sum(r["weights"] - r["nonzero"] for r in layers) / sum(r["weights"] for r in layers)
        ),
        "after_prune": after_prune,
        "test_loss": test_loss,
        "test_accuracy": test_accuracy,
        "finetune_epochs": p.finetune_epochs,
        "finetune_lr": p.finetune_lr,
        "rounds": pruning["rounds"],
        "history": pruning["history"],
        "layers": layers,
        "shared": shared,
    }
    if p.method == "filter":
        results["filters_removed"] = filters_removed(model, data)
    results.update(structure_results(config, trained.model, model))
    write_json(out / "results.json", results)
    weight_histograms(
        trained.weights,
        {n: q.value for n, q in model.prunable().items()},
        out / "weights.png",
        f"{model.name}: weights before and after {p.method} pruning ({p.schedule})",
    )
    return results


def report_phase(
    model: Sequential, data: Mnist, config: RunConfig, trained: Trained, results: dict
) -> Path:
    """The run's pictures and report.html in --out -> the page's path."""
    limited = config.data.test_limit is not None
    test_label = f"test (first {len(data.test_labels):,})" if limited else "test"
    return draw_run(model, trained.weights, data, trained.history, results, config.out, test_label)


def filters_removed(model: Sequential, data: Mnist) -> dict:
    """The filter-pruned model rebuilt without its removed filters: its parameter count and
    its inference time over the test set beside the masked model's."""
    small = shrink(model)
    x = to_input(data.test_images, data.dataset)
    return {
        "params": model.num_params(),
        "params_after": small.num_params(),
        "inference_seconds_masked": inference_seconds(model, x),
        "inference_seconds_smaller": inference_seconds(small, x),
        "layers": {
            name: list(layer.params["weight"].value.shape)
            for name, layer in small.layers.items()
            if "weight" in layer.params
        },
    }
