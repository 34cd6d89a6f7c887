"""Sweeps and sensitivity analyses over several seeds, as points for many workers.

Each seed has its own trained dense model (a point of its own, then kept in the dense cache as
before); each (seed, schedule, sparsity) of a sweep is a point that prunes and fine-tunes a copy
of it. The dense weights travel with the point, so a worker needs only the MNIST files.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from functools import lru_cache
from pathlib import Path

from tinyprune.config import DataConfig, PruneConfig, TrainConfig
from tinyprune.data.mnist import Mnist, load_data
from tinyprune.experiments.points import Point, PointStore
from tinyprune.experiments.runner import Failure, Workers
from tinyprune.experiments.seeds import mean_std
from tinyprune.experiments.study import layer_sensitivity, sweep_point
from tinyprune.nn.model import MODELS, Sequential
from tinyprune.train.dense_cache import cache_name, train_dense
from tinyprune.train.loop import evaluate


@dataclass(frozen=True)
class SeedsConfig:
    """What every seed shares, and where the points run."""

    data: DataConfig
    train: TrainConfig  # its seed is replaced by each of `seeds`
    seeds: tuple[int, ...]
    out: Path
    cache_dir: Path
    jobs: int = 1
    scheduler: object = None

    @property
    def data_dir(self) -> str | None:
        """--data-dir as the points' workers get it (they may run on other machines)."""
        return None if self.data.data_dir is None else str(self.data.data_dir)


_load_data = lru_cache(maxsize=2)(load_data)  # a DataConfig is frozen, so it can be a key


def _data(data_dir: str | None, options: dict) -> Mnist:
    """The data set of a point, loaded once per worker process."""
    return _load_data(DataConfig(None if data_dir is None else Path(data_dir), **options))


def _model(options: dict, state: dict) -> Sequential:
    model = MODELS[options["train"]["model"]](options["train"]["seed"])
    model.load_state(state)
    return model


def dense_task(options: dict, data_dir: str | None = None) -> dict:
    """Point: train the dense model of options["train"] -> test accuracy and its weights."""
    data = _data(data_dir, options["data"])
    model = train_dense(TrainConfig(**options["train"]), data)
    _, accuracy = evaluate(model, data.test_images, data.test_labels)
    return {"test_accuracy": accuracy, "arrays": model.state()}


def sweep_task(options: dict, dense: dict, data_dir: str | None = None) -> dict:
    """Point: prune a copy of the dense weights as options["prune"] says, fine-tune, measure."""
    data = _data(data_dir, options["data"])
    train, prune = TrainConfig(**options["train"]), PruneConfig(**options["prune"])
    return {
        "seed": train.seed,
        "schedule": prune.schedule,
        **sweep_point(_model(options, dense), data, train, prune),
    }


def dense_models(
    config: SeedsConfig, workers: Workers, train_images: int, failures: list[Failure]
) -> dict[int, tuple[dict, float]]:
    """Seed -> (dense weights, test accuracy): from the cache, else trained by the workers
    (all missing seeds at once) and then cached."""
    models, todo, paths = {}, [], {}
    for seed in config.seeds:
        train = replace(config.train, seed=seed)
        paths[seed] = config.cache_dir / cache_name(train, train_images, config.data.dataset)
        options = {"train": asdict(train), "data": config.data.options()}
        if paths[seed].exists():
            model = MODELS[train.model](seed)
            model.load(paths[seed])
            data = _data(config.data_dir, options["data"])
            accuracy = evaluate(model, data.test_images, data.test_labels)[1]
            models[seed] = (model.state(), accuracy)
            print(f"dense {train.model} seed {seed} loaded from {paths[seed]}: {accuracy:.2%}")
        else:
            print(
                f"training dense {train.model} seed {seed} ({train.epochs} epochs); it is "
                f"cached in {paths[seed]}",
                flush=True,
            )
            todo.append(Point(f"dense-seed{seed}", options))
    outcome = workers.run(
        dense_task, todo, PointStore(config.out / "points"), {"data_dir": config.data_dir}
    )
    failures += outcome.failures
    for p in todo:
        if p.name in outcome.results:
            seed, result = p.options["train"]["seed"], outcome.results[p.name]
            _model(p.options, result["arrays"]).save(paths[seed])
            models[seed] = (result["arrays"], result["test_accuracy"])
            print(
                f"dense {p.options['train']['model']} seed {seed}: test accuracy "
                f"{result['test_accuracy']:.2%}"
            )
    return models


