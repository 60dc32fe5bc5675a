"""A callback for tests: the process signals itself after a given training step, as SLURM's warning would."""

from __future__ import annotations

import os
import signal

import lightning as L


class SignalAtStep(L.Callback):
    """Send ``signal_name`` to this process once, after training step ``step`` (on global rank 0 only).

    Args:
        step: the global step after which the signal is sent.
        signal_name: the signal.
    """

    def __init__(self, step: int, signal_name: str = "SIGUSR1") -> None:
        self.step = step
        self.signum = signal.Signals[signal_name]

    def on_train_batch_end(
        self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: object, batch: object, batch_idx: int
    ) -> None:
        if trainer.global_step == self.step and trainer.is_global_zero:
            os.kill(os.getpid(), self.signum)
