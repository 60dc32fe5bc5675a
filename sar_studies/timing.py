"""Timing training steps under Lightning: a step clock and a trainer that only trains."""

from __future__ import annotations

import time

import lightning as L


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
