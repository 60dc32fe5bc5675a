"""Tests of the shared array helpers."""

from __future__ import annotations

import numpy as np
import pytest

from sar_synthetic.arrays import resample, resample_label


@pytest.mark.parametrize("native", [20, 40, 90])
def test_resampled_image_and_label_stay_aligned(native: int) -> None:
    label = np.zeros((native, native), np.uint8)
    label[:, native // 2 :] = 3
    image = (label[None] * 80.0).astype(np.float32)  # a step edge on the class boundary
    size = 64
    label_out = resample_label(label, size)
    image_out = resample(image, size)[0]
    assert label_out.shape == image_out.shape == (size, size)
    assert set(np.unique(label_out)) == {0, 3}
    label_edge = np.argmax(label_out[size // 2] == 3)
    image_edge = np.argmax(image_out[size // 2] >= 120)  # half-way up the step
    assert abs(int(label_edge) - int(image_edge)) <= 1
