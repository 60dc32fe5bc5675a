"""How a model predicts whole tiles and scenes: sliding window and test-time augmentation settings."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from sar_inference.engine import Blend, Flip


@dataclass(frozen=True)
class InferenceConfig:
    """How ``predict`` runs on whole tiles: sliding window, test-time augmentation ."""

    window: int = 512
    stride: int = 256
    batch_size: int = 4
    """Windows per forward pass."""
    scales: tuple[float, ...] = (1.0,)
    """Reference: (0.5, 0.75, 1.0, 1.25, 1.5, 1.75)."""
    flips: tuple[Flip, ...] = ("none",)
    """Reference: ("none", "h", "v")."""
    blend: Blend = "mean"


# Registered (also under its path before the package split) for torch.load(weights_only=True): checkpoints
# of modules built in Python hold this object as a hyperparameter.
torch.serialization.add_safe_globals([InferenceConfig, (InferenceConfig, "lightning_modules.base.InferenceConfig")])
