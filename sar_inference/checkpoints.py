"""Self-contained checkpoints: the record a task writes into its ``.ckpt``, and loading a network from it.

A task saves, beside its weights, a small self-describing record under :data:`RECORD_KEY` (plain
types only): its class path and kind (SAR or optical), the network, the input transform, the
inference settings, which weights predict (student or teacher) and the class table. Loading needs
nothing else and no Lightning: the file is read with ``torch.load(weights_only=True)``, the network
rebuilt with :func:`~lightning_modules.networks.build_network` and its weights loaded.

Checkpoints written before the record existed still load: their task is told by its class path
(CLI) or its hyperparameter names (Python), the input normalisation is taken from the datamodule
settings they carry (or the task's default, with a warning).
"""

from __future__ import annotations

import dataclasses
import os
import warnings
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from torch import Tensor, nn

import lightning_modules.losses
import lightning_modules.mean_teacher
import lightning_modules.optim
from datamodules.classes import CLASSES
from datamodules.rasters import DataError
from lightning_modules.input_transform import OPTICAL_INPUT, InputTransform
from lightning_modules.networks import NetworkConfig, build_network, padded_forward
from sar_inference.runtimes import RuntimeSettings, network_runner, onnx_runner
from sar_inference.settings import InferenceConfig

RECORD_KEY = "sar_landcover"
"""Key of the self-describing record in a checkpoint."""
RECORD_FORMAT = 1
TaskKind = Literal["sar", "optical"]
PredictWith = Literal["student", "teacher"]
SAR_INPUT_CHANNELS = (1, 3)
"""A SAR network reads the one band as is (1) or replicated (3)."""

LEGACY_TASKS: dict[str, TaskKind] = {
    "lightning_modules.sar_segmenter.SARSegmenter": "sar",
    "lightning_modules.optical_adapter.OpticalAdapter": "optical",
}
"""Task classes of checkpoints written before the record, and their kind."""
LEGACY_DEFAULTS: dict[TaskKind, tuple[NetworkConfig, InputTransform]] = {
    "sar": (NetworkConfig(), InputTransform()),
    "optical": (NetworkConfig(in_channels=3), OPTICAL_INPUT),
}
"""What those tasks and their datamodules used when a checkpoint does not say (their defaults then)."""


# Imported for what they register: the settings classes pickled in checkpoints of tasks built in Python.
_PICKLED_SETTINGS = (lightning_modules.losses, lightning_modules.mean_teacher, lightning_modules.optim)


class _IgnoredSettings:
    """Stands in for pickled settings inference never reads (e.g. the synthetic data's config)."""


# Datamodule settings of checkpoints fitted in Python hold these objects; weights_only loading needs
# every pickled class registered, and inference reads none of them.
torch.serialization.add_safe_globals([(_IgnoredSettings, "sar_synthetic.generator.SyntheticConfig")])


@dataclass(frozen=True)
class CheckpointRecord:
    """What a checkpoint says about its model: enough to rebuild and feed the network.

    Attributes:
        task: class path of the task that saved it.
        kind: ``sar`` (stage 2: SAR tiles) or ``optical`` (stage 1: optical tiles).
        network: the network.
        input: how raw 8-bit pixels become network input.
        inference: default sliding window and TTA.
        predict_with: ``student`` (state-dict prefix ``model.``) or ``teacher`` (``teacher.``).
        classes: (value, name, colour) of each output class.
    """

    task: str
    kind: TaskKind
    network: NetworkConfig
    input: InputTransform
    inference: InferenceConfig
    predict_with: PredictWith = "student"
    classes: tuple[tuple[int, str, str], ...] = tuple((c.value, c.name, c.colour) for c in CLASSES)

    def to_dict(self) -> dict[str, Any]:
        """The record as plain types (what ``torch.load(weights_only=True)`` reads without help)."""
        return {
            "format": RECORD_FORMAT,
            "task": self.task,
            "kind": self.kind,
            "network": asdict(self.network),
            "input": _plain(asdict(self.input)),
            "inference": _plain(asdict(self.inference)),
            "predict_with": self.predict_with,
            "classes": [list(c) for c in self.classes],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], path: Path) -> CheckpointRecord:
        """Parse a record written by :meth:`to_dict`.

        Raises:
            DataError: a record of a newer format, or one that does not parse.
        """
        if int(data.get("format", 0)) > RECORD_FORMAT:
            raise DataError(path, f"record format {data['format']} is newer than this version reads ({RECORD_FORMAT})")
        try:
            return cls(
                task=str(data["task"]),
                kind=data["kind"],
                network=_settings(NetworkConfig, data["network"]),
                input=_settings(InputTransform, data["input"]),
                inference=_settings(InferenceConfig, data["inference"]),
                predict_with=data.get("predict_with", "student"),
                classes=tuple((int(v), str(n), str(c)) for v, n, c in data.get("classes", [])),
            )
        except (KeyError, TypeError, ValueError) as err:
            raise DataError(path, f"unreadable model record ({type(err).__name__}: {err})") from None


