"""The shared segmentation task: network, optimiser and schedule, evaluation metrics, overlays."""

from __future__ import annotations

import math
from typing import Any

import lightning as L
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from datamodules.classes import CLASS_NAMES, PADDING, colourise
from lightning_modules.metrics import LandCoverIoU, format_iou_table
from lightning_modules.networks import NetworkConfig, build_model
from lightning_modules.optim import OptimConfig, parameter_groups, warmup_poly_factor
from sar_inference.engine import tta_probs
from sar_inference.settings import InferenceConfig


def overlay_strip(raw_image: torch.Tensor, *labels: torch.Tensor) -> np.ndarray:
    """Side-by-side RGB strip: the image (first channel grey, or RGB) then each label in class colours."""
    image = raw_image.detach().float().cpu()
    image = image[:3] if image.shape[0] >= 3 else image[:1].expand(3, -1, -1)
    lo, hi = image.min(), image.max()
    image = ((image - lo) / (hi - lo + 1e-6) * 255).byte().permute(1, 2, 0).numpy()
    panels = [image] + [colourise(lab.detach().cpu().numpy().astype(np.uint8)) for lab in labels]
    return np.concatenate(panels, axis=1)


class SegmentationTask(L.LightningModule):
    """Base of the stage-1 and stage-2 tasks.

    Subclasses implement ``training_step`` and, if needed, ``eval_loss``. This class builds the
    network, the optimiser and schedule, and evaluates validation/test batches with the official
    metric (mIoU over classes 1..8; a 0-labelled pixel predicted as k is a false positive of k).
    Batches are dicts with ``image`` (normalised), ``raw_image`` and ``mask``.
    """

    def __init__(
        self, network: NetworkConfig, optim: OptimConfig, inference: InferenceConfig, num_overlays: int = 4
    ) -> None:
        super().__init__()
        self.network_config = network
        self.optim_config = optim
        self.inference_config = inference
        self.num_overlays = num_overlays
        self.model = self.configure_network()
        self.val_names: list[str] = ["val"]
        self.val_metrics = nn.ModuleList([LandCoverIoU()])
        self.test_metric = LandCoverIoU()
        self._overlays: list[np.ndarray] = []

    def setup(self, stage: str) -> None:
        """Check data and network agree on input channels; one metric per validation loader.

        Validation loaders are named by the datamodule's ``val_names`` (default ``val``).
        """
        datamodule = getattr(self._trainer, "datamodule", None) if self._trainer is not None else None
        normaliser = getattr(datamodule, "normaliser", None)
        if normaliser is not None and normaliser.in_channels != self.network_config.in_channels:
            raise ValueError(
                f"the data gives {normaliser.in_channels} input channel(s) but the network expects "
                f"{self.network_config.in_channels}: set data in_channels and model network.in_channels alike"
            )
        names = list(getattr(datamodule, "val_names", ["val"]))
        if names != self.val_names:
            self.val_names = names
            self.val_metrics = nn.ModuleList([LandCoverIoU() for _ in names])

    def configure_network(self) -> nn.Module:
        """Build the network from ``self.network_config``."""
        cfg = self.network_config
        return build_model(
            cfg.arch, cfg.encoder, cfg.in_channels, cfg.num_classes, cfg.encoder_weights, cfg.bn_momentum
        )

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Logits (N, C, H, W) for normalised images of any size (padded to the output stride inside)."""
        return self._padded_forward(self.model, images)

    def _padded_forward(self, network: nn.Module, images: torch.Tensor) -> torch.Tensor:
        height, width = images.shape[-2:]
        stride = self.network_config.output_stride
        pad_h, pad_w = (-height) % stride, (-width) % stride
        if pad_h or pad_w:
            images = F.pad(images, (0, pad_w, 0, pad_h))
        return network(images)[..., :height, :width]

    def configure_optimizers(self) -> dict[str, Any]:
        optim = self.optim_config
        groups = parameter_groups(self.model, optim)
        if optim.optimizer == "adamw":
            optimizer = torch.optim.AdamW(groups, lr=optim.lr, weight_decay=optim.weight_decay)
        else:
            optimizer = torch.optim.Adam(groups, lr=optim.lr)
        total = int(self.trainer.estimated_stepping_batches) if self._trainer is not None else 1
        if not math.isfinite(total) or total <= 0:
            raise ValueError("set trainer.max_steps or trainer.max_epochs: the poly schedule needs a length")
        schedule = torch.optim.lr_scheduler.LambdaLR(
            optimizer,
            lambda step: warmup_poly_factor(step, optim.warmup_steps, total, optim.poly_power, optim.warmup_ratio),
        )
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": schedule, "interval": "step"}}

    def on_train_batch_end(self, outputs: Any, batch: Any, batch_idx: int) -> None:
        # Logged here rather than by LearningRateMonitor, which refuses to run without a logger.
        self.log("train/lr", self.optimizers().param_groups[0]["lr"], batch_size=1)

    def eval_loss(self, logits: torch.Tensor, mask: torch.Tensor) -> torch.Tensor | None:
        """Loss reported on validation/test batches; None to report none."""
        return None

    def _evaluate(self, batch: dict[str, Any], metric: LandCoverIoU, split: str) -> None:
        logits = self(batch["image"])
        mask = batch["mask"]
        metric.update(logits, mask)
        loss = self.eval_loss(logits, mask)
        if loss is not None:
            self.log(f"{split}/loss", loss, batch_size=mask.shape[0], sync_dist=True, add_dataloader_idx=False)
        if split == self.val_names[0] and len(self._overlays) < self.num_overlays and not self.trainer.sanity_checking:
            preds = logits.argmax(1)
            for i in range(min(mask.shape[0], self.num_overlays - len(self._overlays))):
                label = mask[i].masked_fill(mask[i] == PADDING, 0)
                self._overlays.append(overlay_strip(batch["raw_image"][i], preds[i], label))

    def validation_step(self, batch: dict[str, Any], batch_idx: int, dataloader_idx: int = 0) -> None:
        self._evaluate(batch, self.val_metrics[dataloader_idx], self.val_names[dataloader_idx])

    def test_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        self._evaluate(batch, self.test_metric, "test")

    def predict_probs(self, image: torch.Tensor, inference: InferenceConfig | None = None) -> torch.Tensor:
        """(C, H, W) probabilities of one normalised (C, H, W) image: sliding window + TTA.

        Args:
            image: the normalised image.
            inference: window, stride, TTA and batching (default: this task's ``inference``).
        """
        cfg = inference or self.inference_config
        return tta_probs(
            self,
            image,
            self.network_config.num_classes,
            window=cfg.window,
            stride=cfg.stride,
            scales=cfg.scales,
            flips=cfg.flips,
            batch_size=cfg.batch_size,
            blend=cfg.blend,
        )

    def predict_step(self, batch: dict[str, Any], batch_idx: int) -> dict[str, Any]:
        """Class probabilities of whole tiles: sliding window + TTA as ``inference`` says."""
        probs = torch.stack([self.predict_probs(image) for image in batch["image"]])
        return {"name": batch["name"], "grid": batch["grid"], "probs": probs}

    def on_validation_epoch_end(self) -> None:
        for name, metric in zip(self.val_names, self.val_metrics, strict=True):
            self._finish_evaluation(metric, name)

    def on_test_epoch_end(self) -> None:
        self._finish_evaluation(self.test_metric, "test")

    def _finish_evaluation(self, metric: LandCoverIoU, split: str) -> None:
        scores = metric.compute()
        confusion = metric.confusion_matrix().cpu()
        metric.reset()
        if self.trainer.sanity_checking:
            self._overlays.clear()
            return
        self.log_dict({f"{split}/{k}": v for k, v in scores.items()}, add_dataloader_idx=False)
        self.print(format_iou_table(scores, f"{split} after {self.global_step} steps"))
        self._log_media(split, confusion)

    def _log_media(self, split: str, confusion: torch.Tensor) -> None:
        """Overlays and confusion matrix to loggers that take media (W&B); rank 0 only."""
        overlays, self._overlays = (self._overlays, []) if split == self.val_names[0] else ([], self._overlays)
        if self.global_rank != 0:
            return
        for logger in self.loggers:
            if overlays and hasattr(logger, "log_image"):
                logger.log_image(
                    key=f"{split}/overlays",
                    images=overlays,
                    caption=["image | prediction | label"] * len(overlays),
                    step=self.global_step,
                )
            if hasattr(logger, "log_table"):
                logger.log_table(
                    key=f"{split}/confusion_matrix",
                    columns=["reference \\ predicted", *CLASS_NAMES],
                    data=[[name, *row.tolist()] for name, row in zip(CLASS_NAMES, confusion, strict=False)],
                    step=self.global_step,
                )
