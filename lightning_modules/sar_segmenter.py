"""Stage 2: a SAR segmenter trained on noisy (pseudo-)labels with a noise-robust loss."""

from __future__ import annotations

from typing import Any, ClassVar

import torch

from datamodules.classes import PADDING
from lightning_modules.base import SegmentationTask
from lightning_modules.input_transform import InputTransform
from lightning_modules.losses import LossConfig, build_loss
from lightning_modules.networks import NetworkConfig
from lightning_modules.optim import OptimConfig
from sar_inference.settings import InferenceConfig


class SARSegmenter(SegmentationTask):
    """Segments SAR tiles into the 9 classes; trained on official labels or pseudo-labels.

    Args:
        network: the network (default: U-Net ResNet-18, 1 input channel, from scratch).
        optim: optimiser and schedule (default: the reference AdamW, head lr x10, warm-up + poly).
        loss: the loss mix (default: symmetric CE + Lovasz-softmax, weights 1 and 1, ignore 0).
        inference: sliding window and test-time augmentation of ``predict``.
        input: how the 8-bit SAR pixels become network input (default: x / 255, the contest baseline;
            the reference replicates the band to 3 channels with ImageNet statistics).
        num_overlays: validation images logged as image | prediction | label overlays.
    """

    kind: ClassVar = "sar"

    def __init__(
        self,
        network: NetworkConfig = NetworkConfig(),
        optim: OptimConfig = OptimConfig(),
        loss: LossConfig = LossConfig(),
        inference: InferenceConfig = InferenceConfig(),
        input: InputTransform = InputTransform(),
        num_overlays: int = 4,
    ) -> None:
        super().__init__(network, optim, inference, input, num_overlays)
        self.save_hyperparameters()
        self.loss_config = loss
        self.criterion = build_loss(loss)

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
