"""Tests of the scene generator."""

from __future__ import annotations

import numpy as np

from sar_synthetic.arrays import resample_label
from sar_synthetic.scene import generate_scene


def test_a_scene_drawn_at_a_larger_scale_has_fewer_boundaries_per_pixel() -> None:
    def boundary_density(scale: float) -> float:
        densities = []
        for seed in range(4):
            scene = generate_scene(np.random.default_rng(seed), round(128 / scale))
            label = resample_label(scene, 128)
            densities.append(np.mean(label[:, 1:] != label[:, :-1]))
        return float(np.mean(densities))

    native, enlarged = boundary_density(1.0), boundary_density(2.5)
    assert enlarged < 0.6 * native
