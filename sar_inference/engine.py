"""Tiled inference on whole tiles: sliding windows, test-time augmentation, ensembles, soft labels.

Pure tensor functions, no file I/O (reading and writing rasters is the caller's job). The
procedure follows docs/method.md sections 3 and 5: windows of the training crop size with overlapping
softmax outputs averaged, scale x flip test-time augmentation (mean of softmax), a weighted
ensemble of models with a per-class weight, and uint8 soft probability maps (floor(255 p)).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor

Blend = Literal["mean", "gaussian"]
Flip = Literal["none", "h", "v", "hv"]
FLIP_DIMS: dict[str, tuple[int, ...]] = {"none": (), "h": (-1,), "v": (-2,), "hv": (-2, -1)}
"""Axes each test-time flip mirrors: left-right, up-down, or both (the contest baseline's fourth view)."""


def _check_window(window: int, stride: int) -> None:
    if window <= 0:
        raise ValueError(f"window must be positive (in pixels), got {window}")
    if stride <= 0:
        raise ValueError(f"stride must be positive (in pixels), got {stride}")
    if stride > window:
        raise ValueError(f"stride ({stride}) must not exceed window ({window}): pixels between windows would be missed")


def window_positions(length: int, window: int, stride: int) -> list[int]:
    """Start offsets of the windows along one axis.

    Windows step by ``stride``; the last one is shifted back to end exactly at ``length`` so every
    pixel is covered without reading past the border. An axis no longer than the window gets one
    window at 0 (the caller pads it up to the window).

    Args:
        length: axis length in pixels.
        window: window side in pixels.
        stride: step between window starts in pixels (``0 < stride <= window``).

    Returns:
        Sorted, distinct start offsets.
    """
    _check_window(window, stride)
    if length <= 0:
        raise ValueError(f"length must be positive, got {length}")
    if length <= window:
        return [0]
    positions = list(range(0, length - window + 1, stride))
    if positions[-1] + window < length:
        positions.append(length - window)
    return positions


def blend_weights(window: int, blend: Blend, device: torch.device | None = None) -> Tensor:
    """Per-pixel weight of a window's output: ones (``mean``) or a centred Gaussian, sigma = window / 8."""
    if blend == "mean":
        return torch.ones(window, window, device=device)
    if blend == "gaussian":
        centre, sigma = (window - 1) / 2, window / 8
        axis = torch.exp(-0.5 * ((torch.arange(window, device=device) - centre) / sigma) ** 2)
        return torch.outer(axis, axis)
    raise ValueError(f"blend must be 'mean' or 'gaussian', got {blend!r}")


def _as_chw(image: Tensor) -> Tensor:
    if image.dim() == 4 and image.shape[0] == 1:
        return image[0]
    if image.dim() != 3:
        raise ValueError(f"image must be (C, H, W) or (1, C, H, W), got shape {tuple(image.shape)}")
    return image


def _accumulate_windows(
    model: Callable[[Tensor], Tensor],
    image: Tensor,
    num_classes: int,
    window: int,
    stride: int,
    batch_size: int,
    weights: Tensor,
) -> tuple[Tensor, Tensor]:
    """Weighted softmax sum and weight sum over all windows of a (C, H, W) image at least a window large."""
    full_h, full_w = image.shape[-2:]
    corners = [
        (y, x) for y in window_positions(full_h, window, stride) for x in window_positions(full_w, window, stride)
    ]
    prob_sum = torch.zeros(num_classes, full_h, full_w, device=image.device)
    weight_sum = torch.zeros(full_h, full_w, device=image.device)
    for start in range(0, len(corners), batch_size):
        chunk = corners[start : start + batch_size]
        logits = model(torch.stack([image[:, y : y + window, x : x + window] for y, x in chunk]))
        expected = (len(chunk), num_classes, window, window)
        if tuple(logits.shape) != expected:
            raise ValueError(f"model returned shape {tuple(logits.shape)} for a batch of windows, expected {expected}")
        probs = logits.float().softmax(dim=1) * weights
        for (y, x), prob in zip(chunk, probs, strict=True):
            prob_sum[:, y : y + window, x : x + window] += prob
            weight_sum[y : y + window, x : x + window] += weights
    return prob_sum, weight_sum


def sliding_window_probs(
    model: Callable[[Tensor], Tensor],
    image: Tensor,
    num_classes: int,
    window: int,
    stride: int,
    batch_size: int = 8,
    blend: Blend = "mean",
) -> Tensor:
    """Softmax probabilities of a whole image from overlapping windows.

    Windows are run through ``model`` in batches of up to ``batch_size``; each window's softmax is
    added to a probability sum with its blend weight, and the sum is divided by the total weight.
    An image smaller than the window (in either axis) is zero-padded up to it and the output cropped.

    Args:
        model: maps a (B, C, window, window) batch to (B, num_classes, window, window) logits; it
            must accept the window size (``SegmentationTask`` pads to its output stride itself); put it
            in eval mode first.
        image: (C, H, W) or (1, C, H, W), already normalised.
        num_classes: number of output channels of ``model``.
        window: window side in pixels.
        stride: step between windows in pixels (``0 < stride <= window``).
        batch_size: windows per forward pass.
        blend: ``mean`` (plain average) or ``gaussian`` (centre-weighted, sigma = window / 8).

    Returns:
        (num_classes, H, W) float32 probabilities.
    """
    _check_window(window, stride)
    if batch_size <= 0:
        raise ValueError(f"batch_size must be positive, got {batch_size}")
    image = _as_chw(image)
    height, width = image.shape[-2:]
    weights = blend_weights(window, blend, device=image.device)
    with torch.inference_mode():
        # Only axes shorter than the window are padded; longer axes end with a window flush with the border.
        padded = F.pad(image, (0, max(0, window - width), 0, max(0, window - height)))
        prob_sum, weight_sum = _accumulate_windows(model, padded, num_classes, window, stride, batch_size, weights)
        return (prob_sum / weight_sum)[:, :height, :width]


def whole_image_probs(model: Callable[[Tensor], Tensor], image: Tensor, num_classes: int) -> Tensor:
    """Softmax probabilities of a (C, H, W) image in one forward pass, without windows (the contest baseline's way).

    ``model`` must accept the image's size (``SegmentationTask`` pads to its output stride itself).
    """
    image = _as_chw(image)
    with torch.inference_mode():
        logits = model(image[None])
    expected = (1, num_classes, *image.shape[-2:])
    if tuple(logits.shape) != expected:
        raise ValueError(f"model returned shape {tuple(logits.shape)} for a whole image, expected {expected}")
    return logits[0].float().softmax(dim=0)


def _resize(tensor: Tensor, size: tuple[int, int]) -> Tensor:
    """Bilinear resize of a (C, H, W) tensor; the identity when the size already matches."""
    if tuple(tensor.shape[-2:]) == size:
        return tensor
    return F.interpolate(tensor[None], size=size, mode="bilinear", align_corners=False)[0]


def tta_probs(
    model: Callable[[Tensor], Tensor],
    image: Tensor,
    num_classes: int,
    *,
    window: int | None,
    stride: int,
    scales: Sequence[float] = (1.0,),
    flips: Sequence[Flip] = ("none",),
    batch_size: int = 8,
    blend: Blend = "mean",
) -> Tensor:
    """Mean softmax over scale x flip views, each predicted with :func:`sliding_window_probs`.

    Each view resizes the image (bilinear) to ``round(scale * H) x round(scale * W)``, flips it,
    predicts, flips back and resizes the probabilities to H x W. The reference lists scales
    (0.5, 0.75, 1.0, 1.25, 1.5, 1.75) and flips (none, h, v): 6 x 3 = 18 views (the method text calls
    it 24-view; the lists give 18, docs/method.md section 5). Pass them from the config; the defaults are one view.

    Args:
        model: window batch -> logits, as for :func:`sliding_window_probs`.
        image: (C, H, W) or (1, C, H, W), already normalised.
        num_classes: number of output channels of ``model``.
        window: window side in pixels; None predicts each view whole, in one forward pass
            (:func:`whole_image_probs`).
        stride: step between windows in pixels (unused without a window).
        scales: resize factors (> 0).
        flips: ``none``, ``h`` (left-right), ``v`` (up-down) or ``hv`` (both).
        batch_size: windows per forward pass.
        blend: window blending, ``mean`` or ``gaussian``.

    Returns:
        (num_classes, H, W) float32 probabilities.
    """
    if not scales or not flips:
        raise ValueError("tta_probs needs at least one scale and one flip")
    if any(not (math.isfinite(s) and s > 0) for s in scales):
        raise ValueError(f"scales must be positive, got {list(scales)}")
    unknown = [f for f in flips if f not in FLIP_DIMS]
    if unknown:
        raise ValueError(f"flips must be among {sorted(FLIP_DIMS)}, got {unknown}")
    image = _as_chw(image)
    height, width = image.shape[-2:]
    total = torch.zeros(num_classes, height, width, device=image.device)
    with torch.inference_mode():
        for scale in scales:
            scaled = _resize(image, (max(1, round(scale * height)), max(1, round(scale * width))))
            for flip in flips:
                dims = FLIP_DIMS[flip]
                view = scaled.flip(dims) if dims else scaled
                if window is None:
                    probs = whole_image_probs(model, view, num_classes)
                else:
                    probs = sliding_window_probs(model, view, num_classes, window, stride, batch_size, blend)
                probs = probs.flip(dims) if dims else probs
                total += _resize(probs, (height, width))
    return total / (len(scales) * len(flips))


def ensemble_probs(
    prob_maps: Sequence[Tensor],
    model_weights: Sequence[float] | None = None,
    class_weights: Sequence[float] | None = None,
) -> Tensor:
    """Weighted sum of several models' (C, H, W) probabilities, then scaled per class.

    Args:
        prob_maps: one (C, H, W) probability map per model, all the same shape.
        model_weights: one weight per model; 1 each when None.
        class_weights: one weight per class; a 0 for class 0 lets only classes 1..8 win, as the
            reference does at test time. 1 each when None.

    Returns:
        (C, H, W) float32 scores (not renormalised).
    """
    if not prob_maps:
        raise ValueError("ensemble_probs needs at least one probability map")
    shape = prob_maps[0].shape
    if any(p.shape != shape for p in prob_maps) or len(shape) != 3:
        raise ValueError(
            f"probability maps must all be (C, H, W) of one shape, got {[tuple(p.shape) for p in prob_maps]}"
        )
    weights = [1.0] * len(prob_maps) if model_weights is None else list(model_weights)
    if len(weights) != len(prob_maps):
        raise ValueError(f"got {len(weights)} model weights for {len(prob_maps)} probability maps")
    total = sum(w * p.float() for w, p in zip(weights, prob_maps, strict=True))
    if class_weights is not None:
        if len(class_weights) != shape[0]:
            raise ValueError(f"got {len(class_weights)} class weights for {shape[0]} classes")
        total = total * torch.as_tensor(class_weights, dtype=torch.float32, device=total.device)[:, None, None]
    return total


def probs_to_label(probs: Tensor, class_weights: Sequence[float] | None = None) -> Tensor:
    """Argmax over classes of (C, H, W) scores: an (H, W) uint8 label.

    Args:
        probs: (C, H, W) probabilities or scores.
        class_weights: optional per-class factors applied before the argmax; a class of weight 0
            never wins, not even where every other class scores 0 too (class 0 weight 0 makes only
            1..8 win, as the reference's ensemble does).
    """
    if class_weights is not None:
        if len(class_weights) != probs.shape[0]:
            raise ValueError(f"got {len(class_weights)} class weights for {probs.shape[0]} classes")
        weights = torch.as_tensor(class_weights, dtype=torch.float32, device=probs.device)[:, None, None]
        probs = torch.where(weights > 0, probs.float() * weights, torch.tensor(-torch.inf, device=probs.device))
    # Over the contiguous last axis: torch's CPU argmax over the strided class axis took 6x as long
    # (0.15 s of a 2.4 s one-view map of 768^2).
    return probs.movedim(0, -1).contiguous().argmax(dim=-1).to(torch.uint8)


def soft_to_uint8(probs: Tensor) -> Tensor:
    """Probabilities to the uint8 soft pseudo-label format, floor(255 p) clipped to 0..255."""
    return torch.floor(probs.float() * 255).clamp(0, 255).to(torch.uint8)


def uint8_to_soft(soft: Tensor) -> Tensor:
    """uint8 soft pseudo-labels back to float32 probabilities, u8 / 255."""
    return soft.float() / 255


def agreement(label_a: Tensor, label_b: Tensor, ignore: int = 0) -> Tensor:
    """Keep the label where two models agree, ``ignore`` where they differ."""
    if label_a.shape != label_b.shape:
        raise ValueError(f"labels differ in shape: {tuple(label_a.shape)} vs {tuple(label_b.shape)}")
    return torch.where(label_a == label_b, label_a, torch.full_like(label_a, ignore))


def soft_ensemble_labels(soft_maps: Sequence[Tensor]) -> Tensor:
    """Sum N models' uint8 (C, H, W) soft maps and take the argmax: an (H, W) uint8 label."""
    if not soft_maps:
        raise ValueError("soft_ensemble_labels needs at least one soft map")
    if any(s.shape != soft_maps[0].shape for s in soft_maps):
        raise ValueError(f"soft maps differ in shape: {[tuple(s.shape) for s in soft_maps]}")
    # int32 because uint8 sums of two or more maps overflow.
    total = torch.stack([s.to(torch.int32) for s in soft_maps]).sum(dim=0)
    return probs_to_label(total)
