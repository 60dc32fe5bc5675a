"""Mean and spread of a score over training seeds, as reported in BENCHMARKS.md."""

from __future__ import annotations

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
