"""The input transform of a task: how 8-bit pixels become network input, saved with the task's checkpoint.

Every model of this project reads 8-bit pixels (0..255): the SAR amplitude of OpenEarthMap-SAR as
distributed, or 8-bit optical RGB. Other SAR data is converted to that first
(:mod:`datamodules.sar_scaling`). The task owns this transform, so a checkpoint alone says how to
feed its network; it has no Lightning dependency, so the inference tools use it as it is.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
from torch import Tensor

NormalisationMode = Literal["divide_255", "imagenet", "custom"]
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class InputTransform:
    """How a task turns raw 8-bit pixels into network input, and the pixel sizes it was trained for.

    Modes: ``divide_255`` (the contest baseline: x / 255), ``imagenet`` (x / 255 then ImageNet
    mean/std, as the reference code feeds SAR), ``custom`` (``(x - mean) / std`` with mean/std in
    raw pixel units, one value per network input channel). A 1-band input is replicated to the
    network's input channels.
    """

    normalisation: NormalisationMode = "divide_255"
    mean: tuple[float, ...] | None = None
    """Per-channel mean in pixel units (``custom`` only)."""
    std: tuple[float, ...] | None = None
    """Per-channel standard deviation in pixel units (``custom`` only)."""
    training_gsd: tuple[float, float] = (0.15, 0.5)
    """Pixel sizes (metres) of the training data (OEM-SAR: 0.15-0.5 m); ``map`` warns far outside them."""

    def statistics(self, channels: int) -> tuple[Tensor, Tensor]:
        """(mean, std) as (1, channels, 1, 1) float32 tensors in pixel units.

        Raises:
            ValueError: ``custom`` without one mean and std per channel, or ``imagenet`` for other
                than 1 or 3 channels.
        """
        if self.normalisation == "custom":
            if self.mean is None or self.std is None:
                raise ValueError("normalisation 'custom' needs both mean and std")
            if len(self.mean) != channels or len(self.std) != channels:
                raise ValueError(f"custom mean/std need {channels} value(s) each, got {self.mean} and {self.std}")
            mean, std = torch.tensor(self.mean), torch.tensor(self.std)
        elif self.normalisation == "imagenet":
            if channels not in (1, 3):
                raise ValueError(f"normalisation 'imagenet' needs 1 or 3 input channels, got {channels}")
            mean = torch.tensor(IMAGENET_MEAN[:channels]) * 255.0
            std = torch.tensor(IMAGENET_STD[:channels]) * 255.0
        else:
            mean, std = torch.zeros(channels), torch.full((channels,), 255.0)
        return mean.float().view(1, -1, 1, 1), std.float().view(1, -1, 1, 1)

    def normalise(self, images: Tensor, channels: int) -> Tensor:
        """Normalise an (N, C, H, W) batch of raw pixels to float32 input of a ``channels``-channel network.

        Raises:
            ValueError: the images have more than one channel and not ``channels``.
        """
        if images.shape[1] == 1 and channels != 1:
            images = images.expand(-1, channels, -1, -1)
        elif images.shape[1] != channels:
            raise ValueError(f"images have {images.shape[1]} channel(s) but the network takes {channels}")
        mean, std = self.statistics(channels)
        x = images.float()
        return (x - mean.to(x.device)) / std.to(x.device)


OPTICAL_INPUT = InputTransform(normalisation="imagenet", training_gsd=(0.25, 0.5))
"""Stage 1's default: 8-bit RGB with ImageNet statistics, as the reference; OpenEarthMap's 0.25-0.5 m."""

# Checkpoints of tasks built in Python hold this object as a hyperparameter (see networks.py).
torch.serialization.add_safe_globals([InputTransform])
