"""Run by test_optical_adapter in a subprocess: a 2-process (gloo) DDP stage-1 fit that saves every
rank's teacher and student parameters, so the test can compare the ranks.

    python tests/helpers/ddp_teacher_run.py DATA_ROOT OUT_DIR
"""

from __future__ import annotations

import sys
from pathlib import Path

import lightning as L
import torch

from datamodules.optical import OpticalDataModule
from lightning_modules.networks import NetworkConfig
from lightning_modules.optical_adapter import OpticalAdapter
from lightning_modules.optim import OptimConfig


class SaveParameters(L.Callback):
    """Write this rank's flattened teacher and student parameters at the end of fit."""

    def __init__(self, out: Path) -> None:
        self.out = out

    def on_fit_end(self, trainer: L.Trainer, pl_module: OpticalAdapter) -> None:
        flat = {
            name: torch.cat([p.detach().flatten() for p in module.parameters()])
            for name, module in (("teacher", pl_module.teacher), ("student", pl_module.model))
        }
        torch.save(flat, self.out / f"rank{trainer.global_rank}.pt")


def main() -> None:
    root, out = Path(sys.argv[1]), Path(sys.argv[2])
    L.seed_everything(0)
    model = OpticalAdapter(
        network=NetworkConfig(encoder="resnet18", in_channels=3), optim=OptimConfig(lr=1e-3, warmup_steps=1)
    )
    data = OpticalDataModule(root=str(root), crop_size=64, batch_size=2, num_workers=0, samples_per_epoch=40)
    trainer = L.Trainer(
        accelerator="cpu",
        devices=2,
        strategy="ddp",
        max_steps=3,
        limit_val_batches=0,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=[SaveParameters(out)],
    )
    trainer.fit(model, datamodule=data)


if __name__ == "__main__":
    main()
