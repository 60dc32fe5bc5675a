"""The shared segmentation task: network, input transform, optimiser and schedule, metrics, checkpoint record."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, ClassVar

import lightning as L
import torch
from lightning.pytorch.loggers import WandbLogger
from torch import nn

from datamodules.classes import CLASS_NAMES
from lightning_modules.input_transform import InputTransform
from lightning_modules.metrics import LandCoverIoU, format_iou_table
from lightning_modules.networks import NetworkConfig, build_network, padded_forward
from lightning_modules.optim import OptimConfig, parameter_groups, schedule_factor
from lightning_modules.validation_media import Overlay
from sar_inference.checkpoints import RECORD_KEY, CheckpointRecord, TaskKind, checkpoint_record
from sar_inference.settings import InferenceConfig


class SegmentationTask(L.LightningModule):
    """Base of the stage-1 and stage-2 tasks.

    Subclasses implement ``training_step`` and, if needed, ``eval_loss``. This class builds the
    network, normalises its own batches with its input transform (so a checkpoint alone says how to
    feed the network), builds the optimiser and schedule, and evaluates validation/test batches
    with the official metric (mIoU over classes 1..8; a 0-labelled pixel predicted as k is a false
    positive of k). Batches from the datamodules are dicts with raw 8-bit pixels as ``image`` and
    ``mask``; after transfer to the device ``image`` is normalised and ``raw_image`` keeps the pixels.
    Validation batches name their split (``split``, e.g. ``val`` or ``val_source``): one metric each.
    Every checkpoint carries a :class:`~sar_inference.checkpoints.CheckpointRecord`.
    """

    kind: ClassVar[TaskKind]
    """What the task maps: ``sar`` or ``optical`` tiles."""

    def __init__(
        self,
        network: NetworkConfig,
        optim: OptimConfig,
        inference: InferenceConfig,
        input: InputTransform,
        num_overlays: int = 4,
    ) -> None:
        super().__init__()
        self.network_config = network
        self.optim_config = optim
        self.inference_config = inference
        self.input_transform = input
        input.statistics(network.in_channels)  # a mean/std that does not fit the network fails here
        self.num_overlays = num_overlays
        self.model = build_network(network)
        self.val_metrics = nn.ModuleDict()
        self.test_metric = LandCoverIoU()
        self._overlays: list[Overlay] = []

    def normalise(self, images: torch.Tensor) -> torch.Tensor:
        """Raw (N, C, H, W) pixels to network input, with this task's input transform."""
        return self.input_transform.normalise(images, self.network_config.in_channels)

    def on_after_batch_transfer(self, batch: Any, dataloader_idx: int) -> Any:
        """Keep raw pixels as ``raw_image`` and normalise ``image`` (also in {"source", "target"} batches).

        On the device: uint8 pixels travel to the GPU, 4x less than float32.
        """
        parts = [batch[k] for k in ("source", "target") if k in batch] or [batch]
        for part in parts:
            part["raw_image"] = part["image"]
            part["image"] = self.normalise(part["image"])
        return batch

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Logits (N, C, H, W) for normalised images of any size (padded to the output stride inside)."""
        return padded_forward(self.model, images, self.network_config.output_stride)

    def checkpoint_record(self) -> CheckpointRecord:
        """What this task's checkpoints say about it: enough to predict from the file alone."""
        cls = type(self)
        return CheckpointRecord(
            task=f"{cls.__module__}.{cls.__qualname__}",
            kind=self.kind,
            network=self.network_config,
            input=self.input_transform,
            inference=self.inference_config,
            predict_with=getattr(self, "predict_with", "student"),
        )

    def on_fit_start(self) -> None:
        # W&B's run summary shows the best validation mIoU, not the last one.
        if self.global_rank == 0:
            for logger in self.loggers:
                if isinstance(logger, WandbLogger):
                    logger.experiment.define_metric("val/mIoU", summary="max")

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint[RECORD_KEY] = self.checkpoint_record().to_dict()

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        # A checkpoint written before tasks owned their input transform: take it from its datamodule settings.
        if RECORD_KEY not in checkpoint and "hyper_parameters" in checkpoint:
            self.input_transform = checkpoint_record(Path("<checkpoint being loaded>"), checkpoint).input

    def configure_optimizers(self) -> dict[str, Any]:
        optim = self.optim_config
        groups = parameter_groups(self.model, optim)
        if optim.optimizer == "adamw":
            optimizer = torch.optim.AdamW(groups, lr=optim.lr, weight_decay=optim.weight_decay)
        else:
            optimizer = torch.optim.Adam(groups, lr=optim.lr)
        total = int(self.trainer.estimated_stepping_batches) if self._trainer is not None else 1
        if optim.schedule != "constant" and (not math.isfinite(total) or total <= 0):
            raise ValueError("set trainer.max_steps or trainer.max_epochs: the poly schedule needs a length")
        schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: schedule_factor(step, optim, total))
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
        if split == "val" and len(self._overlays) < self.num_overlays and not self.trainer.sanity_checking:
            preds = logits.argmax(1)
            for i in range(min(mask.shape[0], self.num_overlays - len(self._overlays))):
                self._overlays.append(Overlay.from_tensors(batch["raw_image"][i], preds[i], mask[i]))

    def val_metric(self, split: str) -> LandCoverIoU:
        """The metric of one validation split, made when its first batch arrives."""
        if split not in self.val_metrics:
            self.val_metrics[split] = LandCoverIoU().to(self.device)
        return self.val_metrics[split]

    def validation_step(self, batch: dict[str, Any], batch_idx: int, dataloader_idx: int = 0) -> None:
        split = batch["split"][0] if "split" in batch else "val"
        self._evaluate(batch, self.val_metric(split), split)

    def test_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        self._evaluate(batch, self.test_metric, "test")

    def predict_probs(self, image: torch.Tensor, inference: InferenceConfig | None = None) -> torch.Tensor:
        """(C, H, W) probabilities of one normalised (C, H, W) image: sliding window + TTA.

        Args:
            image: the normalised image.
            inference: window, stride, TTA and batching (default: this task's ``inference``).
        """
        return (inference or self.inference_config).probs(self, image, self.network_config.num_classes)

    def predict_step(self, batch: dict[str, Any], batch_idx: int) -> dict[str, Any]:
        """Class probabilities of whole tiles: sliding window + TTA as ``inference`` says."""
        probs = torch.stack([self.predict_probs(image) for image in batch["image"]])
        return {"name": batch["name"], "grid": batch["grid"], "probs": probs}

    def on_validation_epoch_end(self) -> None:
        for name, metric in self.val_metrics.items():
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
        overlays, self._overlays = (self._overlays, []) if split == "val" else ([], self._overlays)
        if self.global_rank != 0:
            return
        for logger in self.loggers:
            if overlays and isinstance(logger, WandbLogger):
                logger.log_image(
                    key=f"{split}/segmentation",
                    images=[o.image for o in overlays],
                    masks=[o.wandb_masks() for o in overlays],
                    caption=["prediction and label: toggle classes"] * len(overlays),
                    step=self.global_step,
                )
            elif overlays and hasattr(logger, "log_image"):
                logger.log_image(
                    key=f"{split}/overlays",
                    images=[o.strip() for o in overlays],
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
