"""The mean ± std reported over training seeds in BENCHMARKS.md."""

import pytest

from sar_studies.statistics import format_mean_std, mean_and_std


def test_the_spread_is_the_sample_standard_deviation() -> None:
    # (1, 2, 6): mean 3, squared deviations 4 + 1 + 9 = 14, over n - 1 = 2 -> sqrt(7).
    mean, spread = mean_and_std([1.0, 2.0, 6.0])
    assert mean == pytest.approx(3.0)
    assert spread == pytest.approx(7.0**0.5)


def test_one_seed_has_no_spread_and_the_format_has_three_decimals() -> None:
    assert mean_and_std([0.25]) == (0.25, 0.0)
    assert format_mean_std([0.1, 0.2]) == "0.150 ± 0.071"
