"""Types for argparse options that reject a bad value with one line (exit status 2)."""

from __future__ import annotations

import argparse
import math


def positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def non_negative_int(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {value}")
    return value


def positive_float(text: str) -> float:
    value = float(text)
    if not 0 < value < math.inf:  # also refuses nan and inf
        raise argparse.ArgumentTypeError(f"must be greater than 0 and finite, got {text}")
    return value


def non_negative_float(text: str) -> float:
    value = float(text)
    if not 0 <= value < math.inf:
        raise argparse.ArgumentTypeError(f"must be 0 or more and finite, got {text}")
    return value


def fraction(text: str) -> float:
    value = float(text)
    if not 0 <= value < 1:
        raise argparse.ArgumentTypeError(f"must be in [0, 1), got {text}")
    return value


def numbers(text: str) -> tuple[float, ...]:
    """'0.5,0.9' -> (0.5, 0.9), or the error argparse prints."""
    try:
        return tuple(float(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected numbers separated by commas, got {text!r}"
        ) from None


def sparsity_list(text: str) -> list[float]:
    """'0.5,0.9' -> [0.5, 0.9], each in [0, 1)."""
    values = list(numbers(text))
    if not all(0 <= v < 1 for v in values):
        raise argparse.ArgumentTypeError(f"each sparsity must be in [0, 1), got {text}")
    return values


def seed_list(text: str) -> tuple[int, ...]:
    """'0,1,2' -> (0, 1, 2); '0-4' -> (0, 1, 2, 3, 4); no seed twice."""
    seeds: list[int] = []
    for part in text.split(","):
        first, _, last = (s.strip() for s in part.partition("-"))
        if not (first.isdigit() and (last or first).isdigit() and int(last or first) >= int(first)):
            raise argparse.ArgumentTypeError(
                f"expected whole numbers separated by commas, or ranges such as 0-4, got {text!r}"
            )
        seeds += range(int(first), int(last or first) + 1)
    if len(set(seeds)) != len(seeds):
        raise argparse.ArgumentTypeError(f"a seed is repeated in {text}")
    return tuple(seeds)


def float_list(text: str) -> tuple[float, ...]:
    """'1e-2,2e-3' -> (0.01, 0.002), each at least 0 and finite."""
    values = numbers(text)
    if not all(0 <= v < math.inf for v in values):
        raise argparse.ArgumentTypeError(f"each must be at least 0 and finite, got {text}")
    return values
