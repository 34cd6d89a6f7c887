"""The lottery-ticket experiment (Frankle & Carbin, ICLR 2019): one training, and the study.

Iterative magnitude pruning with rewinding: train the network, prune the smallest-magnitude
share of the weights still there in each layer (20% of fc1 and fc2, 10% of the output layer
fc3, as in the paper), set the survivors back to their values at initialisation (or, with
rewind_iteration k > 0, to their values after k iterations: Frankle et al. 2020), train again,
repeat. The control ("reinit") trains the same masks from weights drawn afresh.

Round r's mask comes from the trained weights of round r - 1 of the rewound chain of the same
seed; everything else about a training is fixed by its TicketOptions, so a training is a pure
function of (options, masks): ticket() gives the same bits in any process on any machine.
So the study runs in waves: wave r holds round r of every seed, rewound and reinitialised, all
independent of each other (2 x seeds trainings per wave for the workers to share).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, fields
from functools import lru_cache
from pathlib import Path

import numpy as np

from tinyprune.data.mnist import load_mnist
from tinyprune.experiments.points import Point, PointStore
from tinyprune.experiments.runner import Failure, Workers
from tinyprune.experiments.seeds import mean_std
from tinyprune.nn.layers import Param
from tinyprune.nn.model import Sequential, lenet_300_100
from tinyprune.nn.optim import MaskedAdam
from tinyprune.prune.masks import apply_masks, keep_mask
from tinyprune.train.loop import evaluate
from tinyprune.train.steps import Split, StepsResult, train_steps

# Share of the weights still there that each round prunes, per layer (Frankle & Carbin, Fig. 2).
PRUNE_RATES = {"fc1.weight": 0.2, "fc2.weight": 0.2, "fc3.weight": 0.1}
KINDS = ("rewind", "reinit")


@dataclass(frozen=True)
class Training:
    """How every network of the study is trained."""

    iterations: int = 5000  # training iterations, counted from 0 even for a rewound ticket
    batch_size: int = 60
    lr: float = 1.2e-3  # Adam's learning rate, constant
    eval_every: int = 100  # iterations between two measurements of the validation loss
    rewind_iteration: int = 0  # k: rewind to the weights after k iterations (0: to the init)
    validation: int = 5000  # the last images of the training set, held out
    limit: int | None = None  # train on the first `limit` of the other images only


@dataclass(frozen=True, kw_only=True)
class TicketOptions(Training):
    """Everything that decides one training of the study (the JSON of its result keeps them)."""

    seed: int  # the initial weights and the order of the batches
    kind: str  # "rewind": the winning-ticket chain; "reinit": its masks, weights drawn afresh
    round: int  # 0 is the dense network; round r has been pruned r times

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"kind must be one of {', '.join(KINDS)}, got {self.kind!r}")
        if self.kind == "reinit" and self.round == 0:
            raise ValueError("round 0 is the dense network: there is no mask to reinitialise")
        if not 0 <= self.rewind_iteration < self.iterations:
            raise ValueError(
                f"rewind_iteration must be in [0, iterations), got {self.rewind_iteration}"
            )


@lru_cache(maxsize=2)
def lottery_data(
    data_dir: str | None, validation: int, limit: int | None
) -> tuple[Split, Split, Split]:
    """(train, validation, test): the last `validation` training images are held out for
    the validation loss; the test set is complete. Loaded once per process."""
    data = load_mnist(data_dir)
    n = len(data.train_images) - validation
    if n < 1:
        raise ValueError(f"validation {validation} leaves no training images")
    stop = n if limit is None else min(limit, n)
    return (
        Split(data.train_images[:stop], data.train_labels[:stop]),
        Split(data.train_images[n:], data.train_labels[n:]),
        Split(data.test_images, data.test_labels),
    )


def next_masks(
    params: dict[str, Param], rates: dict[str, float] = PRUNE_RATES
) -> dict[str, np.ndarray]:
    """Masks (bool) that prune round(rate x remaining) more weights of each layer, those of
    smallest |w|; weights already pruned stay pruned."""
    masks = {}
    for name, rate in rates.items():
        p = params[name]
        alive = p.value.size if p.mask is None else int(p.mask.sum())
        score = np.abs(p.value) if p.mask is None else np.where(p.mask, np.abs(p.value), -np.inf)
        masks[name] = keep_mask(score, p.value.size - alive + int(round(rate * alive)))
    return masks


def reinit_seed(seed: int, round_no: int) -> int:
    """The seed of the weights drawn afresh for round `round_no`: new for every round."""
    return int(np.random.SeedSequence([seed, round_no, 1]).generate_state(1)[0])


def remaining(model: Sequential) -> dict[str, float]:
    """Share of each prunable layer's weights that are not pruned, and "total"."""
    counts = {
        name: (p.value.size if p.mask is None else int(p.mask.sum()), p.value.size)
        for name, p in model.prunable().items()
    }
    shares = {name.removesuffix(".weight"): kept / size for name, (kept, size) in counts.items()}
    shares["total"] = sum(k for k, _ in counts.values()) / sum(s for _, s in counts.values())
    return shares


