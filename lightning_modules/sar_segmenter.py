"""Stage 2: a SAR segmenter trained on noisy (pseudo-)labels with a noise-robust loss."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from datamodules.classes import BACKGROUND, PADDING
from lightning_modules.base import SegmentationTask
from lightning_modules.losses import build_loss
from lightning_modules.networks import NetworkConfig
from lightning_modules.optim import OptimConfig
from sar_inference.settings import InferenceConfig


@dataclass(frozen=True)
class LossConfig:
    """Weighted sum of losses; every term averages over pixels whose label is not ``ignore_index``."""

    sce_weight: float = 1.0
    lovasz_weight: float = 1.0
    ce_weight: float = 0.0
    sce_alpha: float = 1.0
    sce_beta: float = 2.0
    sce_A: float = -4.0
    """log 0 of the clamped one-hot label in the reverse cross-entropy term."""
    ignore_index: int = BACKGROUND
    """Label value carrying no supervision (background, disagreement between models, padding)."""


torch.serialization.add_safe_globals([LossConfig])  # see base.py


class SARSegmenter(SegmentationTask):
    """Segments SAR tiles into the 9 classes; trained on official labels or pseudo-labels.

    Args:
        network: the network (default: U-Net ResNet-18, 1 input channel, from scratch).
        optim: optimiser and schedule (default: the reference AdamW, head lr x10, warm-up + poly).
        loss: the loss mix (default: symmetric CE + Lovasz-softmax, weights 1 and 1, ignore 0).
        inference: sliding window and test-time augmentation of ``predict``.
        num_overlays: validation images logged as image | prediction | label overlays.
    """

    def __init__(
        self,
        network: NetworkConfig = NetworkConfig(),
        optim: OptimConfig = OptimConfig(),
        loss: LossConfig = LossConfig(),
        inference: InferenceConfig = InferenceConfig(),
        num_overlays: int = 4,
    ) -> None:
        super().__init__(network, optim, inference, num_overlays)
        self.save_hyperparameters()
        self.loss_config = loss
        self.criterion = build_loss(
            ce_weight=loss.ce_weight,
            sce_weight=loss.sce_weight,
            lovasz_weight=loss.lovasz_weight,
            sce_alpha=loss.sce_alpha,
            sce_beta=loss.sce_beta,
            sce_A=loss.sce_A,
            ignore_index=loss.ignore_index,
        )

    def _supervision(self, mask: torch.Tensor) -> torch.Tensor:
        """Labels for the loss: padding carries no supervision either."""
        return mask.masked_fill(mask == PADDING, self.loss_config.ignore_index)

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> torch.Tensor:
        logits = self(batch["image"])
        total, terms = self.criterion(logits, self._supervision(batch["mask"]))
        batch_size = logits.shape[0]
        self.log("train/loss", total, prog_bar=True, batch_size=batch_size)
        self.log_dict({f"train/loss_{k}": v for k, v in terms.items()}, batch_size=batch_size)
        return total

    def eval_loss(self, logits: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return self.criterion(logits, self._supervision(mask))[0]
