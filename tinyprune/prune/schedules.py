"""Pruning schedules: when to prune how much while fine-tuning.

    oneshot    prune to the target once, then fine-tune
    iterative  prune a share, fine-tune, repeat: round k of R reaches 1 - (1 - s)^(k/R), so each
               round removes the same share of the weights still there (Han et al. 2015)
    agp        automated gradual pruning (Zhu & Gupta 2017): during fine-tuning the sparsity
               rises along a cubic, fast at first while many weights are redundant, then slower;
               the last third of the steps fine-tunes with the final mask

All three get the same number of fine-tuning epochs in total, so they can be compared.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from tinyprune.config import PruneConfig, TrainConfig
from tinyprune.nn.optim import MaskedSGD
from tinyprune.prune.criteria import prune
from tinyprune.train.loop import evaluate, fit
from tinyprune.train.resume import FinetuneProgress

SCHEDULES = ("oneshot", "iterative", "agp")

# AGP prunes during this share of the fine-tuning steps, in this many mask updates.
AGP_PRUNING_SHARE = 2 / 3
AGP_UPDATES = 20


def iterative_targets(sparsity: float, rounds: int) -> list[float]:
    """Sparsity after each of `rounds` rounds; the last is `sparsity` itself."""
    return [1 - (1 - sparsity) ** (k / rounds) for k in range(1, rounds + 1)]


def agp_sparsity(step: int, end_step: int, sparsity: float) -> float:
    """Zhu & Gupta's cubic: s_t = s (1 - (1 - t / end_step)^3), from 0 at t=0 to s at end_step."""
    t = min(step, end_step) / end_step
    return sparsity * (1 - (1 - t) ** 3)