def _start(options: TicketOptions, train: Split, val: Split) -> tuple[Sequential, int]:
    """The network before its masks are applied, and the iteration it starts at."""
    o = options
    if o.kind == "reinit":
        return lenet_300_100(reinit_seed(o.seed, o.round)), 0
    model = lenet_300_100(o.seed)
    if o.round == 0 or o.rewind_iteration == 0:
        return model, 0
    # The dense network's first k iterations, as round 0 took them.
    _train(model, o, train, val, start=0, stop=o.rewind_iteration, every=o.rewind_iteration)
    return model, o.rewind_iteration


def _train(
    model: Sequential, o: TicketOptions, train: Split, val: Split, start: int, stop: int, every: int
) -> StepsResult:
    """Iterations start..stop-1 as every training of the study takes them: Adam at o.lr,
    batches of o.batch_size in the order o.seed gives; the validation loss every `every`."""
    optimizer = MaskedAdam(model.params(), o.lr)
    return train_steps(model, optimizer, train, val, start, stop, o.batch_size, o.seed, every)


def ticket(options: dict, masks: dict[str, np.ndarray] | None, data_dir: str | None = None) -> dict:
    """Train one network of the study: options (the fields of TicketOptions), masks (None for
    round 0) -> its result: weights remaining, early-stopping iteration, test accuracy at the
    end and at that iteration, the validation curve, and under "arrays" the masks of the next
    round (rewind only)."""
    began = time.perf_counter()
    o = TicketOptions(**options)
    train, val, test = lottery_data(data_dir, o.validation, o.limit)
    model, start = _start(o, train, val)
    apply_masks(model.params(), {name: m.astype(bool) for name, m in (masks or {}).items()})
    steps = _train(model, o, train, val, start, stop=o.iterations, every=o.eval_every)
    test_loss, test_accuracy = evaluate(model, test.images, test.labels)
    result = {
        "options": asdict(o),
        "remaining": remaining(model),
        "test_loss": test_loss,
        "test_accuracy": test_accuracy,
        "early_stop_iteration": steps.best_iteration,
        "val_loss_min": min(c["val_loss"] for c in steps.curve),
        "curve": steps.curve,
    }
    if o.kind == "rewind":
        result["arrays"] = next_masks(model.prunable())
    model.load_state(steps.best_state)  # masks stay
    result["early_stop_test_accuracy"] = evaluate(model, test.images, test.labels)[1]
    result["seconds"] = time.perf_counter() - began
    return result


@dataclass(frozen=True, kw_only=True)
class LotteryConfig(Training):
    """The whole study: the training all its networks share, its seeds and rounds, and where
    the trainings run."""

    out: Path
    seeds: tuple[int, ...] = (0, 1, 2)
    rounds: int = 12
    reinit: bool = True
    data_dir: str | None = None
    jobs: int = 1
    scheduler: object = None  # a Dask scheduler's address (or Client); None: local

    def point(self, seed: int, kind: str, round_no: int, masks) -> Point:
        training = {f.name: getattr(self, f.name) for f in fields(Training)}
        options = TicketOptions(seed=seed, kind=kind, round=round_no, **training)
        return Point(f"seed{seed}-{kind}-round{round_no}", asdict(options), (masks,))


@dataclass
class LotteryRun:
    results: dict[str, dict]  # point name -> ticket()'s result
    failures: list[Failure]
    skipped: list[str]  # points whose masks were lost to a failure
    ran: int


def run_lottery(
    config: LotteryConfig, report: Callable[[Point, dict], None] | None = None
) -> LotteryRun:
    """Run (or resume: finished trainings are read from out/points) the whole study."""
    store = PointStore(config.out / "points")
    run = LotteryRun({}, [], [], 0)
    masks: dict[int, object] = {seed: None for seed in config.seeds}
    with Workers(config.jobs, config.scheduler) as workers:
        for round_no in range(config.rounds + 1):
            kinds = ("rewind", "reinit") if config.reinit and round_no else ("rewind",)
            points = []
            for seed in config.seeds:
                for kind in kinds:
                    if round_no and masks[seed] is None:
                        run.skipped.append(f"seed{seed}-{kind}-round{round_no}")
                    else:
                        points.append(config.point(seed, kind, round_no, masks[seed]))
            outcome = workers.run(ticket, points, store, {"data_dir": config.data_dir}, report)
            run.results.update(outcome.results)
            run.failures += outcome.failures
            run.ran += outcome.ran
            for seed in config.seeds:
                chain = outcome.results.get(f"seed{seed}-rewind-round{round_no}")
                masks[seed] = None if chain is None else chain.pop("arrays")
    return run


def summary(results: dict[str, dict]) -> list[dict]:
    """One row per (kind, round): weights remaining and, over seeds, {"mean", "std", "n"} of
    test accuracy at the end, test accuracy at the early-stopping iteration, and that
    iteration. Round 0 (dense) is listed under "rewind"."""
    groups: dict[tuple[str, int], list[dict]] = {}
    for r in results.values():
        groups.setdefault((r["options"]["kind"], r["options"]["round"]), []).append(r)
    rows = []
    for (kind, round_no), group in sorted(groups.items(), key=lambda kv: (kv[0][1], kv[0][0])):
        rows.append(
            {
                "kind": kind,
                "round": round_no,
                "remaining": group[0]["remaining"]["total"],
                "seeds": sorted(r["options"]["seed"] for r in group),
                **{
                    key: mean_std([r[key] for r in group])
                    for key in ("test_accuracy", "early_stop_test_accuracy", "early_stop_iteration")
                },
            }
        )
    return rows
