"""Summaries over seeds: the mean and the spread of one number measured once per seed."""

from __future__ import annotations

import math


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
