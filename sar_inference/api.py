"""The Python API: load a checkpoint once, then map GeoTIFF scenes or predict numpy arrays (e.g. in a notebook).

    from sar_inference import LandCoverMapper
    mapper = LandCoverMapper("best.ckpt")           # or device="cuda", precision="bf16-mixed"
    mapper.map("scene.tif", "scene_map.tif")        # the COG `python cli.py map` writes
    labels = mapper.predict(sar)                     # (H, W) uint8 classes of an (H, W) uint8 SAR array

The same engine, settings and runtimes as ``map`` and ``submit``.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from datamodules.sar_scaling import SARScaling, ScaledSAR
from sar_inference.predictor import EnsembleSettings, combine, load_predictor, mean_probs
from sar_inference.runtimes import Precision, Runtime, RuntimeSettings
from sar_inference.scene_mapper import map_with_predictor
from sar_inference.settings import InferenceOverrides


class LandCoverMapper:
    """One or several SAR checkpoints (an ensemble), loaded once, that map scenes and predict arrays.

    Args:
        ckpt_path: a stage-2 checkpoint or an exported ``.onnx`` model, or several for an ensemble.
        device: torch device (``cpu``, ``cuda``, ``cuda:1``).
        runtime: ``auto`` (on the CPU OpenVINO, else ONNX Runtime, else PyTorch), ``torch``, ``openvino``
            or ``onnxruntime``.
        precision: autocast precision of the torch runtime on a GPU (``bf16-mixed``, ``16-mixed``).
        inference: sliding window and TTA overrides (e.g. ``InferenceOverrides(flips=("none", "h", "v"))``).
        ensemble: model and class weights of the argmax (class 0 weight 0 for an ensemble by default).

    Raises:
        DataError: a checkpoint is missing, unreadable or not a SAR model.
        ValueError: an impossible runtime, device or precision.
    """

    def __init__(
        self,
        ckpt_path: str | os.PathLike | Sequence[str | os.PathLike],
        *,
        device: str = "cpu",
        runtime: Runtime = "auto",
        precision: Precision = "32",
        inference: InferenceOverrides = InferenceOverrides(),
        ensemble: EnsembleSettings = EnsembleSettings(),
    ) -> None:
        paths = [str(ckpt_path)] if isinstance(ckpt_path, (str, os.PathLike)) else [str(p) for p in ckpt_path]
        self.runtime = RuntimeSettings(runtime=runtime, device=device, precision=precision)
        self.predictor = load_predictor(paths, inference, self.runtime)
        self.ensemble = ensemble
        self._class_weights = ensemble.class_weights_for(len(self.predictor.models), self.predictor.num_classes)

    def probabilities(self, sar: np.ndarray) -> np.ndarray:
        """(classes, H, W) float32 mean probabilities (over the models) of an 8-bit (H, W) or (1, H, W) SAR array."""
        return mean_probs(self.predictor.probs(_as_band(sar)), self.ensemble.model_weights).numpy()

    def predict(self, sar: np.ndarray) -> np.ndarray:
        """(H, W) uint8 classes (0..8) of an 8-bit (H, W) or (1, H, W) SAR array, as ``map`` labels a block."""
        maps = self.predictor.probs(_as_band(sar))
        return combine(maps, self.ensemble.model_weights, self._class_weights).label

    def map(
        self, input: str | os.PathLike, output: str | os.PathLike, scaling: SARScaling = SARScaling(), **options: Any
    ) -> Path:
        """Map a SAR GeoTIFF of any size to a class COG, as ``python cli.py map`` does.

        Args:
            input: the SAR scene (1 band).
            output: the map to write.
            scaling: how the scene's values become 8-bit amplitude (``SARScaling(source="db")``).
            **options: further options of :func:`sar_inference.scene_mapper.map_scene` (``confidence``,
                ``preview``, ``nodata``, ``block``, ...).
        """
        options.setdefault("ensemble", self.ensemble)
        return map_with_predictor(self.predictor, ScaledSAR(input, scaling), output, **options)


def _as_band(sar: np.ndarray) -> np.ndarray:
    """A (1, H, W) uint8 array from (H, W) or (1, H, W) 8-bit SAR; anything else is refused with what it is."""
    array = np.asarray(sar)
    if array.ndim == 2:
        array = array[None]
    if array.ndim != 3 or array.shape[0] != 1:
        raise ValueError(f"SAR array must be (H, W) or (1, H, W), got shape {array.shape}")
    if array.dtype != np.uint8:
        raise ValueError(
            f"SAR array holds {array.dtype}; the models take 8-bit amplitude (0..255): convert it first "
            "(datamodules.sar_scaling.SARScaling(source=...).to_uint8, or map the GeoTIFF with a scaling)"
        )
    return array
