"""The run of `python -m tinyprune.run`, in three phases that each leave their files in --out:

    state = RunState.open(config, model, resume)     # what an interrupted run had done
    trained = train_phase(model, data, config, state)          # -> model.npz, result.json
    pruning = prune_phase(model, trained, data, config, state)  # prunes and fine-tunes model
    shared = share_phase(model, data, config)    # a shared copy of model -> shared.tpz
    results = package_phase(model, data, config, trained, pruning, shared)  # -> pruned.npz, ...

After every epoch, of training and of fine-tuning, RunState saves the run to
--out/checkpoint.npz (train/checkpoint.py); resumed from there, a run ends exactly as one never
interrupted. Nothing here prints but the progress of the work itself; the command prints the
report (run.py).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tinyprune.config import RunConfig
from tinyprune.data.mnist import Mnist
from tinyprune.data.transforms import to_input
from tinyprune.deploy.compress import load_copy, write_compressed
from tinyprune.deploy.sharing_phase import share_and_finetune, write_and_measure
from tinyprune.files import write_json
from tinyprune.nn.model import MODELS, Sequential
from tinyprune.nn.optim import MaskedSGD
from tinyprune.prune.criteria import std_sparsity
from tinyprune.prune.filters import shrink
from tinyprune.prune.report import sparsity_report, weight_uses
from tinyprune.prune.schedules import prune_and_finetune
from tinyprune.report.plots import weight_histograms
from tinyprune.report.run_pictures import draw_run
from tinyprune.train.checkpoint import (
    CHECKPOINT,
    Checkpoint,
    checkpoint_phase,
    load_checkpoint,
    save_checkpoint,
)
from tinyprune.train.loop import evaluate, fit, inference_seconds


class RunError(Exception):
    """The run cannot go on; the message says why and what to do."""


def out_folder_problem(out: Path, resume: bool) -> str | None:
    """Why --out cannot take this run (or None if it can): not writable, an interrupted run
    there that would be overwritten, or nothing there to resume. Creates the folder."""
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / ".write-test"
        probe.touch()
        probe.unlink()
    except OSError as error:
        return f"--out {out} cannot be written: {error.strerror}"
    checkpoint = out / CHECKPOINT
    if resume and not checkpoint.exists() and not (out / "results.json").exists():
        return (
            f"--resume: there is no interrupted run in --out {out} (no {CHECKPOINT}); "
            f"leave --resume out to start one"
        )
    found = checkpoint_phase(checkpoint)  # a checkpoint exists only while a run is unfinished
    if found and not resume:
        return (
            f"--out {out} holds an interrupted run ({found[0]} epoch {found[1]} done); "
            f"continue it by adding --resume, or start over in another --out or after "
            f"deleting {checkpoint}"
        )
    return None


class RunState:
    """What the run has done so far, saved after every epoch; the one place resuming reads."""

    def __init__(self, config: RunConfig, model: Sequential, saved: Checkpoint | None):
        self.path = config.out / CHECKPOINT
        self.options = config.resume_options()
        self.model = model
        self.saved = saved  # the checkpoint resumed from, if any
        self.finetuning = saved is not None and saved.phase == "fine-tune"
        self.train_history: list[dict] = (
            []
            if saved is None
            else saved.results["train_history"]
            if self.finetuning
            else saved.history
        )

    @classmethod
    def open(cls, config: RunConfig, model: Sequential, resume: bool) -> RunState:
        """A new run's state, or (resume) the saved one, its weights and masks loaded into
        model. CheckpointError if the checkpoint does not fit model and options."""
        saved = (
            load_checkpoint(config.out / CHECKPOINT, model, config.resume_options())
            if resume
            else None
        )
        return cls(config, model, saved)

    def save_train_epoch(self, optimizer: MaskedSGD, entry: dict) -> None:
        self.train_history.append(entry)
        save_checkpoint(
            self.path,
            self.model,
            optimizer,
            "train",
            entry["epoch"],
            self.train_history,
            self.options,
        )

    def save_finetune_epoch(self, so_far: dict, optimizer: MaskedSGD) -> None:
        save_checkpoint(
            self.path,
            self.model,
            optimizer,
            "fine-tune",
            len(so_far["history"]),
            so_far["history"],
            self.options,
            {"train_history": self.train_history, "rounds": so_far["rounds"]},
        )

    def finetune_done(self) -> dict | None:
        """The fine-tuning rounds and history saved, for prune_and_finetune(done=...)."""
        if not self.finetuning:
            return None
        assert self.saved is not None
        return {"rounds": self.saved.results["rounds"], "history": self.saved.history}

    def velocity(self) -> dict[str, np.ndarray] | None:
        return None if self.saved is None else self.saved.velocity

    def discard(self) -> None:
        """Delete the checkpoint: the run is complete, or resuming it could only fail again."""
        self.path.unlink(missing_ok=True)


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
    """Train model (unless a resumed run is past training); write model.npz and result.json."""
    t, out = config.train, config.out
    if state.finetuning:  # trained and saved before; the model in hand is being fine-tuned
        trained = load_trained(config)
    else:
        optimizer = MaskedSGD(model.params(), t.lr, t.momentum, t.weight_decay)
        velocity = state.velocity()
        if velocity is not None:
            optimizer.velocity = velocity
        fit(
            model,
            data,
            optimizer,
            t.epochs,
            t.batch_size,
            t.seed,
            max_shift=t.shift,
            start_epoch=len(state.train_history) + 1,
            warmup_steps=t.warmup_steps,
            after_epoch=lambda entry: state.save_train_epoch(optimizer, entry),
        )
        trained = model
    history = state.train_history
    test_loss, test_accuracy = last_test_metrics(trained, data, history)
    if not state.finetuning:
        model.save(out / "model.npz")
        write_json(
            out / "result.json",
            {
                "model": t.model,
                "epochs": t.epochs,
                "batch_size": t.batch_size,
                "seed": t.seed,
                "lr": t.lr,
                "momentum": t.momentum,
                "weight_decay": t.weight_decay,
                "shift": t.shift,
                "warmup_steps": t.warmup_steps,
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
    p, t = config.prune, config.train
    sparsity = p.sparsity
    if p.quality is not None:
        sparsity = std_sparsity(trained.model.prunable(), p.quality)
        print(
            f"--quality {p.quality:g}: |w| < {p.quality:g} x std is {sparsity:.2%} of the weights"
        )
    pruning = prune_and_finetune(
        model,
        data,
        sparsity,
        p.finetune_epochs,
        method=p.method,
        schedule=p.schedule,
        rounds=p.rounds,
        lr=p.finetune_lr,
        momentum=t.momentum,
        weight_decay=t.weight_decay,
        batch_size=t.batch_size,
        max_shift=t.shift,
        seed=t.seed,
        after_epoch=state.save_finetune_epoch,
        done=state.finetune_done(),
        velocity=state.velocity() if state.finetuning else None,
    )
    return {**pruning, "target_sparsity": sparsity}


def share_phase(model: Sequential, data: Mnist, config: RunConfig) -> dict:
    """Share the weights of a copy of the pruned model, fine-tune the shared values, write it
    as shared.tpz (format version 2) -> write_and_measure's results and the phase's."""
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
    model_bytes = write_compressed(model, out)  # zeros not stored (deploy/compress.py)
    _, int8_accuracy = evaluate(
        load_copy(model, out / "pruned-int8.tpz"),
        data.test_images,
        data.test_labels,
        dataset=data.dataset,
    )
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
    return draw_run(
        model,
        trained.weights,
        data,
        trained.history,
        results,
        config.out,
        f"test (first {len(data.test_labels):,})" if limited else "test",
    )


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
