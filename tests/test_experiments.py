"""Points run on one process, several, or a Dask cluster on loopback: the same results, saved
as they finish, a failure reported with its options, an interrupted run resumed."""

import json
import os

import numpy as np
import pytest

from tinyprune.experiments.points import Point, PointStore
from tinyprune.experiments.runner import Workers, threads_per_worker
from tinyprune.experiments.seeds import format_mean_std, mean_std

CALLS = []  # points run in this process (jobs=1 runs them here)


def noisy_point(options: dict, scale: float = 1.0) -> dict:
    """A pure function of its options, with arrays; fails on request."""
    CALLS.append(options["seed"])
    if options.get("fail"):
        raise ValueError(f"point {options['seed']} asked to fail")
    rng = np.random.default_rng(options["seed"])
    values = rng.standard_normal(1000).astype(np.float32) * scale
    return {"sum": float(values.sum()), "arrays": {"values": values}}


def worker_threads(options: dict, *inputs) -> dict:
    import numba

    return {"numba_threads": numba.get_num_threads(), "env": os.environ["NUMBA_NUM_THREADS"]}


def points(n: int, **extra) -> list[Point]:
    return [Point(f"seed{s}", {"seed": s, **extra}, (2.0,)) for s in range(n)]


def test_mean_std():
    s = mean_std([0.97, 0.98, 0.99])
    assert s["n"] == 3 and s["mean"] == pytest.approx(0.98) and s["std"] == pytest.approx(0.01)
    assert format_mean_std(s, 100) == "98.00 ± 1.00"
    assert format_mean_std(mean_std([0.5]), 100) == "50.00"
    with pytest.raises(ValueError):
        mean_std([])


def test_store_keeps_results_and_arrays_under_a_name_of_the_options(tmp_path):
    store = PointStore(tmp_path)
    p = Point("a", {"seed": 1, "lr": 0.1})
    assert store.load(p) is None
    store.save(p, {"x": 0.5, "arrays": {"m": np.arange(3)}})
    loaded = store.load(p)
    assert loaded["x"] == 0.5 and list(loaded["arrays"]["m"]) == [0, 1, 2]
    assert store.load(Point("a", {"seed": 1, "lr": 0.2})) is None  # other options: not done
    assert not list(tmp_path.glob("*.tmp"))


def test_one_job_runs_here_reports_a_failure_and_keeps_the_others(tmp_path):
    store = PointStore(tmp_path)
    todo = points(3) + [Point("bad", {"seed": 9, "fail": True})]
    CALLS.clear()
    with Workers(jobs=1) as workers:
        outcome = workers.run(noisy_point, todo, store)
    assert (
        CALLS == [0, 1, 2, 9]
        and outcome.ran == 3
        and sorted(outcome.results) == ["seed0", "seed1", "seed2"]
    )
    [failure] = outcome.failures
    assert "point bad failed; its options: {'seed': 9, 'fail': True}" in failure.describe()
    assert "ValueError: point 9 asked to fail" in failure.describe()
    # Run again: the three saved points are read, only the failed one runs (and fails) again.
    CALLS.clear()
    with Workers(jobs=1) as workers:
        again = workers.run(noisy_point, todo, store)
    assert CALLS == [9] and again.ran == 0 and len(again.failures) == 1
    assert again.results["seed1"]["sum"] == outcome.results["seed1"]["sum"]


def saved(folder) -> dict:
    return {p.name: json.loads(p.read_text()) for p in sorted(folder.glob("*.json"))}


def test_two_local_jobs_give_the_same_bits_and_share_the_cores(tmp_path):
    with Workers(jobs=1) as workers:
        one = workers.run(noisy_point, points(4), PointStore(tmp_path / "one"))
    with Workers(jobs=2) as workers:
        two = workers.run(noisy_point, points(4), PointStore(tmp_path / "two"))
        threads = workers.run(worker_threads, points(2), PointStore(tmp_path / "threads"))
    assert saved(tmp_path / "one") == saved(tmp_path / "two")
    for name in one.results:
        np.testing.assert_array_equal(
            one.results[name]["arrays"]["values"], two.results[name]["arrays"]["values"]
        )
    expected = threads_per_worker(2)
    assert len(threads.results) == 2 and not threads.failures
    assert all(
        r["numba_threads"] == expected and r["env"] == str(expected)
        for r in threads.results.values()
    )


def test_threads_per_worker():
    assert threads_per_worker(1, cores=8) == 8
    assert threads_per_worker(3, cores=8) == 2
    assert threads_per_worker(4, cores=2) == 1


def test_a_dask_cluster_on_loopback_gives_the_same_bits(tmp_path):
    distributed = pytest.importorskip("dask.distributed", reason="pip install -e '.[cluster]'")
    with Workers(jobs=1) as workers:
        workers.run(noisy_point, points(3), PointStore(tmp_path / "here"))
    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1", dashboard_address=None
    ) as cluster:
        with Workers(scheduler=cluster.scheduler_address) as workers:
            todo = points(3) + [Point("bad", {"seed": 9, "fail": True})]
            outcome = workers.run(noisy_point, todo, PointStore(tmp_path / "dask"))
            threads = workers.run(worker_threads, points(1), PointStore(tmp_path / "threads"))
    assert saved(tmp_path / "here") == saved(tmp_path / "dask")
    assert "ValueError: point 9 asked to fail" in outcome.failures[0].describe()
    assert threads.results["seed0"]["numba_threads"] == threads_per_worker(2)
