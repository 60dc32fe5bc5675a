"""Tests of the optical rendering: the OEM style, the OEM-SAR style and its resolution."""

from __future__ import annotations

import numpy as np
import pytest

from sar_synthetic.optical import oem_style, render_optical, sar_optical_style
from sar_synthetic.scene import generate_scene


def test_domain_gap_zero_renders_exactly_like_oem() -> None:
    label = generate_scene(np.random.default_rng(5), 128)
    oem = render_optical(np.random.default_rng(6), label, oem_style())
    no_gap = render_optical(np.random.default_rng(6), label, sar_optical_style(0.0, 0.1))
    gap = render_optical(np.random.default_rng(6), label, sar_optical_style(1.0, 0.35))
    assert np.array_equal(oem, no_gap)

    def sharpness(image: np.ndarray) -> float:
        return float(np.abs(np.diff(image.astype(float), axis=2)).mean())

    assert sharpness(gap) < 0.6 * sharpness(oem)  # lower effective resolution
    colour_shift = np.abs(gap.reshape(3, -1).mean(1) - oem.reshape(3, -1).mean(1)).max()
    assert colour_shift > 8  # another colour balance / season


def test_optical_resolution_is_drawn_per_tile_from_its_range() -> None:
    label = generate_scene(np.random.default_rng(5), 128)

    def sharpness(resolution: float) -> float:
        style = sar_optical_style(1.0, resolution)
        image = render_optical(np.random.default_rng(6), label, style)
        return float(np.abs(np.diff(image.astype(float), axis=2)).mean())

    assert sar_optical_style(1.0, 0.1).resolution_factor == pytest.approx(10.0)
    assert sar_optical_style(0.5, 0.25).resolution_factor == pytest.approx(2.5)
    assert sharpness(0.1) < sharpness(0.35) < sharpness(1.0)
