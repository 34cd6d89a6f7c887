"""Schedules: the sparsity each reaches, when, and that masks only lose ones on the way."""

import json

import numpy as np
import pytest
from helpers import without_seconds

from tinyprune.config import PruneConfig, TrainConfig
from tinyprune.data.mnist import Mnist
from tinyprune.nn.model import lenet5
from tinyprune.prune import schedules
from tinyprune.prune.report import sparsity_report
from tinyprune.prune.schedules import (
    agp_sparsity,
    iterative_targets,
    prune_and_finetune,
    split_epochs,
)
from tinyprune.train.resume import FinetuneProgress


def test_iterative_removes_the_same_share_of_survivors_each_round():
    targets = iterative_targets(0.92, 4)
    assert targets[-1] == pytest.approx(0.92)
    survivors = [1.0] + [1 - t for t in targets]
    shares = [after / before for before, after in zip(survivors, survivors[1:])]
    np.testing.assert_allclose(shares, shares[0])
    assert iterative_targets(0.5, 1) == [0.5]


def test_agp_rises_fast_then_slow_and_stops_at_the_target():
    steps = np.arange(0, 101)
    s = np.array([agp_sparsity(t, 100, 0.9) for t in steps])
    assert s[0] == 0 and s[100] == pytest.approx(0.9) and agp_sparsity(150, 100, 0.9) == s[100]
    rise = np.diff(s)
    assert np.all(rise >= 0) and np.all(np.diff(rise) <= 1e-12)  # concave: fast, then slow
    assert s[50] == pytest.approx(0.9 * (1 - 0.5**3))


@pytest.mark.parametrize(
    "epochs, rounds, expected", [(7, 3, [2, 2, 3]), (4, 4, [1, 1, 1, 1]), (5, 1, [5]), (0, 1, [0])]
)
def test_epochs_are_shared_among_rounds(epochs, rounds, expected):
    assert split_epochs(epochs, rounds) == expected


def tiny_data(n=48):
    rng = np.random.default_rng(0)
    return Mnist(
        rng.integers(0, 256, (n, 28, 28)).astype(np.uint8),
        rng.integers(0, 10, n).astype(np.uint8),
        rng.integers(0, 256, (16, 28, 28)).astype(np.uint8),
        rng.integers(0, 10, 16).astype(np.uint8),
    )


@pytest.mark.parametrize("schedule", schedules.SCHEDULES)
@pytest.mark.parametrize("method", ["layerwise", "global", "filter"])
def test_schedule_reaches_the_target_with_masks_only_losing_ones(schedule, method, monkeypatch):
    seen = []  # a copy of every mask after every pruning step
    real_prune = schedules.prune

    def recording_prune(model, sparsity, method, rng=None):
        real_prune(model, sparsity, method, rng)
        seen.append({n: p.mask.copy() for n, p in model.prunable().items()})

    monkeypatch.setattr(schedules, "prune", recording_prune)

    model = lenet5(seed=1)
    prune = PruneConfig(0.75, method, schedule, rounds=2, finetune_epochs=2)
    result = prune_and_finetune(model, tiny_data(), prune, TrainConfig(batch_size=16, seed=3))
    expected_steps = {"oneshot": 1, "iterative": 2, "agp": 4}[schedule]  # agp: steps 1..4 of 6
    assert len(seen) == expected_steps
    for before, after in zip(seen, seen[1:]):
        for name in before:
            assert not np.any(after[name] & ~before[name]), name
    if method != "filter":  # filter's sparsity counts filters, not weights
        rows = sparsity_report(model.params())
        zeros = sum(r["weights"] - r["nonzero"] for r in rows)
        assert zeros == pytest.approx(0.75 * sum(r["weights"] for r in rows), abs=len(rows))
    for p in model.prunable().values():
        assert np.all(p.value[~p.mask] == 0)  # training did not bring a pruned weight back
    assert len(result["history"]) == 2
    assert [r["round"] for r in result["rounds"]] == list(range(1, len(result["rounds"]) + 1))
    assert (result["rounds"][0]["after_prune"] is None) == (schedule == "agp")


def test_more_rounds_than_epochs_is_refused():
    with pytest.raises(ValueError, match="3 rounds need at least 3 fine-tuning epochs"):
        prune = PruneConfig(0.5, schedule="iterative", rounds=3, finetune_epochs=2)
        prune_and_finetune(lenet5(), tiny_data(), prune, TrainConfig())
    with pytest.raises(ValueError, match="unknown schedule 'sudden'"):
        prune = PruneConfig(0.5, schedule="sudden", finetune_epochs=2)
        prune_and_finetune(lenet5(), tiny_data(), prune, TrainConfig())


class Stop(Exception):
    pass


@pytest.mark.parametrize("schedule", schedules.SCHEDULES)
@pytest.mark.parametrize("method", ["layerwise", "random", "filter"])
@pytest.mark.parametrize("stop_after", [1, 2])
def test_fine_tuning_stopped_after_any_epoch_resumes_to_the_same_end(schedule, method, stop_after):
    """Stopped after epoch 1 (iterative: the end of round 1) or 2 (inside round 2), saved as
    run.py saves a checkpoint, and resumed in a new model: the same weights, masks and report
    to the last bit as a run never stopped."""
    options = (
        PruneConfig(0.75, method, schedule, rounds=2, finetune_epochs=3),
        TrainConfig(batch_size=16, seed=3),
    )
    whole = lenet5(seed=1)
    expected = prune_and_finetune(whole, tiny_data(), *options)

    saved = {}

    def save_then_stop(so_far, optimizer):
        if len(so_far["history"]) == stop_after:
            saved.update(
                state=interrupted.state(with_masks=True),
                velocity={k: v.copy() for k, v in optimizer.velocity.items()},
                done=json.loads(json.dumps(so_far)),
            )  # as a checkpoint stores it
            raise Stop

    interrupted = lenet5(seed=1)
    with pytest.raises(Stop):
        progress = FinetuneProgress(after_epoch=save_then_stop)
        prune_and_finetune(interrupted, tiny_data(), *options, progress=progress)

    resumed = lenet5(seed=99)  # its own initial weights are all replaced
    resumed.load_state(saved["state"])
    done = FinetuneProgress(saved["done"]["rounds"], saved["done"]["history"], saved["velocity"])
    result = prune_and_finetune(resumed, tiny_data(), *options, progress=done)
    assert without_seconds(result) == without_seconds(expected)
    for name, array in whole.state(with_masks=True).items():
        np.testing.assert_array_equal(resumed.state(with_masks=True)[name], array, err_msg=name)
