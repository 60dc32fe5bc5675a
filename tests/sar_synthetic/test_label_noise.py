"""Tests of the label noise: the stand-in for the official pseudo-labels."""

from __future__ import annotations

import numpy as np

from sar_synthetic.label_noise import corrupt_labels
from sar_synthetic.scene import generate_scene


def test_default_label_noise_agreement_matches_the_documented_range() -> None:
    rng = np.random.default_rng(0)
    agreements = []
    for _ in range(6):
        label = generate_scene(rng, 256)
        agreements.append(np.mean(corrupt_labels(rng, label, 0.3) == label))
    assert 0.55 < np.mean(agreements) < 0.75
    stronger = corrupt_labels(np.random.default_rng(1), label, 0.8)
    assert np.mean(stronger == label) < agreements[-1]
