"""Validation overlays: one image with its predicted and reference classes, as W&B segmentation masks or a strip.

W&B shows masks over the image with the class table: each class can be toggled, and the prediction
compared with the label; loggers without masks get a side-by-side strip (image | prediction | label).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from datamodules.classes import CLASS_NAMES, PADDING, colourise

CLASS_LABELS: dict[int, str] = dict(enumerate(CLASS_NAMES))
"""W&B's class table of the masks: value -> class name."""


@dataclass(frozen=True)
class Overlay:
    """One validation image (RGB uint8) with its predicted and reference (H, W) uint8 classes."""

    image: np.ndarray
    prediction: np.ndarray
    label: np.ndarray

    @classmethod
    def from_tensors(cls, raw_image: torch.Tensor, prediction: torch.Tensor, label: torch.Tensor) -> Overlay:
        """From a raw (C, H, W) image (first channel grey, or RGB) and (H, W) classes; padding shows as 0."""
        image = raw_image.detach().float().cpu()
        image = image[:3] if image.shape[0] >= 3 else image[:1].expand(3, -1, -1)
        lo, hi = image.min(), image.max()
        rgb = ((image - lo) / (hi - lo + 1e-6) * 255).byte().permute(1, 2, 0).numpy()
        label = label.masked_fill(label == PADDING, 0)
        return cls(rgb, _classes(prediction), _classes(label))

    def strip(self) -> np.ndarray:
        """Image | prediction | label side by side, the classes in their colours."""
        return np.concatenate([self.image, colourise(self.prediction), colourise(self.label)], axis=1)

    def wandb_masks(self) -> dict[str, Any]:
        """The ``masks`` argument of ``wandb.Image``: prediction and ground truth with the class table."""
        return {
            "prediction": {"mask_data": self.prediction, "class_labels": CLASS_LABELS},
            "ground_truth": {"mask_data": self.label, "class_labels": CLASS_LABELS},
        }


def _classes(tensor: torch.Tensor) -> np.ndarray:
    return tensor.detach().cpu().numpy().astype(np.uint8)
