"""W&B validation media: overlays as segmentation masks with the class table, the best val/mIoU in the summary."""

from __future__ import annotations

from pathlib import Path

import lightning as L
import numpy as np
import pytest
import torch
from lightning.pytorch.loggers import WandbLogger
from PIL import Image

from datamodules.classes import CLASS_NAMES
from lightning_modules.sar_segmenter import SARSegmenter
from lightning_modules.validation_media import CLASS_LABELS, Overlay


def test_an_overlay_keeps_the_classes_and_shows_padding_as_background() -> None:
    label = torch.tensor([[1, 255], [8, 0]])
    overlay = Overlay.from_tensors(torch.tensor([[[0, 100], [200, 255]]]), torch.tensor([[2, 3], [4, 5]]), label)
    assert overlay.image.shape == (2, 2, 3)
    assert overlay.image[0, 0].tolist() == [0, 0, 0] and overlay.image[1, 1, 0] >= 254  # stretched grey
    masks = overlay.wandb_masks()
    assert masks["ground_truth"]["mask_data"].tolist() == [[1, 0], [8, 0]]
    assert masks["prediction"]["mask_data"].tolist() == [[2, 3], [4, 5]]
    assert masks["prediction"]["class_labels"][8] == "Building" == CLASS_LABELS[8]
    assert overlay.strip().shape == (2, 6, 3)


@pytest.mark.slow  # a W&B run (offline) starts its service: ~10 s
def test_wandb_gets_masks_with_the_class_table_and_summarises_the_best_miou(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    task = SARSegmenter()
    logger = WandbLogger(save_dir=str(tmp_path), offline=True, project="test")
    trainer = L.Trainer(logger=logger, enable_checkpointing=False, enable_progress_bar=False, max_steps=1)
    trainer.strategy.connect(task)
    task.trainer = trainer
    defined: list[tuple[str, str]] = []
    experiment = logger.experiment
    real_define = experiment.define_metric
    monkeypatch.setattr(
        experiment, "define_metric", lambda name, **kw: defined.append((name, kw["summary"])) or real_define(name, **kw)
    )
    task.on_fit_start()
    assert defined == [("val/mIoU", "max")]
    prediction, label = torch.randint(0, 9, (32, 40)), torch.randint(0, 9, (32, 40))
    task._overlays = [Overlay.from_tensors(torch.randint(0, 256, (1, 32, 40)), prediction, label)]
    task._log_media("val", torch.zeros(len(CLASS_NAMES), len(CLASS_NAMES), dtype=torch.long))
    experiment.finish()
    masks = sorted(tmp_path.glob("wandb/offline-run-*/files/media/images/mask/val/segmentation_*.mask.png"))
    written = {np.asarray(Image.open(m)).tobytes() for m in masks}
    assert written == {prediction.numpy().astype(np.uint8).tobytes(), label.numpy().astype(np.uint8).tobytes()}
