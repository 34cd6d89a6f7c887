"""The trained dense model that sweeps, sensitivity analyses and runs with --cache-dir start
from, trained once.

Every point of a sweep prunes a copy of the same trained model. Training it is the costly
part, so it is saved under a name made of everything that shaped it, and the next command with
the same settings loads it instead of training again.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from tinyprune.config import TrainConfig
from tinyprune.data.mnist import Mnist
from tinyprune.nn.model import MODELS, Sequential
from tinyprune.nn.optim import MaskedSGD
from tinyprune.train.loop import fit
from tinyprune.train.resume import RunState


def cache_name(config: TrainConfig, train_images: int, dataset: str = "mnist") -> str:
    """The file name of the dense model trained with config on train_images images of
    dataset (MNIST's names have no prefix, as before there were other data sets; a model
    trained without warm-up keeps the name it had before there was one)."""
    c = config
    prefix = "" if dataset == "mnist" else f"{dataset}-"
    warmup = f"-warmup{c.warmup_steps}" if c.warmup_steps else ""
    return (
        f"{prefix}{c.model}-epochs{c.epochs}-lr{c.lr:g}{warmup}-batch{c.batch_size}-"
        f"momentum{c.momentum:g}-wd{c.weight_decay:g}-shift{c.shift}-seed{c.seed}-images{train_images}.npz"
    )


def cache_path(config: TrainConfig, data: Mnist, cache_dir: Path) -> Path:
    """Where the dense model trained with config on data is cached in cache_dir."""
    return cache_dir / cache_name(config, len(data.train_images), data.dataset.key)


def train_dense(
    config: TrainConfig,
    data: Mnist,
    model: Sequential | None = None,
    resume: RunState | None = None,
    phase: str = "dense",
    penalty: Callable[[float], None] | None = None,
) -> Sequential:
    """model (a new one if None) trained as config says; resume: from where the run had got
    to, saving it after every epoch; penalty(lr), if given, after every optimizer step at that
    step's learning rate (a proximal step, e.g. prune/structured.py's)."""
    model = model or MODELS[config.model](config.seed)
    optimizer = MaskedSGD(model.params(), config.lr, config.momentum, config.weight_decay)
    hooks: dict = {} if resume is None else resume.training(optimizer)
    if penalty is not None:
        hooks["after_step"] = lambda step, total_steps: penalty(optimizer.lr)
    c = config
    steps = (c.epochs, c.batch_size, c.seed, c.shift, phase)
    fit(model, data, optimizer, *steps, warmup_steps=c.warmup_steps, **hooks)
    return model


def fresh_copy(model: Sequential, seed: int = 0) -> Sequential:
    """A new model of the same kind holding copies of model's weights, without masks."""
    copy = MODELS[model.name](seed)  # a model's name is its key in MODELS
    copy.load_state({k: v.copy() for k, v in model.state().items()})
    return copy
