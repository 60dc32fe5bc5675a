"""The input transform a task owns: normalisation modes, band replication, refused settings."""

import pytest
import torch

from lightning_modules.input_transform import InputTransform
from lightning_modules.networks import NetworkConfig
from lightning_modules.sar_segmenter import SARSegmenter


def test_normalisation_modes() -> None:
    raw = torch.tensor([[[[0, 255]]]], dtype=torch.uint8)  # N=1, C=1, 1 x 2
    torch.testing.assert_close(InputTransform("divide_255").normalise(raw, 1), torch.tensor([[[[0.0, 1.0]]]]))
    replicated = InputTransform("imagenet").normalise(raw, 3)
    assert replicated.shape == (1, 3, 1, 2)
    torch.testing.assert_close(
        replicated[0, :, 0, 1], (1 - torch.tensor([0.485, 0.456, 0.406])) / torch.tensor([0.229, 0.224, 0.225])
    )
    custom = InputTransform("custom", mean=(100.0,), std=(50.0,)).normalise(raw, 1)
    torch.testing.assert_close(custom, torch.tensor([[[[-2.0, 3.1]]]]))


def test_inconsistent_settings_are_refused() -> None:
    with pytest.raises(ValueError, match="needs both mean and std"):
        InputTransform("custom").normalise(torch.zeros(1, 1, 2, 2), 1)
    with pytest.raises(ValueError, match="3 channel"):
        InputTransform("divide_255").normalise(torch.zeros(1, 3, 2, 2, dtype=torch.uint8), 1)
    with pytest.raises(ValueError, match="custom mean/std need 3"):  # a task refuses them when built
        SARSegmenter(network=NetworkConfig(in_channels=3), input=InputTransform("custom", mean=(1.0,), std=(2.0,)))