def _plain(values: dict[str, Any]) -> dict[str, Any]:
    return {k: list(v) if isinstance(v, tuple) else v for k, v in values.items()}


def _settings(cls: type, value: Any) -> Any:
    """A settings dataclass from itself, a legacy pickle of it, or a dict (CLI hyperparameters)."""
    if isinstance(value, cls):
        return value
    fields = {f.name for f in dataclasses.fields(cls)}
    given = vars(value) if not isinstance(value, Mapping) else value
    unknown = sorted(set(given) - fields - {"_class_path"})
    if unknown:
        raise ValueError(f"{cls.__name__} has no field(s) {unknown}")
    kwargs = {k: tuple(v) if isinstance(v, list) else v for k, v in given.items() if k in fields}
    return cls(**kwargs)


def read_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    """The contents of a Lightning checkpoint, read with ``torch.load(weights_only=True)``.

    Raises:
        DataError: missing, unreadable, or not a Lightning checkpoint.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(path, "checkpoint file does not exist")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises many types for a file that is not a checkpoint
        problem = f"{type(err).__name__}: {str(err).splitlines()[0][:160]}" if str(err) else type(err).__name__
        raise DataError(path, f"unreadable as a checkpoint (truncated, or not a .ckpt?): {problem}") from None
    if not isinstance(state, dict) or "state_dict" not in state or "pytorch-lightning_version" not in state:
        raise DataError(path, "not a Lightning checkpoint (no state_dict or pytorch-lightning_version)")
    return state


def checkpoint_record(path: str | os.PathLike, state: Mapping[str, Any] | None = None) -> CheckpointRecord:
    """The record of a checkpoint; for one written before records existed, what its hyperparameters say.

    Raises:
        DataError: the file is not a checkpoint of a task of this project.
    """
    path = Path(path)
    state = read_checkpoint(path) if state is None else state
    if RECORD_KEY in state:
        return CheckpointRecord.from_dict(state[RECORD_KEY], path)
    return _legacy_record(path, state)


def _legacy_kind(path: Path, hparams: Mapping[str, Any]) -> tuple[str, TaskKind]:
    class_path = hparams.get("_class_path")
    if class_path is not None:
        if class_path not in LEGACY_TASKS:
            raise DataError(path, f"holds a {class_path}, not a segmentation task of this project")
        return str(class_path), LEGACY_TASKS[class_path]
    names = {k for k in hparams if not k.startswith("_")}
    by_kind = {kind: cls for cls, kind in LEGACY_TASKS.items()}
    if "adaptation" in names:
        return by_kind["optical"], "optical"
    if "loss" in names:
        return by_kind["sar"], "sar"
    raise DataError(path, f"hyperparameters {sorted(names)} match no task of this project")


def _legacy_record(path: Path, state: Mapping[str, Any]) -> CheckpointRecord:
    """Record of a checkpoint written before records: input normalisation from its datamodule settings."""
    hparams = state.get("hyper_parameters") or {}
    task, kind = _legacy_kind(path, hparams)
    default_network, default_input = LEGACY_DEFAULTS[kind]
    try:
        network = _settings(NetworkConfig, hparams.get("network", default_network))
        inference = _settings(InferenceConfig, hparams.get("inference", InferenceConfig()))
    except (TypeError, ValueError) as err:
        raise DataError(path, f"unreadable hyperparameters ({err})") from None
    data = state.get("datamodule_hyper_parameters") or {}
    if "normalisation" in data:
        saved_channels = data.get("in_channels", network.in_channels)
        if saved_channels != network.in_channels:
            raise DataError(path, f"data in_channels {saved_channels} differs from the network's {network.in_channels}")
        mean, std = data.get("mean"), data.get("std")
        transform = dataclasses.replace(
            default_input,
            normalisation=data["normalisation"],
            mean=None if mean is None else tuple(mean),
            std=None if std is None else tuple(std),
        )
    else:
        transform = default_input
        warnings.warn(
            f"{path}: written before checkpoints recorded their input transform and without datamodule "
            f"settings; assuming the {kind} default ({transform.normalisation})",
            stacklevel=3,
        )
    predict_with = hparams.get("predict_with", "student")
    return CheckpointRecord(task, kind, network, transform, inference, predict_with)


@dataclass
class LoadedModel:
    """A network ready to predict raw 8-bit pixels: in eval mode, with its record and what runs it.

    Attributes:
        path: the checkpoint (or exported model) file.
        record: what the checkpoint says about the model.
        network: the network (the student's or the teacher's weights, as the record says); None for
            an exported ONNX model (``path``), which only an ONNX runtime runs (:meth:`on_runtime`).
        runner: what turns a normalised window batch into logits (a runtime of
            :mod:`sar_inference.runtimes`); None: the network itself, eager, on the CPU.
        device: where raw pixels are put before normalisation (the runner's device).
    """

    path: Path
    record: CheckpointRecord
    network: nn.Module | None
    runner: Callable[[Tensor], Tensor] | None = None
    device: torch.device = dataclasses.field(default_factory=lambda: torch.device("cpu"))

    @property
    def num_classes(self) -> int:
        """Output classes of the network."""
        return self.record.network.num_classes

    def forward(self, images: Tensor) -> Tensor:
        """Logits of normalised (N, C, H, W) images of any size."""
        if self.runner is not None:
            return self.runner(images)
        return padded_forward(self.network, images, self.record.network.output_stride)

    def normalise(self, raw: Tensor) -> Tensor:
        """(C, H, W) raw 8-bit pixels to the normalised network input (the band replicated as needed)."""
        return self.record.input.normalise(raw[None], self.record.network.in_channels)[0]

    def probs(self, raw: np.ndarray | Tensor, inference: InferenceConfig | None = None) -> Tensor:
        """(classes, H, W) probabilities of one (C, H, W) raw image: sliding window + TTA, on the model's device.

        Args:
            raw: raw 8-bit pixels (a 1-band SAR tile or a 3-band optical tile).
            inference: window, stride, TTA and batching (default: the checkpoint's).
        """
        image = torch.from_numpy(np.ascontiguousarray(raw)) if isinstance(raw, np.ndarray) else raw
        image = self.normalise(image.to(self.device))
        return (inference or self.record.inference).probs(self.forward, image, self.num_classes)

    def on_runtime(self, settings: RuntimeSettings) -> LoadedModel:
        """This model run as ``settings`` say: its network moved to their device, run by their runtime.

        Raises:
            ValueError: an impossible combination (see :meth:`RuntimeSettings.resolve`), or a torch
                runtime for an exported ONNX model.
        """
        settings = settings.resolve()
        if self.network is None:
            try:
                return dataclasses.replace(self, runner=onnx_runner(str(self.path), settings))
            except ValueError as err:
                raise ValueError(f"{self.path}: exported, so {err}") from None
        network = self.record.network
        runner = network_runner(self.network, network.output_stride, network.in_channels, settings)
        return dataclasses.replace(self, runner=runner, device=torch.device(settings.device))


def network_weights(path: Path, state: Mapping[str, Any], prefix: str) -> dict[str, Tensor]:
    """The tensors of one network of the task (``model.`` or ``teacher.``), without the prefix.

    Raises:
        DataError: the checkpoint has no tensor of that network.
    """
    weights = {k.removeprefix(prefix): v for k, v in state["state_dict"].items() if k.startswith(prefix)}
    if not weights:
        raise DataError(path, f"holds no weights of the network {prefix.rstrip('.')!r}")
    return weights


def load_model(path: str | os.PathLike, kind: TaskKind | None = "sar") -> LoadedModel:
    """Rebuild the network of a checkpoint and load its weights; Lightning is not needed.

    Args:
        path: ``.ckpt`` file written by ``python cli.py fit``, ``Trainer.save_checkpoint`` or an
            earlier version of this project.
        kind: the kind of model the caller needs (``sar`` for ``map`` and ``submit``); None takes any.

    Raises:
        DataError: naming the file: missing, unreadable, not a Lightning checkpoint, a model of the
            wrong kind or channel count, or weights that do not fit the recorded network.
    """
    path = Path(path)
    state = read_checkpoint(path)
    record = checkpoint_record(path, state)
    if kind is not None and record.kind != kind:
        name = record.task.rpartition(".")[2]
        raise DataError(path, f"is a {name} checkpoint ({record.kind}), but this command needs a {kind} model")
    in_channels = record.network.in_channels
    if record.kind == "sar" and in_channels not in SAR_INPUT_CHANNELS:
        raise DataError(path, f"network takes {in_channels} input channels; a SAR model takes 1 or 3")
    # Weights come from the file: never download or read the encoder's initial weights again.
    network = build_network(dataclasses.replace(record.network, encoder_weights=None, init_weights=None))
    prefix = "teacher." if record.predict_with == "teacher" else "model."
    try:
        network.load_state_dict(network_weights(path, state, prefix))
    except RuntimeError as err:
        raise DataError(path, f"weights do not fit the recorded network ({str(err).splitlines()[0][:300]})") from None
    return LoadedModel(path, record, network.eval())
