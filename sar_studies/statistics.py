"""Scores over training seeds: mean and spread, and seed-by-seed differences between variants."""

from __future__ import annotations

import itertools
import statistics
from collections.abc import Sequence


def mean_and_std(values: Sequence[float]) -> tuple[float, float]:
    """Mean and sample standard deviation of ``values`` (0 for a single value)."""
    spread = statistics.stdev(values) if len(values) > 1 else 0.0
    return statistics.mean(values), spread


def format_mean_std(values: Sequence[float]) -> str:
    """``"mean ± std"`` of ``values`` with three decimals."""
    mean, spread = mean_and_std(values)
    return f"{mean:.3f} ± {spread:.3f}"


def seed_differences(targets: dict[str, list[float]]) -> list[tuple[str, str, list[float]]]:
    """Every pair ``(a, b)`` of variants with the seed-by-seed differences ``b - a`` of their target scores."""
    return [
        (a, b, [y - x for x, y in zip(target_a, target_b, strict=True)])
        for (a, target_a), (b, target_b) in itertools.combinations(targets.items(), 2)
    ]


def paired_differences(targets: dict[str, list[float]], seeds: list[int]) -> list[str]:
    """Lines comparing every pair of variants seed by seed on the target score."""
    lines = []
    for a, b, diffs in seed_differences(targets):
        wins = sum(d > 0 for d in diffs)
        per_seed = ", ".join(f"{d:+.3f}" for d in diffs)
        lines.append(
            f"{b} - {a}: {format_mean_std(diffs)} (seeds {seeds}: {per_seed}; better on {wins} of {len(diffs)})"
        )
    return lines