def sweep_points(
    config: SeedsConfig, prunes: list[PruneConfig], dense: dict[int, tuple[dict, float]]
) -> list[Point]:
    """A point per seed (that has a dense model) and pruning."""
    return [
        Point(
            f"seed{seed}-{p.schedule}-{p.sparsity:g}",
            {
                "train": asdict(replace(config.train, seed=seed)),
                "prune": asdict(p),
                "data": config.data.options(),
            },
            (dense[seed][0],),
        )
        for seed in config.seeds
        if seed in dense
        for p in prunes
    ]


def run_sweep(
    config: SeedsConfig, prunes: list[PruneConfig], train_images: int
) -> tuple[dict[int, float], list[dict], list[Failure]]:
    """-> (dense test accuracy per seed, every point's result in point order, failures)."""
    failures: list[Failure] = []
    with Workers(config.jobs, config.scheduler) as workers:
        dense = dense_models(config, workers, train_images, failures)
        points = sweep_points(config, prunes, dense)
        store, context = PointStore(config.out / "points"), {"data_dir": config.data_dir}
        outcome = workers.run(sweep_task, points, store, context, report=_report)
    failures += outcome.failures
    results = [outcome.results[p.name] for p in points if p.name in outcome.results]
    return {seed: acc for seed, (_, acc) in dense.items()}, results, failures


def _report(point: Point, result: dict) -> None:
    print(f"{point.name}: test accuracy {result['test_accuracy']:.2%}", flush=True)


def over_seeds(points: list[dict], key: str = "test_accuracy") -> list[dict]:
    """[{"sparsity", key: mean, "std", "n"}] per sparsity, summarising the seeds' points, and
    the first seed's "bytes" where points have them (file sizes differ little across seeds)."""
    by_sparsity: dict[float, list[dict]] = {}
    for p in points:
        by_sparsity.setdefault(p["sparsity"], []).append(p)
    rows = []
    for sparsity, group in by_sparsity.items():
        s = mean_std([p[key] for p in group])
        row = {"sparsity": sparsity, key: s["mean"], "std": s["std"], "n": s["n"]}
        rows.append(row | ({"bytes": group[0]["bytes"]} if "bytes" in group[0] else {}))
    return rows


def run_sensitivity(
    config: SeedsConfig, data: Mnist, sparsities: list[float]
) -> tuple[dict[int, float], dict[int, dict[str, list[dict]]], list[Failure]]:
    """-> (dense test accuracy per seed, each seed's layer_sensitivity, failures). The dense
    models train on the workers; pruning one layer and evaluating is quick, so it runs here."""
    failures: list[Failure] = []
    with Workers(config.jobs, config.scheduler) as workers:
        dense = dense_models(config, workers, len(data.train_images), failures)
    per_seed = {}
    for seed, (state, _) in sorted(dense.items()):
        model = MODELS[config.train.model](seed)
        model.load_state(state)
        print(f"seed {seed}:")
        per_seed[seed] = layer_sensitivity(model, data, sparsities)
    return {seed: acc for seed, (_, acc) in dense.items()}, per_seed, failures


def dense_summary(config: SeedsConfig, accuracies: dict[int, float]) -> dict:
    """The dense models for the JSON: what they were trained with ("dense"), and their test
    accuracies: mean, std and each seed's."""
    s = mean_std(list(accuracies.values()))
    return {
        "dense": {**asdict(config.train), **config.data.options()},
        "dense_accuracy": s["mean"],
        "dense_accuracy_std": s["std"],
        "dense_accuracies": [
            {"seed": k, "test_accuracy": v} for k, v in sorted(accuracies.items())
        ],
    }
