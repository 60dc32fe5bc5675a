"""A callback for tests: each DDP rank saves the training batches it sees (``rank<r>.pt`` in a folder)."""

from __future__ import annotations

from pathlib import Path

import lightning as L
import torch


class RecordBatches(L.Callback):
    """Save this rank's raw training images and masks at the end of fit.

    Args:
        folder: where ``rank<global rank>.pt`` is written.
    """

    def __init__(self, folder: str) -> None:
        self.folder = Path(folder)
        self.batches: list[dict[str, torch.Tensor]] = []

    def on_train_batch_start(
        self, trainer: L.Trainer, pl_module: L.LightningModule, batch: dict, batch_idx: int
    ) -> None:
        self.batches.append({k: batch[k].detach().cpu().clone() for k in ("raw_image", "mask")})

    def on_fit_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        torch.save(self.batches, self.folder / f"rank{trainer.global_rank}.pt")
