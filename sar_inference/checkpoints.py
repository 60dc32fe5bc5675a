"""Loading trained tasks from Lightning checkpoints for inference, with the normalisation they expect.

One loader serves every command that predicts from checkpoint files (``map``, ``submit``): it
checks that the file is a Lightning checkpoint of the kind of model the command needs, builds the
task on the CPU in eval mode, and rebuilds the input :class:`~datamodules.transforms.Normaliser`
from the datamodule settings the checkpoint carries.
"""

from __future__ import annotations

import importlib
import inspect
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from datamodules.rasters import DataError
from datamodules.transforms import NormalisationMode, Normaliser
from lightning_modules.base import SegmentationTask
from lightning_modules.optical_adapter import OpticalAdapter
from lightning_modules.sar_segmenter import SARSegmenter

KNOWN_TASKS: tuple[type[SegmentationTask], ...] = (SARSegmenter, OpticalAdapter)
"""Tasks a checkpoint without a class path (a module built in Python) is matched against."""
SAR_INPUT_CHANNELS = (1, 3)
"""A SAR network reads the one band as is (1) or replicated (3)."""


@dataclass(frozen=True)
class LoadedTask:
    """A task ready to predict: on the CPU, in eval mode, with the normaliser of its training data."""

    path: Path
    task: SegmentationTask
    normaliser: Normaliser

    @property
    def num_classes(self) -> int:
        """Output classes of the network."""
        return self.task.network_config.num_classes


def _read_checkpoint(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise DataError(path, "checkpoint file does not exist")
    try:
        # weights_only, as Lightning's own loader: the project's config dataclasses are registered safe.
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises many types for a file that is not a checkpoint
        problem = f"{type(err).__name__}: {str(err).splitlines()[0][:160]}" if str(err) else type(err).__name__
        raise DataError(path, f"unreadable as a checkpoint (truncated, or not a .ckpt?): {problem}") from None
    if not isinstance(state, dict) or "state_dict" not in state or "pytorch-lightning_version" not in state:
        raise DataError(path, "not a Lightning checkpoint (no state_dict or pytorch-lightning_version)")
    return state


def _import_class(path: Path, class_path: str) -> type:
    module_name, _, name = class_path.rpartition(".")
    try:
        return getattr(importlib.import_module(module_name), name)
    except (ImportError, AttributeError, ValueError):
        raise DataError(path, f"holds a {class_path}, which cannot be imported here") from None


def task_class(path: Path, hparams: Mapping[str, Any]) -> type[SegmentationTask]:
    """The task class a checkpoint was saved from.

    Checkpoints made by the CLI name it (``_class_path``); those of modules built in Python do not,
    so the class whose ``__init__`` takes exactly the saved hyperparameter names is chosen.

    Raises:
        DataError: the class is not a segmentation task, or no known task matches.
    """
    class_path = hparams.get("_class_path")
    if class_path is not None:
        cls = _import_class(path, str(class_path))
        if not (isinstance(cls, type) and issubclass(cls, SegmentationTask)):
            raise DataError(path, f"holds a {class_path}, not a segmentation task of this project")
        return cls
    names = {k for k in hparams if not k.startswith("_")}
    for cls in KNOWN_TASKS:
        if names == set(inspect.signature(cls.__init__).parameters) - {"self"}:
            return cls
    raise DataError(path, f"hyperparameters {sorted(names)} match no known task ({[c.__name__ for c in KNOWN_TASKS]})")


def checkpoint_normaliser(
    path: Path,
    state: Mapping[str, Any],
    in_channels: int,
    normalisation: NormalisationMode | None = None,
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
) -> Normaliser:
    """The input normalisation of a checkpoint's model.

    An explicit ``normalisation`` wins; otherwise the datamodule settings saved in the checkpoint
    (``datamodule_hyper_parameters``) are used.

    Raises:
        DataError: neither is available, or the saved settings are for another channel count.
    """
    if normalisation is not None:
        return Normaliser(normalisation, in_channels, mean, std)
    data = state.get("datamodule_hyper_parameters") or {}
    if "normalisation" not in data:
        raise DataError(path, "holds no datamodule normalisation settings: pass the normalisation explicitly")
    saved_channels = data.get("in_channels", in_channels)
    if saved_channels != in_channels:
        raise DataError(path, f"data in_channels {saved_channels} differs from the network's {in_channels}")
    return Normaliser(data["normalisation"], in_channels, data.get("mean"), data.get("std"))


def load_task(
    path: str | os.PathLike,
    expected: type[SegmentationTask] = SARSegmenter,
    normalisation: NormalisationMode | None = None,
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
) -> LoadedTask:
    """Load a task from a checkpoint on the CPU, in eval mode, with its input normaliser.

    Args:
        path: ``.ckpt`` file written by Lightning (``python cli.py fit`` or ``Trainer.save_checkpoint``).
        expected: the task class the command needs (a subclass is accepted); a SAR command needs
            :class:`SARSegmenter` with 1 or 3 input channels.
        normalisation: override of the normalisation saved with the checkpoint (needed when the
            checkpoint has none, e.g. a module fitted without a datamodule).
        mean: per-channel mean (raw pixel units) for ``custom`` normalisation.
        std: per-channel standard deviation (raw pixel units) for ``custom`` normalisation.

    Raises:
        DataError: naming the file: missing, unreadable, not a Lightning checkpoint, a model of the
            wrong kind or channel count, weights that do not fit the saved network, or no
            normalisation.
    """
    path = Path(path)
    state = _read_checkpoint(path)
    hparams = state.get("hyper_parameters") or {}
    cls = task_class(path, hparams)
    if not issubclass(cls, expected):
        raise DataError(path, f"is a {cls.__name__} checkpoint, but this command needs a {expected.__name__} model")
    try:
        task = cls.load_from_checkpoint(path, map_location="cpu")
    except (RuntimeError, KeyError, TypeError, ValueError) as err:
        raise DataError(path, f"cannot rebuild the {cls.__name__} ({str(err).splitlines()[0][:300]})") from None
    in_channels = task.network_config.in_channels
    if issubclass(expected, SARSegmenter) and in_channels not in SAR_INPUT_CHANNELS:
        raise DataError(path, f"network takes {in_channels} input channels; a SAR model takes 1 or 3")
    normaliser = checkpoint_normaliser(path, state, in_channels, normalisation, mean, std)
    return LoadedTask(path, task.eval(), normaliser)
