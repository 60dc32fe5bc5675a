"""Tests of the synthetic data settings."""

from __future__ import annotations

import pytest

from sar_synthetic.config import SyntheticConfig


def test_invalid_config_is_rejected() -> None:
    with pytest.raises(ValueError, match="speckle_looks"):
        SyntheticConfig(speckle_looks=0)
    with pytest.raises(ValueError, match="nodata_test_fraction"):
        SyntheticConfig(nodata_test_fraction=1.5)
    with pytest.raises(ValueError, match="optical_resolution_range"):
        SyntheticConfig(optical_resolution_range=(0.4, 0.2))
    with pytest.raises(ValueError, match="optical_resolution_range"):
        SyntheticConfig(optical_resolution_range=(0.0, 0.2))
