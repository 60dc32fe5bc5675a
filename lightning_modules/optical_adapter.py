"""Stage 1: mean-teacher domain adaptation of an optical segmenter from OpenEarthMap to OEM-SAR optical.

One training step (docs/method.md section 2): supervised CE on the source crops; the EMA teacher
labels the weakly augmented target crops; each target image gets one weight (the fraction of its
pixels the teacher is confident about, no pixel discarded); ClassMix pastes half of the source
classes onto the target; the strongly augmented mix is learned with the weighted CE; one
optimiser step on the sum; then the teacher follows the student.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

import numpy as np
import torch

from datamodules.classes import PADDING
from lightning_modules.base import SegmentationTask
from lightning_modules.input_transform import OPTICAL_INPUT, InputTransform
from lightning_modules.losses import CrossEntropy
from lightning_modules.mean_teacher import (
    AdaptationConfig,
    classmix,
    classmix_masks,
    ema_momentum,
    ema_update,
    image_confidence_weights,
    make_teacher,
    pixel_threshold_weights,
    strong_augment,
)
from lightning_modules.networks import NetworkConfig, padded_forward
from lightning_modules.optim import OptimConfig
from sar_inference.settings import InferenceConfig


class OpticalAdapter(SegmentationTask):
    """Optical segmenter adapted to the OEM-SAR optical domain with a mean teacher (stage 1).

    Args:
        network: the student network (the teacher is an EMA copy of it); 3 input channels.
        optim: optimiser and schedule of the student.
        adaptation: mean-teacher settings and ablation switches.
        predict_with: network used by ``predict``, validation and test: ``student`` (reference) or ``teacher``.
            Training always updates the student.
        inference: sliding window and test-time augmentation of ``predict``.
        input: how the 8-bit RGB pixels become network input (default: ImageNet statistics).
        num_overlays: validation overlays logged per epoch (target image | prediction | label).
    """

    kind: ClassVar = "optical"

    def __init__(
        self,
        network: NetworkConfig = NetworkConfig(in_channels=3),
        optim: OptimConfig = OptimConfig(),
        adaptation: AdaptationConfig = AdaptationConfig(),
        predict_with: Literal["student", "teacher"] = "student",
        inference: InferenceConfig = InferenceConfig(),
        input: InputTransform = OPTICAL_INPUT,
        num_overlays: int = 4,
    ) -> None:
        super().__init__(network, optim, inference, input, num_overlays)
        self.save_hyperparameters()
        self.adaptation = adaptation
        self.predict_with = predict_with
        # A registered, frozen submodule: saved in checkpoints, moved with the student, broadcast
        # by DDP at start-up, and kept identical across ranks by identical EMA updates.
        self.teacher = make_teacher(self.model)
        self.cross_entropy = CrossEntropy(ignore_index=PADDING)  # source CE and pixel-weighted mix CE
        self._mix_generator = torch.Generator()

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Logits of the network that predicts (``predict_with``)."""
        if self.predict_with == "teacher":
            return padded_forward(self.teacher, images, self.network_config.output_stride)
        return super().forward(images)

    def student(self, images: torch.Tensor) -> torch.Tensor:
        """Logits of the student, the network training updates."""
        return padded_forward(self.model, images, self.network_config.output_stride)

    def _seed_mix_generator(self) -> None:
        # ClassMix and strong augmentation draw from their own generator, seeded anew at every step
        # from seed_everything's seed, the step and the rank: runs are reproducible, ranks mix
        # differently, and a fit resumed from a mid-epoch checkpoint mixes as an uninterrupted one.
        seed = np.random.SeedSequence([torch.initial_seed() % 2**31, self.global_step, self.global_rank])
        self._mix_generator.manual_seed(int(seed.generate_state(1)[0]))

    @torch.no_grad()
    def _pseudo_labels(self, target: dict[str, Any]) -> tuple[torch.Tensor, torch.Tensor]:
        """Teacher pseudo-labels of the target batch and their weights (per image or per pixel)."""
        was_training = self.teacher.training
        self.teacher.train(self.adaptation.teacher_mode == "train")
        probs = padded_forward(self.teacher, target["image"], self.network_config.output_stride).softmax(dim=1)
        self.teacher.train(was_training)
        padding = target["mask"] == PADDING
        labels = probs.argmax(dim=1).masked_fill(padding, PADDING)
        cfg = self.adaptation
        if cfg.weighting == "image_confidence":
            weights = image_confidence_weights(probs, cfg.tau, ignore_mask=padding)
        elif cfg.weighting == "pixel_threshold":
            weights = pixel_threshold_weights(probs, cfg.tau)
        else:
            weights = torch.ones(probs.shape[0], device=probs.device)
        return labels, weights

    def _mixed_batch(
        self, source: dict[str, Any], target: dict[str, Any], labels: torch.Tensor, weights: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """ClassMix of source into target, strongly augmented and normalised; labels and pixel weights."""
        cfg = self.adaptation
        if cfg.classmix:
            masks = classmix_masks(source["mask"], self._mix_generator, (PADDING,), cfg.classmix_per_image)
        else:
            masks = torch.zeros_like(labels, dtype=torch.bool)
        raw, mixed_labels, pixel_weights = classmix(
            source["raw_image"].float(), target["raw_image"].float(), source["mask"], labels, masks, weights
        )
        augmented = strong_augment(
            raw,
            self._mix_generator,
            jitter_p=cfg.jitter_p,
            brightness=cfg.brightness,
            contrast=cfg.contrast,
            saturation=cfg.saturation,
            hue=cfg.hue,
            blur_p=cfg.blur_p,
            blur_sigma=tuple(cfg.blur_sigma),
            blur_kernel_fraction=cfg.blur_kernel_fraction,
        )
        return self.normalise(augmented), mixed_labels, pixel_weights

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> torch.Tensor:
        source, target = batch["source"], batch["target"]
        batch_size = source["image"].shape[0]
        source_loss = self.cross_entropy(self.student(source["image"]), source["mask"])
        self.log("train/loss_source", source_loss, prog_bar=True, batch_size=batch_size)
        if not self.adaptation.enabled:
            return source_loss
        labels, weights = self._pseudo_labels(target)
        self._seed_mix_generator()
        images, mixed_labels, pixel_weights = self._mixed_batch(source, target, labels, weights)
        mix_loss = self.cross_entropy(self.student(images), mixed_labels, pixel_weight=pixel_weights)
        self.log("train/loss_mix", mix_loss, prog_bar=True, batch_size=batch_size)
        self.log("train/pseudo_label_weight", weights.float().mean(), batch_size=batch_size)
        return source_loss + mix_loss

    def optimizer_step(self, *args: Any, **kwargs: Any) -> None:
        super().optimizer_step(*args, **kwargs)
        if self.adaptation.enabled:
            # Right after the student's step, so that any checkpoint taken after the step (at
            # on_train_batch_end) holds the matching teacher. global_step still counts the steps
            # before this one: the update after step k uses momentum(k).
            self.update_teacher(self.global_step)

    def update_teacher(self, step: int) -> None:
        """EMA of the student's parameters after optimiser step ``step``.

        A teacher run in train mode keeps its own BatchNorm statistics (DAFormer); one run in eval
        mode never updates them, so it takes the student's, else it would use its initial ones.
        """
        buffers = "keep" if self.adaptation.teacher_mode == "train" else "copy"
        ema_update(self.teacher, self.model, ema_momentum(step, self.adaptation.alpha_max), buffers=buffers)
