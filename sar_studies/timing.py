"""Timing training steps: random SAR crops, a plain PyTorch loop, and under Lightning a step clock and
a trainer that only trains."""

from __future__ import annotations

import time
from collections.abc import Callable

import lightning as L
import torch

from lightning_modules.optim import parameter_groups, warmup_poly_factor
from lightning_modules.sar_segmenter import SARSegmenter


def random_sar_crops(count: int, batch: int, size: int) -> list[dict[str, torch.Tensor]]:
    """``count`` batches of random uint8 SAR crops with blocky labels 0..8 (raw: the task normalises them)."""
    gen = torch.Generator().manual_seed(0)
    out = []
    for _ in range(count):
        raw = torch.randint(0, 256, (batch, 1, size, size), dtype=torch.uint8, generator=gen)
        mask = torch.randint(0, 9, (batch, size // 16, size // 16), generator=gen)
        out.append({"image": raw, "mask": mask.repeat_interleave(16, 1).repeat_interleave(16, 2)})
    return out


def plain_loop(
    task: SARSegmenter,
    batches: list[dict[str, torch.Tensor]],
    warmup: int,
    clock: Callable[[], float] = time.perf_counter,
) -> float:
    """Mean ``clock`` seconds per step of a hand-written training loop (the task's loss, optimiser
    groups and schedule), after ``warmup`` steps."""
    optim = task.optim_config
    optimizer = torch.optim.AdamW(parameter_groups(task.model, optim), lr=optim.lr, weight_decay=optim.weight_decay)
    total = len(batches)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: warmup_poly_factor(s, optim.warmup_steps, total, optim.poly_power, optim.warmup_ratio)
    )
    task.train()
    start = 0.0
    for step, batch in enumerate(batches):
        if step == warmup:
            start = clock()
        loss, _ = task.criterion(task(task.normalise(batch["image"])), task._supervision(batch["mask"]))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        schedule.step()
    return (clock() - start) / (total - warmup)


class StepClock(L.Callback):
    """Wall time of the training steps after ``warmup`` steps (data loading included)."""

    def __init__(self, warmup: int) -> None:
        self.warmup, self.start, self.end, self.steps = warmup, 0.0, 0.0, 0

    def on_train_batch_start(self, trainer: L.Trainer, *args: object) -> None:
        if trainer.global_step == self.warmup:
            self.start = time.perf_counter()

    def on_train_batch_end(self, trainer: L.Trainer, *args: object) -> None:
        self.end = time.perf_counter()
        self.steps = trainer.global_step - self.warmup

    def seconds_per_step(self) -> float:
        """Mean seconds per measured step."""
        return (self.end - self.start) / self.steps


def timing_trainer(max_steps: int, clock: StepClock) -> L.Trainer:
    """A CPU trainer that only trains and times: no logger, checkpoints, validation or progress bar."""
    return L.Trainer(
        accelerator="cpu",
        devices=1,
        max_steps=max_steps,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        limit_val_batches=0,
        num_sanity_val_steps=0,
        callbacks=[clock],
    )
