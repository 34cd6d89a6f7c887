"""Resuming an interrupted run: every decision about it, in one place.

    problem = out_folder_problem(out, resume)      # may --out take this run (or resume one)?
    state = RunState.open(config, model, resume)   # the checkpoint, its options checked
    fit(..., start_epoch=len(state.train_history) + 1, after_epoch=...)  # training goes on
    prune_and_finetune(..., progress=state.finetune_progress())  # rounds and epochs done
    state.discard()                                # complete: nothing is left to resume

Batches depend only on (seed, epoch) and a checkpoint (checkpoint.py) stores every number
exactly, so a run resumed with the same options ends with the bits of one never interrupted.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from tinyprune.config import RunConfig
from tinyprune.nn.model import Sequential
from tinyprune.nn.optim import MaskedSGD
from tinyprune.train.checkpoint import (
    CHECKPOINT,
    Checkpoint,
    CheckpointError,
    checkpoint_phase,
    load_checkpoint,
    save_checkpoint,
)

PHASE_NAMES = {"train": "training", "fine-tune": "fine-tuning"}  # checkpoint phase -> words


def resume_options(config: RunConfig) -> dict:
    """The options a resumed run must share with the interrupted one: all that can change its
    numbers (not where the files are)."""
    return {**asdict(config.train), **asdict(config.prune), **config.data.options()}


def options_differ(saved: dict, options: dict) -> list[str]:
    """Each option whose value in the checkpoint (`saved`) is not the one given now, in words:
    "lr=0.05 there, 0.1 now"; an option missing on either side is "(unset)"."""
    differ = [
        f"{k}={saved.get(k, '(unset)')} there, {v} now"
        for k, v in options.items()
        if saved.get(k) != v
    ]
    return differ + [f"{k}={v} there, (unset) now" for k, v in saved.items() if k not in options]


def open_checkpoint(path: Path, model: Sequential, options: dict) -> Checkpoint:
    """The checkpoint at path, its weights and masks loaded into model, if it fits model and
    was made with these options; CheckpointError saying what differs otherwise."""
    saved = load_checkpoint(path, model)
    differ = options_differ(saved.options, options)
    if differ:
        raise CheckpointError(
            f"{path} was made with other options ({', '.join(differ)}); resume with the "
            f"options the run was started with, or start over in another --out"
        )
    return saved


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


def already_complete(config: RunConfig, resume: bool) -> bool:
    """--resume on a run that finished (its checkpoint is deleted then): nothing to do."""
    return resume and not (config.out / CHECKPOINT).exists()


def phase_epochs(config: RunConfig, phase: str) -> int:
    """The epochs the run has in a checkpoint phase: --epochs or --finetune-epochs."""
    return config.train.epochs if phase == "train" else config.prune.finetune_epochs


def stopped_where(config: RunConfig) -> str | None:
    """Where the run in --out stopped, from its checkpoint (the truth about what can be
    resumed): "in training epoch 3 of 10", "after fine-tuning"; None before the first save."""
    saved = checkpoint_phase(config.out / CHECKPOINT)
    if saved is None:
        return None
    phase, done = saved
    total, name = phase_epochs(config, phase), PHASE_NAMES[phase]
    return f"in {name} epoch {done + 1} of {total}" if done < total else f"after {name}"


@dataclass
class FinetuneProgress:
    """How far fine-tuning got: the rounds pruned, the epochs fine-tuned (each history entry
    with its "round") and, mid-round, the optimizer's velocity. prune_and_finetune asks it what
    a resumed run skips; after_epoch({"rounds", "history"}, optimizer) saves it."""

    rounds: list[dict] = field(default_factory=list)
    history: list[dict] = field(default_factory=list)
    velocity: dict[str, np.ndarray] | None = None
    after_epoch: Callable[[dict, MaskedSGD], None] | None = None

    def pruned(self, round_no: int) -> bool:
        """Was round round_no pruned before (a resumed run has pruned its first rounds)?"""
        return round_no <= len(self.rounds)

    def resume_round(self, round_no: int, optimizer: MaskedSGD) -> int:
        """-> the epochs of round round_no done before; if any, optimizer gets the momentum
        they left."""
        done = sum(h["round"] == round_no for h in self.history)
        if done:
            assert self.velocity is not None, "resuming a round needs its velocity"
            optimizer.velocity = self.velocity
        return done

    def epoch_done(self, round_no: int, entry: dict, optimizer: MaskedSGD) -> None:
        self.history.append({"round": round_no, **entry})
        if self.after_epoch is not None:
            self.after_epoch({"rounds": self.rounds, "history": self.history}, optimizer)


class RunState:
    """What the run has done so far, saved after every epoch; the one place resuming reads."""

    def __init__(self, config: RunConfig, model: Sequential, saved: Checkpoint | None):
        self.path = config.out / CHECKPOINT
        self.options = resume_options(config)
        self.model = model
        self.saved = saved  # the checkpoint resumed from, if any
        # a run that learns its structure cannot resume (its model shrinks after training):
        # it saves no checkpoint, so none is left behind for a --resume it would refuse
        self.saves = config.structure.structure is None
        self.finetuning = saved is not None and saved.phase == "fine-tune"
        self.train_history: list[dict] = []
        if saved is not None:
            self.train_history = (
                saved.results["train_history"] if self.finetuning else saved.history
            )

    @classmethod
    def open(cls, config: RunConfig, model: Sequential, resume: bool) -> RunState:
        """A new run's state, or (resume) the saved one, its weights and masks loaded into
        model. CheckpointError if the checkpoint does not fit model and options."""
        path, options = config.out / CHECKPOINT, resume_options(config)
        return cls(config, model, open_checkpoint(path, model, options) if resume else None)

    def resuming(self, config: RunConfig) -> str | None:
        """What a resumed run goes on from, in words (None for a new run)."""
        if self.saved is None:
            return None
        phase = self.saved.phase
        return (
            f"resuming from {self.path}: {self.saved.epoch} of {phase_epochs(config, phase)} "
            f"{PHASE_NAMES[phase]} epochs done"
        )

    def save_train_epoch(self, optimizer: MaskedSGD, entry: dict) -> None:
        self.train_history.append(entry)
        self._save(optimizer, "train", entry["epoch"], self.train_history)

    def save_finetune_epoch(self, so_far: dict, optimizer: MaskedSGD) -> None:
        done = {"train_history": self.train_history, "rounds": so_far["rounds"]}
        self._save(optimizer, "fine-tune", len(so_far["history"]), so_far["history"], done)

    def _save(self, optimizer: MaskedSGD, phase: str, epoch: int, history, results=None) -> None:
        if self.saves:
            save_checkpoint(
                self.path, self.model, optimizer, phase, epoch, history, self.options, results
            )

    def training(self, optimizer: MaskedSGD) -> dict:
        """fit's start_epoch and after_epoch to train on from the epoch the run had reached,
        saving it after every epoch; optimizer gets back the velocity it had there."""
        if self.saved is not None and not self.finetuning:
            optimizer.velocity = self.saved.velocity
        return {
            "start_epoch": len(self.train_history) + 1,
            "after_epoch": lambda entry: self.save_train_epoch(optimizer, entry),
        }

    def finetune_progress(self) -> FinetuneProgress:
        """Fine-tuning's progress to go on from (none unless resumed during fine-tuning),
        saved to the checkpoint after every epoch."""
        if not self.finetuning:
            return FinetuneProgress(after_epoch=self.save_finetune_epoch)
        assert self.saved is not None
        rounds = [dict(r) for r in self.saved.results["rounds"]]
        history, velocity = list(self.saved.history), self.saved.velocity
        return FinetuneProgress(rounds, history, velocity, self.save_finetune_epoch)

    def discard(self) -> None:
        """Delete the checkpoint: the run is complete, or resuming it could only fail again."""
        self.path.unlink(missing_ok=True)
