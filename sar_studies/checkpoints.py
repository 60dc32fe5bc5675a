"""Random-weight checkpoints saved the two ways the project makes them (CLI, Python): for benchmarks and tests."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import lightning as L
import torch

from lightning_modules.base import SegmentationTask
from lightning_modules.networks import NetworkConfig
from lightning_modules.sar_segmenter import SARSegmenter
from sar_inference.settings import InferenceConfig


def save_checkpoint(task: SegmentationTask, path: Path, cli_style: bool = False) -> Path:
    """Save ``task`` as Lightning does (with its record); optionally with CLI-style hyperparameters.

    ``cli_style`` rewrites the hyperparameters as ``python cli.py fit`` stores them: plain dicts
    with ``_class_path`` and ``_instantiator``.
    """
    trainer = L.Trainer(max_steps=1, logger=False, enable_checkpointing=False, enable_progress_bar=False)
    trainer.strategy.connect(task)
    trainer.save_checkpoint(path)
    if cli_style:
        state = torch.load(path, map_location="cpu", weights_only=True)
        saved = state["hyper_parameters"].items()
        hparams = {k: asdict(v) if hasattr(v, "__dataclass_fields__") else v for k, v in saved}
        cls = type(task)
        state["hyper_parameters"] = {
            "_class_path": f"{cls.__module__}.{cls.__name__}",
            **hparams,
            "_instantiator": "lightning.pytorch.cli.instantiate_module",
        }
        torch.save(state, path)
    return path


def sar_checkpoint(
    path: Path,
    seed: int = 0,
    inference: InferenceConfig = InferenceConfig(window=64, stride=32),
    cli_style: bool = True,
) -> Path:
    """A random-weight SAR U-Net (ResNet-18, 1 channel, x / 255)."""
    torch.manual_seed(seed)
    task = SARSegmenter(network=NetworkConfig(in_channels=1), inference=inference)
    return save_checkpoint(task, path, cli_style=cli_style)
