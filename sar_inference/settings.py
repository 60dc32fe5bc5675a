"""How a model predicts whole tiles and scenes: sliding window and test-time augmentation settings."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, fields, replace

import torch
from torch import Tensor

from sar_inference.engine import Blend, Flip, tta_probs


@dataclass(frozen=True)
class InferenceConfig:
    """How a model predicts whole tiles: sliding window and test-time augmentation."""

    window: int = 512
    stride: int = 256
    batch_size: int = 4
    """Windows per forward pass."""
    whole_tile: bool = False
    """Predict each tile (each TTA view) in one forward pass, without windows (window and stride unused), as
    the contest baseline does."""
    scales: tuple[float, ...] = (1.0,)
    """Reference: (0.5, 0.75, 1.0, 1.25, 1.5, 1.75)."""
    flips: tuple[Flip, ...] = ("none",)
    """Reference: ("none", "h", "v"); the contest baseline: ("none", "h", "v", "hv")."""
    blend: Blend = "mean"

    def probs(self, model: Callable[[Tensor], Tensor], image: Tensor, num_classes: int) -> Tensor:
        """(num_classes, H, W) probabilities of one normalised (C, H, W) image with these settings."""
        return tta_probs(
            model,
            image,
            num_classes,
            window=None if self.whole_tile else self.window,
            stride=self.stride,
            scales=self.scales,
            flips=self.flips,
            batch_size=self.batch_size,
            blend=self.blend,
        )


@dataclass(frozen=True)
class InferenceOverrides:
    """What ``map`` and ``submit`` change in a checkpoint's inference settings; None keeps the checkpoint's."""

    window: int | None = None
    """Sliding-window side in pixels."""
    stride: int | None = None
    """Step between windows."""
    batch_size: int | None = None
    """Windows per forward pass."""
    whole_tile: bool | None = None
    """Predict each tile in one forward pass, without windows."""
    scales: tuple[float, ...] | None = None
    """TTA scales (reference [0.5, 0.75, 1.0, 1.25, 1.5, 1.75])."""
    flips: tuple[Flip, ...] | None = None
    """TTA flips among none, h, v, hv (reference [none, h, v])."""
    blend: Blend | None = None
    """Window blending, mean or gaussian."""

    def apply(self, base: InferenceConfig) -> InferenceConfig:
        """``base`` with every field given here replaced."""
        given = {f.name: getattr(self, f.name) for f in fields(self) if getattr(self, f.name) is not None}
        return replace(base, **{k: tuple(v) if isinstance(v, list) else v for k, v in given.items()})


# Registered (also under its path before the package split) for torch.load(weights_only=True): checkpoints
# of modules built in Python hold this object as a hyperparameter.
torch.serialization.add_safe_globals([InferenceConfig, (InferenceConfig, "lightning_modules.base.InferenceConfig")])
