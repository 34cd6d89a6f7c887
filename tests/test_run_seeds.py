"""`python -m tinyprune.run --seeds`: one run per seed in --out/seed-S, each the bits of --seed S
alone, and the headline numbers' mean ± std over them (experiments/seeds.py)."""

import json
import shutil

import numpy as np
import pytest
from helpers import results

from tinyprune.cli.run import main
from tinyprune.experiments.seeds import format_seeds_table, headlines, seeds_summary

TINY = ["--limit", "600", "--test-limit", "200", "--epochs", "1", "--finetune-epochs", "1"]
TINY += ["--warmup-steps", "0"]


@pytest.mark.parametrize(
    "seeds, message",
    [
        ("0,x", "expected whole numbers separated by commas, or ranges such as 0-4, got '0,x'"),
        ("4-2", "ranges such as 0-4, got '4-2'"),
        ("-1", "ranges such as 0-4, got '-1'"),
        ("0-2,2", "a seed is repeated in 0-2,2"),
    ],
)
def test_a_bad_seed_list_exits_2_saying_what_is_wrong(seeds, message, tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--seeds", seeds, "--out", str(tmp_path)])
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err
    assert not any(tmp_path.iterdir())  # nothing ran


def write_run(folder, rng, agp=False):
    """A run folder with result.json and results.json holding random headline numbers."""
    folder.mkdir()
    after_prune = None if agp else float(rng.random())
    results = {
        "after_prune": {"test_accuracy": after_prune},
        "test_accuracy": float(rng.random()),
        "int8_test_accuracy": float(rng.random()),
        "shared": {"file_accuracy": float(rng.random()), "file_bytes": int(rng.integers(9999))},
        "bytes": {"compressed": int(rng.integers(99999))},
    }
    (folder / "results.json").write_text(json.dumps(results))
    (folder / "result.json").write_text(json.dumps({"test_accuracy": float(rng.random())}))


def test_the_summary_is_numpys_mean_and_sample_std_of_each_runs_numbers(tmp_path):
    rng = np.random.default_rng(0)
    for seed in (3, 5, 7):
        write_run(tmp_path / f"seed-{seed}", rng, agp=seed == 7)
    summary = seeds_summary({s: headlines(tmp_path / f"seed-{s}") for s in (3, 5, 7)})
    saved = json.loads((tmp_path / "seed-5" / "results.json").read_text())
    assert summary["per_seed"][5]["shared.tpz bytes"] == saved["shared"]["file_bytes"]
    assert "pruned accuracy" not in summary["summary"]  # seed 7 (agp) has none
    assert len(summary["summary"]) == 6
    for name, stats in summary["summary"].items():
        values = [summary["per_seed"][s][name] for s in (3, 5, 7)]
        assert stats["n"] == 3
        assert stats["mean"] == pytest.approx(np.mean(values), rel=1e-12)
        assert stats["std"] == pytest.approx(np.std(values, ddof=1), rel=1e-12)
    table = format_seeds_table(summary).splitlines()
    assert table[0].split() == ["mean", "±", "std", "seed", "3", "seed", "5", "seed", "7"]
    fine_tuned = summary["summary"]["fine-tuned accuracy"]
    row = f"{100 * fine_tuned['mean']:.2f} ± {100 * fine_tuned['std']:.2f}"
    assert any(line.startswith("fine-tuned accuracy") and row in line for line in table)


@pytest.mark.slow
def test_seeds_run_each_as_alone_then_summarise_and_resume_goes_on(tmp_path, capsys):
    """Real MNIST, a tiny run per seed: seed 1 of `--seeds 0,1` is the bits of `--seed 1`
    alone; seeds.json holds each seed's numbers as its folder has them, and numpy's mean and
    sample std of them; with --resume, a complete seed is skipped and a missing one runs."""
    multi = tmp_path / "multi"
    assert main([*TINY, "--seeds", "0,1", "--out", str(multi)]) == 0
    out = capsys.readouterr().out
    assert main([*TINY, "--seed", "1", "--out", str(tmp_path / "alone")]) == 0
    assert results(multi / "seed-1") == results(tmp_path / "alone")
    summary = json.loads((multi / "seeds.json").read_text())
    assert summary["seeds"] == [0, 1] and format_seeds_table(summary) in out
    for seed in (0, 1):
        run, numbers = results(multi / f"seed-{seed}"), summary["per_seed"][str(seed)]
        assert run["result.json"]["seed"] == seed
        assert numbers["dense accuracy"] == run["result.json"]["test_accuracy"]
        assert numbers["fine-tuned accuracy"] == run["results.json"]["test_accuracy"]
    for name, stats in summary["summary"].items():
        values = [summary["per_seed"][s][name] for s in ("0", "1")]
        expected = {"mean": np.mean(values), "std": np.std(values, ddof=1), "n": 2}
        assert stats == pytest.approx(expected, rel=1e-12)
    shutil.rmtree(multi / "seed-1")  # as if interrupted before seed 1 started
    capsys.readouterr()
    assert main([*TINY, "--seeds", "0,1", "--out", str(multi), "--resume"]) == 0
    assert capsys.readouterr().out.count("is complete (see its results.json)") == 1
    assert results(multi / "seed-1") == results(tmp_path / "alone")
    assert json.loads((multi / "seeds.json").read_text()) == summary
