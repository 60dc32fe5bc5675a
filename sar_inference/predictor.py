"""Raw SAR pixels to class probabilities with one or more checkpoints, and probabilities to a label.

The engine shared by ``map`` (block by block) and ``submit`` (tile by tile): each model normalises
the 8-bit band with the input transform its checkpoint records, predicts it with the sliding window
and test-time augmentation of :func:`~sar_inference.engine.tta_probs`, and the models' (or soft
maps') probabilities are combined with :func:`~sar_inference.engine.ensemble_probs`.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from torch import Tensor

from sar_inference.checkpoints import LoadedModel, load_model
from sar_inference.engine import ensemble_probs, probs_to_label, soft_to_uint8
from sar_inference.runtimes import RuntimeSettings
from sar_inference.settings import InferenceConfig, InferenceOverrides


@dataclass(frozen=True)
class EnsembleSettings:
    """How several models' (or soft maps') probabilities make one label."""

    model_weights: tuple[float, ...] | None = None
    """One weight per source (1 each when None); ``submit`` counts soft folders first, then checkpoints."""
    class_weights: tuple[float, ...] | None = None
    """Per-class factors of the argmax. None: [0, 1, ..., 1] for several sources (class 0 weight 0 makes
    only classes 1..8 win, as the reference does), all 1 for one."""

    def class_weights_for(self, num_sources: int, num_classes: int) -> list[float] | None:
        """The class weights to use, checked against the number of sources and classes.

        Raises:
            ValueError: a wrong count of weights, negative weights, or weights that are all zero.
        """
        weights = self.class_weights
        if weights is None and num_sources > 1:
            weights = (0.0,) + (1.0,) * (num_classes - 1)
        check_weights(self.model_weights, weights, num_sources, num_classes)
        return None if weights is None else list(weights)


def check_weights(
    model_weights: Sequence[float] | None,
    class_weights: Sequence[float] | None,
    num_models: int,
    num_classes: int,
) -> None:
    """Raise ValueError for a wrong count of weights, negative weights, or weights that are all zero."""
    for name, weights, count in (
        ("model_weights", model_weights, num_models),
        ("class_weights", class_weights, num_classes),
    ):
        if weights is None:
            continue
        if len(weights) != count:
            raise ValueError(f"{name} needs {count} values, got {len(weights)}: {list(weights)}")
        if any(w < 0 for w in weights) or not any(w > 0 for w in weights):
            raise ValueError(f"{name} must be non-negative with at least one positive, got {list(weights)}")


@dataclass(frozen=True)
class LabelMap:
    """A predicted label and its confidence: the ensemble's mean probability of the chosen class."""

    label: np.ndarray
    """(H, W) uint8 classes."""
    confidence: np.ndarray
    """(H, W) uint8 floor(255 p) of the chosen class."""


def mean_probs(prob_maps: Sequence[Tensor], model_weights: Sequence[float] | None = None) -> Tensor:
    """Weighted mean of (C, H, W) probability maps (weights normalised to sum to 1; 1 each when None)."""
    weights = [1.0] * len(prob_maps) if model_weights is None else list(model_weights)
    total = sum(weights)
    return ensemble_probs(prob_maps, [w / total for w in weights])


def combine(
    prob_maps: Sequence[Tensor],
    model_weights: Sequence[float] | None = None,
    class_weights: Sequence[float] | None = None,
) -> LabelMap:
    """Weighted mean of (C, H, W) probability maps, then the (class-weighted) argmax.

    Args:
        prob_maps: one probability map per model or soft-map folder.
        model_weights: one weight per map (1 each when None); normalised to sum to 1.
        class_weights: per-class factors of the argmax; class 0 weight 0 makes only 1..8 win.
    """
    check_weights(model_weights, class_weights, len(prob_maps), prob_maps[0].shape[0])
    mean = mean_probs(prob_maps, model_weights)
    label = probs_to_label(mean, class_weights)
    confidence = soft_to_uint8(mean.gather(0, label[None].long())[0])
    return LabelMap(label.numpy(), confidence.numpy())


class TaskPredictor:
    """Class probabilities of raw single-band 8-bit SAR arrays from one or more loaded models.

    Args:
        models: the models (all with the same number of classes).
        inference: sliding window and test-time augmentation applied to every model.
    """

    def __init__(self, models: Sequence[LoadedModel], inference: InferenceConfig) -> None:
        if not models:
            raise ValueError("TaskPredictor needs at least one model")
        counts = {m.num_classes for m in models}
        if len(counts) != 1:
            raise ValueError(f"models differ in class count: {[(str(m.path), m.num_classes) for m in models]}")
        self.models = list(models)
        self.inference = inference
        self.num_classes = counts.pop()

    @property
    def training_gsd(self) -> tuple[float, float]:
        """The pixel sizes the first model was trained on."""
        return self.models[0].record.input.training_gsd

    def probs(self, raw: np.ndarray) -> list[Tensor]:
        """(C, H, W) float32 probabilities of each model for a (1, H, W) raw 8-bit array, on the CPU."""
        return [model.probs(raw, self.inference).cpu() for model in self.models]


def load_sar_model(path: str | os.PathLike, runtime: RuntimeSettings = RuntimeSettings()) -> LoadedModel:
    """A SAR checkpoint (or a model exported to ``.onnx``) ready to run as ``runtime`` says.

    Raises:
        DataError: the file is missing, unreadable, or not a SAR model (see :func:`load_model`).
        ValueError: an impossible runtime (see :meth:`RuntimeSettings.resolve`).
    """
    if Path(path).suffix == ".onnx":
        from sar_inference.export import load_onnx_model

        return load_onnx_model(path, kind="sar").on_runtime(runtime)
    return load_model(path, kind="sar").on_runtime(runtime)


def load_predictor(
    ckpt_path: str | Sequence[str],
    inference: InferenceOverrides = InferenceOverrides(),
    runtime: RuntimeSettings = RuntimeSettings(),
) -> TaskPredictor:
    """Load SAR checkpoints into a predictor; ``inference`` overrides the first one's settings.

    Args:
        ckpt_path: one checkpoint (or exported ``.onnx`` model), or several for an ensemble.
        inference: sliding window and TTA overrides; None fields keep the first model's.
        runtime: where and how the networks run (default ``auto``: OpenVINO, else ONNX Runtime on the CPU).

    Raises:
        DataError: a checkpoint is missing, unreadable, or not a SAR model (see :func:`load_model`).
    """
    paths = [ckpt_path] if isinstance(ckpt_path, str) else list(ckpt_path)
    models = [load_sar_model(p, runtime) for p in paths]
    return TaskPredictor(models, inference.apply(models[0].record.inference))
