"""Summaries over seeds: the mean and the spread of one number measured once per seed, and of
a run's headline numbers over the runs of `python -m tinyprune.run --seeds`."""

from __future__ import annotations

import json
import math
from pathlib import Path


def mean_std(values: list[float]) -> dict:
    """{"mean", "std", "n"}: std is the sample standard deviation (n - 1 in the denominator),
    0.0 for a single value."""
    if not values:
        raise ValueError("no values to summarise")
    n = len(values)
    mean = math.fsum(values) / n
    std = math.sqrt(math.fsum((v - mean) ** 2 for v in values) / (n - 1)) if n > 1 else 0.0
    return {"mean": mean, "std": std, "n": n}


def format_mean_std(summary: dict, scale: float = 1.0, digits: int = 2) -> str:
    """'98.12 ± 0.05' (scale=100 for a fraction shown in %); a single value without ±."""
    text = f"{scale * summary['mean']:.{digits}f}"
    return text if summary["n"] == 1 else f"{text} ± {scale * summary['std']:.{digits}f}"


def headlines(folder: Path) -> dict[str, float | None]:
    """A run's headline numbers, from the result.json and results.json in its folder."""
    dense, r = (json.loads((folder / f).read_text()) for f in ("result.json", "results.json"))
    return {
        "dense accuracy": dense["test_accuracy"],
        "pruned accuracy": r["after_prune"]["test_accuracy"],  # None: agp prunes as it tunes
        "fine-tuned accuracy": r["test_accuracy"],
        "int8 accuracy": r["int8_test_accuracy"],
        "shared.tpz accuracy": r["shared"]["file_accuracy"],
        "shared.tpz bytes": r["shared"]["file_bytes"],
        "pruned.tpz bytes": r["bytes"]["compressed"],
    }


def seeds_summary(per_seed: dict[int, dict]) -> dict:
    """per_seed ({seed: headlines}) and each number's mean_std over the seeds (if never None)."""
    values = {n: [h[n] for h in per_seed.values()] for n in next(iter(per_seed.values()))}
    summary = {n: mean_std(v) for n, v in values.items() if None not in v}
    return {"seeds": list(per_seed), "per_seed": per_seed, "summary": summary}


def format_seeds_table(summary: dict) -> str:
    """seeds_summary's table: a row per number, its mean ± std, each seed's (accuracies in %)."""
    lines = [f"{'mean ± std':>37}" + "".join(f"{f'seed {s}':>10}" for s in summary["seeds"])]
    for name, stats in summary["summary"].items():
        scale, digits = (1, 0) if "bytes" in name else (100, 2)
        seeds = "".join(f"{scale * h[name]:10.{digits}f}" for h in summary["per_seed"].values())
        lines.append(f"{name:20} {format_mean_std(stats, scale, digits):>16}{seeds}")
    return "\n".join(lines)
