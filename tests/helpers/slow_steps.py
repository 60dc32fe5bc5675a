"""A callback for tests: a pause after every training step, so that a fit lasts long enough in seconds."""

from __future__ import annotations

import time

import lightning as L


class PauseAfterStep(L.Callback):
    """Sleep ``seconds`` after every training step of a fit that did not resume (no effect on what is computed).

    A fit resumed from a checkpoint runs at full speed: the pause is there to keep the first run going
    until a signal stops it, and would only lengthen the rest.

    Args:
        seconds: the pause.
    """

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds

    def on_train_batch_end(
        self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: object, batch: object, batch_idx: int
    ) -> None:
        if trainer.ckpt_path is None:
            time.sleep(self.seconds)
