"""The trained dense model that sensitivity analyses and sweeps start from, trained once.

Every point of a sweep prunes a copy of the same trained model. Training it is the costly
part, so it is saved under a name made of everything that shaped it, and the next command with
the same settings loads it instead of training again.
"""

from __future__ import annotations

from pathlib import Path

from tinyprune.config import TrainConfig
from tinyprune.data.mnist import Mnist
from tinyprune.nn.model import MODELS, Sequential
from tinyprune.nn.optim import MaskedSGD
from tinyprune.train.loop import evaluate, fit


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


def trained_dense(config: TrainConfig, data: Mnist, cache_dir: Path) -> tuple[Sequential, float]:
    """-> (the trained dense model, its test accuracy), from cache_dir if it is there."""
    model = MODELS[config.model](config.seed)
    path = cache_dir / cache_name(config, len(data.train_images), data.dataset.key)
    if path.exists():
        model.load(path)
        print(f"dense {config.model} loaded from {path}")
    else:
        print(f"training dense {config.model} ({config.epochs} epochs); it is cached in {path}")
        model = train_dense(config, data)
        model.save(path)
    _, accuracy = evaluate(model, data.test_images, data.test_labels, dataset=data.dataset)
    print(f"dense test accuracy {accuracy:.2%}")
    return model, accuracy


def train_dense(config: TrainConfig, data: Mnist) -> Sequential:
    """A dense model trained as config says (no cache)."""
    model = MODELS[config.model](config.seed)
    optimizer = MaskedSGD(model.params(), config.lr, config.momentum, config.weight_decay)
    fit(
        model,
        data,
        optimizer,
        config.epochs,
        config.batch_size,
        config.seed,
        max_shift=config.shift,
        phase="dense",
        warmup_steps=config.warmup_steps,
    )
    return model


def fresh_copy(model: Sequential, seed: int = 0) -> Sequential:
    """A new model of the same kind holding copies of model's weights, without masks."""
    copy = MODELS[model.name](seed)  # a model's name is its key in MODELS
    copy.load_state({k: v.copy() for k, v in model.state().items()})
    return copy
