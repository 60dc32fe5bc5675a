"""Raw SAR pixels to class probabilities with one or more checkpoints, and probabilities to a label.

The engine shared by ``map`` (block by block) and ``submit`` (tile by tile): each task normalises
the raw band as its training data was normalised, predicts it with the sliding window and
test-time augmentation of :func:`~sar_inference.engine.tta_probs`, and the models' (or
soft maps') probabilities are combined with :func:`~sar_inference.engine.ensemble_probs`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from datamodules.transforms import NormalisationMode
from sar_inference.checkpoints import LoadedTask, load_task
from sar_inference.engine import Blend, Flip, ensemble_probs, probs_to_label, soft_to_uint8
from sar_inference.settings import InferenceConfig


def default_class_weights(num_sources: int, num_classes: int) -> list[float] | None:
    """The reference's rule: an ensemble gives class 0 weight 0 (only 1..8 win); one model keeps every class."""
    return [0.0] + [1.0] * (num_classes - 1) if num_sources > 1 else None


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
    weights = [1.0] * len(prob_maps) if model_weights is None else list(model_weights)
    total = sum(weights)
    mean = ensemble_probs(prob_maps, [w / total for w in weights])
    label = probs_to_label(mean, class_weights)
    confidence = soft_to_uint8(mean.gather(0, label[None].long())[0])
    return LabelMap(label.numpy(), confidence.numpy())


class TaskPredictor:
    """Class probabilities of raw single-band SAR arrays from one or more loaded tasks.

    Args:
        tasks: the models (all with the same number of classes).
        inference: sliding window and test-time augmentation applied to every model.
    """

    def __init__(self, tasks: Sequence[LoadedTask], inference: InferenceConfig) -> None:
        if not tasks:
            raise ValueError("TaskPredictor needs at least one task")
        counts = {t.num_classes for t in tasks}
        if len(counts) != 1:
            raise ValueError(f"models differ in class count: {[(str(t.path), t.num_classes) for t in tasks]}")
        self.tasks = list(tasks)
        self.inference = inference
        self.num_classes = counts.pop()

    def probs(self, raw: np.ndarray) -> list[Tensor]:
        """(C, H, W) float32 probabilities of each task for a (1, H, W) raw array (pixel units, e.g. uint8)."""
        cfg = self.inference
        image = torch.from_numpy(np.ascontiguousarray(raw))[None]
        return [loaded.task.predict_probs(loaded.normaliser(image)[0], cfg) for loaded in self.tasks]


def load_predictor(
    ckpt_path: str | Sequence[str],
    *,
    window: int | None = None,
    stride: int | None = None,
    scales: Sequence[float] | None = None,
    flips: Sequence[Flip] | None = None,
    batch_size: int | None = None,
    blend: Blend | None = None,
    normalisation: NormalisationMode | None = None,
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
) -> TaskPredictor:
    """Load SAR checkpoints into a predictor; the options that are not None override the first one's ``inference``.

    Raises:
        DataError: a checkpoint is missing, unreadable, or not a SAR model (see :func:`load_task`).
    """
    paths = [ckpt_path] if isinstance(ckpt_path, str) else list(ckpt_path)
    tasks = [load_task(p, normalisation=normalisation, mean=mean, std=std) for p in paths]
    given = {"window": window, "stride": stride, "batch_size": batch_size, "blend": blend, "scales": scales}
    changes = {k: tuple(v) if isinstance(v, list | tuple) else v for k, v in given.items() if v is not None}
    if flips is not None:
        changes["flips"] = tuple(flips)
    return TaskPredictor(tasks, dataclasses.replace(tasks[0].task.inference_config, **changes))
