"""Training holds on every seed: the first epoch of each model's recipe, at the learning rate a
10-epoch run has there, does not diverge on seeds 0 to 9, and its loss goes down.

Without the learning rate's warm-up (TrainConfig.warmup_steps, train/loop.py's cosine_lr),
lenet5-caffe with --shift 1 diverges on some of these seeds within its first 40 steps.
benchmarks/seed_stability.py shows the same over whole epochs of the full training set.
"""

from dataclasses import replace

import numpy as np
import pytest

from tinyprune.config import DataConfig, TrainConfig
from tinyprune.data.mnist import load_data
from tinyprune.nn.model import MODELS
from tinyprune.nn.optim import MaskedSGD
from tinyprune.train.loop import Diverged, cosine_lr, evaluate, train_epoch

# One epoch of STEPS batches: past the warm-up (100 steps), into the full learning rate.
STEPS = 120
SEEDS = range(10)
RECIPES = {
    "lenet5": TrainConfig(),
    "lenet5-caffe-shift1": TrainConfig(model="lenet5-caffe", shift=1),
    "lenet-300-100": TrainConfig(model="lenet-300-100"),
}


@pytest.fixture(scope="module")
def data():
    """The first STEPS batches' worth of training images; 1,000 test images to measure on."""
    return load_data(DataConfig(limit=STEPS * TrainConfig().batch_size, test_limit=1000))


def first_epoch_losses(config: TrainConfig, data) -> tuple[float, float]:
    """-> (test loss of config.seed's initial weights, test loss after the first epoch of
    config's schedule on data)."""
    model = MODELS[config.model](config.seed)
    before, _ = evaluate(model, data.test_images, data.test_labels)
    optimizer = MaskedSGD(model.params(), config.lr, config.momentum, config.weight_decay)
    train_epoch(
        model, optimizer, data, 1, config.epochs, config.batch_size, config.seed, config.shift,
        "train", None, config.warmup_steps,
    )  # fmt: skip
    after, _ = evaluate(model, data.test_images, data.test_labels)
    return before, after


@pytest.mark.slow
@pytest.mark.parametrize("recipe", RECIPES)
def test_first_epoch_holds_on_every_seed(recipe, data):
    """No seed diverges (train_epoch would raise Diverged), and every one ends its first epoch
    with a test loss well under the initial one (ln 10 = 2.30, a uniform guess)."""
    config = RECIPES[recipe]
    for seed in SEEDS:
        try:
            before, after = first_epoch_losses(replace(config, seed=seed), data)
        except Diverged as error:
            pytest.fail(f"seed {seed}: {error}")
        assert after < 0.5 * before, f"seed {seed}: test loss {before:.3f} -> {after:.3f}"


def test_warmup_rises_linearly_then_follows_the_cosine():
    rates = [cosine_lr(0.05, step, 1000, warmup_steps=4) for step in range(6)]
    cosine = [cosine_lr(0.05, step, 1000) for step in range(6)]
    assert np.allclose(rates[:4], [c * k / 4 for c, k in zip(cosine, (1, 2, 3, 4))])
    assert rates[3:] == cosine[3:]  # from the warm-up's last step on, the cosine alone
    assert cosine_lr(0.05, 0, 1000, warmup_steps=0) == 0.05  # no warm-up: as before
