"""Resolution alignment augmentation (RAA) of stage 1: make sharp source crops look resampled."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import cv2
import numpy as np

DownInterpolation = Literal["linear", "area"]
RAAPosition = Literal["after_crop", "before_rescale"]
_CV2_INTERPOLATION = {"linear": cv2.INTER_LINEAR, "area": cv2.INTER_AREA}


def _check_range(name: str, value: tuple[float, float], low: float, high: float) -> tuple[float, float]:
    if len(value) != 2:
        raise ValueError(f"{name} must be a (low, high) pair, got {value!r}")
    lo, hi = float(value[0]), float(value[1])
    if not low < lo <= hi <= high:
        raise ValueError(f"{name} must satisfy {low} < low <= high <= {high}, got {value!r}")
    return lo, hi


def _resize(array: np.ndarray, height: int, width: int, interpolation: int) -> np.ndarray:
    out = cv2.resize(array, (width, height), interpolation=interpolation)
    # cv2 drops a trailing singleton channel axis; keep the caller's layout.
    return out[..., None] if array.ndim == 3 and out.ndim == 2 else out


@dataclass(frozen=True)
class RAASettings:
    """Settings of the resolution alignment augmentation (the reference's; ``p: 0`` turns it off)."""

    p: float = 0.2
    """Probability of the step per source crop."""
    downsample_range: tuple[float, float] = (0.1, 0.35)
    """Range of the downsample ratio r, in (0, 1]."""
    upsample_range: tuple[float, float] = (1.0, 3.0)
    """Range of the final size relative to the input, u."""
    down_interpolation: DownInterpolation = "linear"
    """``linear`` (reference, aliased) or ``area`` (pre-filtered, like a coarser sensor)."""
    position: RAAPosition = "after_crop"
    """Where in the source augmentation it runs: ``after_crop`` (the reference's order: random rescale, crop,
    flips and rot90, then RAA on the crop and a second random crop back to the crop size) or
    ``before_rescale`` (on the whole tile, before the random rescale and the crop)."""


class ResolutionAlignment:
    """A step of :class:`datamodules.transforms.TrainAugmentation` (source images only): after its crop
    (``after_crop``, the reference's order) or before its rescale (``before_crop``), as ``position`` says.

    With probability ``p``: downsample the image to ``r`` x its size (``r ~ U(downsample_range)``),
    then resize that to ``u`` x the ORIGINAL size (``u ~ U(upsample_range)``) with bilinear
    interpolation; the label goes straight from its original size to the same final size with
    nearest neighbour (``cv2.INTER_NEAREST_EXACT``, pixel-centre aligned with the bilinear image).
    The random crop that follows (the second crop after the crop, or the augmentation's crop) brings
    both back to the crop size.

    The downsample is bilinear (``cv2.INTER_LINEAR``) by default, as in the reference: at
    r = 0.1..0.35 it samples the image without anti-aliasing, which is what a resampling chain
    that ignores the footprint does. ``down_interpolation="area"`` (``cv2.INTER_AREA``) averages
    each output pixel's footprint instead, like a coarser sensor, and removes the aliasing.

    Args:
        settings: p, the ranges of ``r`` and ``u`` and the downsample interpolation.
    """

    def __init__(self, settings: RAASettings = RAASettings()) -> None:
        p, down_interpolation = settings.p, settings.down_interpolation
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"p must be in [0, 1], got {p}")
        if down_interpolation not in _CV2_INTERPOLATION:
            raise ValueError(f"down_interpolation must be 'linear' or 'area', got {down_interpolation!r}")
        self.p = p
        self.downsample_range = _check_range("downsample_range", tuple(settings.downsample_range), 0.0, 1.0)
        self.upsample_range = _check_range("upsample_range", tuple(settings.upsample_range), 0.0, float("inf"))
        self.down_interpolation = down_interpolation

    def sample(self, rng: np.random.Generator) -> tuple[float, float] | None:
        """Draw whether to apply and, if so, the factors ``(r, u)``; None means "leave unchanged"."""
        if rng.random() >= self.p:
            return None
        return float(rng.uniform(*self.downsample_range)), float(rng.uniform(*self.upsample_range))

    def __call__(self, image: np.ndarray, label: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """Apply RAA to an (H, W[, C]) uint8 image and its (H, W) label; returns (image, label)."""
        if image.shape[:2] != label.shape[:2]:
            raise ValueError(f"image {image.shape[:2]} and label {label.shape[:2]} sizes differ")
        factors = self.sample(rng)
        if factors is None:
            return image, label
        return self.apply(image, label, *factors)

    def apply(self, image: np.ndarray, label: np.ndarray, r: float, u: float) -> tuple[np.ndarray, np.ndarray]:
        """Deterministic RAA with given factors: final size ``round(u*H) x round(u*W)``."""
        height, width = label.shape[:2]
        low = _resize(
            image, max(1, round(r * height)), max(1, round(r * width)), _CV2_INTERPOLATION[self.down_interpolation]
        )
        out_h, out_w = max(1, round(u * height)), max(1, round(u * width))
        image = _resize(low, out_h, out_w, cv2.INTER_LINEAR)
        # NEAREST_EXACT samples at pixel centres like INTER_LINEAR; plain NEAREST drifts by up to a pixel.
        label = _resize(label, out_h, out_w, cv2.INTER_NEAREST_EXACT)
        return image, label
