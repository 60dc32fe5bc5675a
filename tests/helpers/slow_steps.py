"""A callback for tests: a pause after every training step, so that a fit lasts long enough in seconds."""

from __future__ import annotations

import time

import lightning as L


class PauseAfterStep(L.Callback):
    """Sleep ``seconds`` after every training step (no effect on what is computed).

    Args:
        seconds: the pause.
    """

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds

    def on_train_batch_end(
        self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: object, batch: object, batch_idx: int
    ) -> None:
        time.sleep(self.seconds)