def split_epochs(epochs: int, rounds: int) -> list[int]:
    """Epochs of each round, as even as possible, the longer rounds last: 7, 3 -> [2, 2, 3]."""
    return [epochs // rounds + (k >= rounds - epochs % rounds) for k in range(rounds)]


def check_schedule(schedule: str, rounds: int, epochs: int) -> None:
    """ValueError, saying what to change, unless `schedule` is one of SCHEDULES and, if it is
    iterative, each of its `rounds` gets at least one of the `epochs`."""
    if schedule not in SCHEDULES:
        raise ValueError(f"unknown schedule {schedule!r}; choose one of {', '.join(SCHEDULES)}")
    if schedule == "iterative" and rounds > max(epochs, 1):
        raise ValueError(
            f"{rounds} rounds need at least {rounds} fine-tuning epochs, "
            f"got {epochs}; lower --rounds or raise --finetune-epochs"
        )


def prune_and_finetune(
    model,
    data,
    prune: PruneConfig,
    train: TrainConfig,
    *,
    sparsity: float | None = None,
    progress: FinetuneProgress | None = None,
) -> dict:
    """Prune `model` to prune.sparsity (or `sparsity`, as --quality sets it) by prune.method
    on prune.schedule, fine-tuning prune.finetune_epochs in all with train's momentum, weight
    decay, batch size, shifts and seed.

    data: an `Mnist` tuple. Each fine-tuning stage starts a fresh optimizer whose learning rate
    decays from prune.finetune_lr along a cosine. Returns {"rounds": [{"round", "sparsity",
    "after_prune", "test_accuracy"}], "history": fit's entries, each with its "round"};
    after_prune is {"test_loss", "test_accuracy"} right after pruning (None for agp, which
    prunes a little at a time while it trains).

    To resume: progress (train/resume.py) is what fine-tuning had done when it was saved
    (with the model, masks included): the rounds it skips and the epochs it goes on from, to end
    exactly as if never stopped; its after_epoch saves it after each fine-tuning epoch.
    """
    epochs, target = prune.finetune_epochs, prune.sparsity if sparsity is None else sparsity
    check_schedule(prune.schedule, prune.rounds, epochs)
    progress = progress or FinetuneProgress()
    run = _Rounds(model, data, prune, train, progress)
    if prune.schedule == "agp":
        run.agp(target, epochs)
    else:
        targets = (
            [target] if prune.schedule == "oneshot" else iterative_targets(target, prune.rounds)
        )
        per_round = split_epochs(epochs, len(targets))
        for round_no, (round_target, round_epochs) in enumerate(zip(targets, per_round), start=1):
            if not progress.pruned(round_no):
                run.prune_round(round_no, len(targets), round_target)
            run.finetune(round_no, round_epochs)
    return run.result()


class _Rounds:
    """What prune_and_finetune has done so far: the rounds pruned and the epochs fine-tuned."""

    def __init__(
        self, model, data, prune: PruneConfig, train: TrainConfig, progress: FinetuneProgress
    ):
        self.model, self.data, self.method, self.seed = model, data, prune.method, train.seed
        self.progress = progress
        self.rounds, self.history = progress.rounds, progress.history  # filled as it goes
        # MaskedSGD's options, and fit's
        self.optimizer = dict(
            lr=prune.finetune_lr, momentum=train.momentum, weight_decay=train.weight_decay
        )
        self.train = dict(batch_size=train.batch_size, max_shift=train.shift)

    def rng(self, k: int) -> np.random.Generator:
        """For method="random": a generator per round (agp: per step), so that a resumed
        run draws what an uninterrupted one would."""
        return np.random.default_rng([self.seed, 7, k])

    def prune_round(self, round_no: int, n_rounds: int, target: float) -> None:
        prune(self.model, target, self.method, self.rng(round_no))
        loss, accuracy = evaluate(
            self.model, self.data.test_images, self.data.test_labels, dataset=self.data.dataset
        )
        print(
            f"round {round_no}/{n_rounds}: pruned to {target:.2%} by {self.method}, "
            f"test accuracy {accuracy:.2%} before fine-tuning",
            flush=True,
        )
        self.rounds.append(
            {
                "round": round_no,
                "sparsity": target,
                "after_prune": {"test_loss": loss, "test_accuracy": accuracy},
            }
        )

    def finetune(
        self, round_no: int, epochs: int, after_step: Callable[[int, int], None] | None = None
    ) -> None:
        optimizer = MaskedSGD(self.model.params(), **self.optimizer)
        epochs_done = self.progress.resume_round(round_no, optimizer)

        # seed + round: each stage draws its own batches, not a replay of training's.
        fit(
            self.model,
            self.data,
            optimizer,
            epochs,
            seed=self.seed + round_no,
            phase=f"fine-tune {round_no}",
            start_epoch=epochs_done + 1,
            after_step=after_step,
            after_epoch=lambda entry: self.progress.epoch_done(round_no, entry, optimizer),
            **self.train,
        )

    def agp(self, sparsity: float, epochs: int) -> None:
        """Prune gradually during the first AGP_PRUNING_SHARE of the fine-tuning steps."""

        def after_step(step: int, total_steps: int) -> None:
            end = max(1, int(total_steps * AGP_PRUNING_SHARE))
            every = max(1, end // AGP_UPDATES)
            if step <= end and (step % every == 0 or step == end):
                prune(self.model, agp_sparsity(step, end, sparsity), self.method, self.rng(step))

        if not self.rounds:
            self.rounds.append({"round": 1, "sparsity": sparsity, "after_prune": None})
        if epochs == 0:
            prune(self.model, sparsity, self.method, self.rng(0))
        else:
            self.finetune(1, epochs, after_step)

    def result(self) -> dict:
        """{"rounds", "history"}, each round with the test accuracy it ended at."""
        for entry in self.rounds:
            finished = [h for h in self.history if h["round"] == entry["round"]]
            entry["test_accuracy"] = (
                finished[-1]["test_accuracy"]
                if finished
                else (entry["after_prune"] or {}).get("test_accuracy")
            )
        return {"rounds": self.rounds, "history": self.history}
