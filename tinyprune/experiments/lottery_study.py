"""The lottery-ticket study: every seed's chain of rewound tickets and its reinit controls,
run on many workers, summarised over seeds.

Round r of a seed needs the masks that round r - 1 of its rewound chain left, so the study runs
in waves: wave r holds round r of every seed, rewound and reinitialised, and those trainings
are independent of each other (2 x seeds of them per wave for the workers to share).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, fields
from pathlib import Path

from tinyprune.experiments.points import Point, PointStore
from tinyprune.experiments.runner import Failure, Workers
from tinyprune.experiments.seeds import mean_std
from tinyprune.prune.lottery import TicketOptions, ticket

# The TicketOptions that are the same for every training of a study.
TRAINING = tuple(f.name for f in fields(TicketOptions) if f.name not in ("seed", "kind", "round"))


@dataclass(frozen=True)
class LotteryConfig:
    out: Path
    seeds: tuple[int, ...] = (0, 1, 2)
    rounds: int = 12
    reinit: bool = True
    iterations: int = 5000
    batch_size: int = 60
    lr: float = 1.2e-3
    eval_every: int = 100
    rewind_iteration: int = 0
    validation: int = 5000
    limit: int | None = None
    data_dir: str | None = None
    jobs: int = 1
    scheduler: object = None  # a Dask scheduler's address (or Client); None: local

    def point(self, seed: int, kind: str, round_no: int, masks) -> Point:
        options = TicketOptions(seed, kind, round_no, **{k: getattr(self, k) for k in TRAINING})
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
