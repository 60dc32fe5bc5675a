"""Building blocks of the stage-1 mean-teacher adapter (DACS-style): EMA teacher, pseudo-label
weights, ClassMix and the strong augmentation of the mixed images.

Everything here is a pure function of its inputs (plus an optional ``torch.Generator``); the
LightningModule that wires them into a training step lives elsewhere.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from datamodules.classes import PADDING

BufferMode = Literal["copy", "ema", "keep"]

WeightingMode = Literal["image_confidence", "pixel_threshold", "none"]


@dataclass(frozen=True)
class AdaptationConfig:
    """Mean-teacher settings; ``enabled: false`` trains the source-only baseline with the same budget."""

    enabled: bool = True
    alpha_max: float = 0.999
    """Upper bound of the EMA momentum min(1 - 1/(k+1), alpha_max)."""
    tau: float = 0.968
    """Teacher confidence threshold of the pseudo-label weights."""
    weighting: WeightingMode = "image_confidence"
    """``image_confidence``: one weight per target image (threshold-free); ``pixel_threshold``:
    pixels below tau weigh 0; ``none``: every pseudo-label weighs 1."""
    classmix: bool = True
    """Mix source classes into the target; off: learn the strongly augmented target alone."""
    classmix_per_image: bool = True
    """Choose the mixed classes per image (the paper); False: from the whole batch (reference code)."""
    teacher_mode: Literal["train", "eval"] = "train"
    """BatchNorm/dropout mode of the teacher when it labels the target (DAFormer: train, no dropout)."""
    jitter_p: float = 0.5
    brightness: float = 0.2
    contrast: float = 0.2
    saturation: float = 0.2
    hue: float = 0.2
    blur_p: float = 0.5
    blur_sigma: tuple[float, float] = (0.15, 1.15)
    blur_kernel_fraction: float = 0.1


# Registered (also under its path before it moved here) for torch.load(weights_only=True), see networks.py.
torch.serialization.add_safe_globals(
    [AdaptationConfig, (AdaptationConfig, "lightning_modules.optical_adapter.AdaptationConfig")]
)

# ---------------------------------------------------------------------------------------------
# EMA teacher
# ---------------------------------------------------------------------------------------------


def ema_momentum(step: int, alpha_max: float) -> float:
    """Teacher momentum at optimisation ``step``: ``min(1 - 1/(step+1), alpha_max)``.

    Step 0 gives 0 (the teacher becomes a copy of the student), step 1 gives 0.5, and the
    momentum saturates at ``alpha_max`` (0.999 in the reference) after ~1/(1-alpha_max) steps.
    """
    if step < 0:
        raise ValueError(f"step must be >= 0, got {step}")
    if not 0.0 <= alpha_max <= 1.0:
        raise ValueError(f"alpha_max must be in [0, 1], got {alpha_max}")
    return min(1.0 - 1.0 / (step + 1), alpha_max)


def _matched_pairs(
    teacher_items: list[tuple[str, Tensor]], student_items: list[tuple[str, Tensor]], kind: str
) -> list[tuple[Tensor, Tensor]]:
    """Pair teacher and student tensors by position after checking that names and shapes agree."""
    t_sig = [(name, tuple(t.shape)) for name, t in teacher_items]
    s_sig = [(name, tuple(t.shape)) for name, t in student_items]
    if t_sig != s_sig:
        diff = sorted(set(t_sig) ^ set(s_sig))[:5]
        raise ValueError(
            f"teacher and student {kind} differ ({len(t_sig)} vs {len(s_sig)} tensors); "
            f"first mismatches (name, shape): {diff or 'same set, different order'}"
        )
    return [(t, s) for (_, t), (_, s) in zip(teacher_items, student_items, strict=True)]


@torch.no_grad()
def ema_update(teacher: nn.Module, student: nn.Module, momentum: float, buffers: BufferMode = "keep") -> None:
    """Move the teacher towards the student in place: ``theta_t = m theta_t + (1 - m) theta_s``.

    The EMA covers parameters only, as in DACS and DAFormer. Buffers (BatchNorm running
    statistics, ``num_batches_tracked``) are handled by ``buffers``:

    - ``"keep"`` (default, the DAFormer behaviour): the update leaves them alone. DAFormer runs the
      teacher in train mode (dropout and drop-path off), so its BatchNorm layers normalise with the
      statistics of the target batch and update their own running stats from it; the caller must
      do the same, or the teacher's running stats stay frozen at their initial values.
    - ``"copy"``: overwrite them with the student's (for a teacher run in eval mode).
    - ``"ema"``: floating-point buffers follow the same EMA as the parameters; integer buffers
      (``num_batches_tracked``) are copied because they cannot be averaged.

    Args:
        teacher: the EMA model, modified in place.
        student: the trained model, read only.
        momentum: ``m`` in [0, 1]; 0 makes the teacher an exact copy of the student's parameters.
        buffers: what to do with buffers, see above.

    Raises:
        ValueError: if the parameter (or, unless ``buffers="keep"``, buffer) names or shapes differ,
            or ``momentum`` / ``buffers`` is invalid.
    """
    if not 0.0 <= momentum <= 1.0:
        raise ValueError(f"momentum must be in [0, 1], got {momentum}")
    if buffers not in ("copy", "ema", "keep"):
        raise ValueError(f"buffers must be 'copy', 'ema' or 'keep', got {buffers!r}")
    params = _matched_pairs(list(teacher.named_parameters()), list(student.named_parameters()), "parameters")
    for t, s in params:
        t.mul_(momentum).add_(s.detach(), alpha=1.0 - momentum)
    if buffers == "keep":
        return
    for t, s in _matched_pairs(list(teacher.named_buffers()), list(student.named_buffers()), "buffers"):
        if buffers == "copy" or not t.is_floating_point():
            t.copy_(s)
        else:
            t.mul_(momentum).add_(s, alpha=1.0 - momentum)


def make_teacher(student: nn.Module) -> nn.Module:
    """Return a deep copy of ``student`` with ``requires_grad=False`` on every parameter.

    The caller registers it as a submodule (so it is checkpointed and moved with the task) and
    keeps it out of the optimiser.
    """
    teacher = copy.deepcopy(student)
    for param in teacher.parameters():
        param.requires_grad_(False)
    return teacher


# ---------------------------------------------------------------------------------------------
# Pseudo-label weights
# ---------------------------------------------------------------------------------------------


def _confidence(probs: Tensor) -> Tensor:
    if probs.ndim != 4:
        raise ValueError(f"probs must be (N, C, H, W), got shape {tuple(probs.shape)}")
    return probs.amax(dim=1)


def image_confidence_weights(probs: Tensor, tau: float, ignore_mask: Tensor | None = None) -> Tensor:
    """Threshold-free pseudo-label weight of each image: the fraction of its pixels with ``max p >= tau``.

    No pixel is discarded; every pixel of image i is later weighted ``w_i``.

    Args:
        probs: (N, C, H, W) class probabilities (softmax of the teacher logits).
        tau: confidence threshold (0.968 in the reference).
        ignore_mask: optional (N, H, W) bool, True where a pixel must not count (e.g. padding);
            such pixels are left out of both numerator and denominator. An image whose pixels are
            all ignored gets weight 0.

    Returns:
        (N,) float weights in [0, 1], same dtype as ``probs``.
    """
    confident = _confidence(probs) >= tau
    if ignore_mask is None:
        return confident.flatten(1).to(probs.dtype).mean(dim=1)
    if ignore_mask.shape != confident.shape:
        raise ValueError(f"ignore_mask must be {tuple(confident.shape)}, got {tuple(ignore_mask.shape)}")
    valid = ~ignore_mask.bool()
    counted = (confident & valid).flatten(1).sum(dim=1)
    total = valid.flatten(1).sum(dim=1)
    return (counted / total.clamp(min=1)).to(probs.dtype)


def pixel_threshold_weights(probs: Tensor, tau: float) -> Tensor:
    """Hard cut-off weights (the ablation variant): (N, H, W), 1 where ``max p >= tau`` else 0."""
    return (_confidence(probs) >= tau).to(probs.dtype)


# ---------------------------------------------------------------------------------------------
# ClassMix
# ---------------------------------------------------------------------------------------------


def num_mixed_classes(num_present: int) -> int:
    """How many of ``num_present`` classes ClassMix pastes: half, rounded up (DACS's ``(n + n % 2) / 2``)."""
    return (num_present + 1) // 2


def _present_classes(labels: Tensor, ignore_values: Sequence[int]) -> Tensor:
    classes = torch.unique(labels).cpu()
    if ignore_values:
        classes = classes[~torch.isin(classes, torch.tensor(list(ignore_values), dtype=classes.dtype))]
    return classes


def _choose_half(classes: Tensor, generator: torch.Generator | None) -> Tensor:
    order = torch.randperm(len(classes), generator=generator)
    return classes[order[: num_mixed_classes(len(classes))]]


def classmix_masks(
    source_labels: Tensor,
    generator: torch.Generator | None = None,
    ignore_values: Sequence[int] = (PADDING,),
    per_image: bool = True,
) -> Tensor:
    """ClassMix masks: per source image, the pixels of a random half of its classes.

    ``ceil(n / 2)`` of the ``n`` non-ignored classes are chosen uniformly without replacement (so a
    single-class image is pasted whole, an image with only ignored values gives an empty mask).
    Ignored values are never chosen, so source padding is always filled from the target image.

    ``per_image=False`` reproduces DAFormer's reference code, which draws the candidate classes
    from the whole source batch (``torch.unique`` of all labels) while masking each image: every
    image draws its own half of the batch's classes, and its mask is its pixels of those classes
    (possibly none of them).

    Args:
        source_labels: (N, H, W) integer labels.
        generator: CPU generator for reproducible draws (the global RNG if None).
        ignore_values: label values never selected.
        per_image: candidate classes from each image (True) or from the whole batch (False).

    Returns:
        (N, H, W) bool masks on the labels' device.
    """
    if source_labels.ndim != 3:
        raise ValueError(f"source_labels must be (N, H, W), got shape {tuple(source_labels.shape)}")
    batch_classes = None if per_image else _present_classes(source_labels, ignore_values)
    masks = []
    for label in source_labels:
        candidates = _present_classes(label, ignore_values) if batch_classes is None else batch_classes
        chosen = _choose_half(candidates, generator).to(label.device)
        masks.append(torch.isin(label, chosen))
    return torch.stack(masks)


def classmix(
    source_images: Tensor,
    target_images: Tensor,
    source_labels: Tensor,
    target_pseudo_labels: Tensor,
    masks: Tensor,
    target_weights: Tensor,
) -> tuple[Tensor, Tensor, Tensor]:
    """Paste the masked source pixels onto the target images.

    ``x_m = M x_s + (1 - M) x_t``, ``y_m = M y_s + (1 - M) y_t``, ``W = M + (1 - M) w``.

    Args:
        source_images: (N, C, H, W).
        target_images: (N, C, H, W).
        source_labels: (N, H, W) ground truth.
        target_pseudo_labels: (N, H, W) teacher pseudo-labels.
        masks: (N, H, W) bool, True where the source pixel is kept.
        target_weights: (N,) per-image weights (threshold-free) or (N, H, W) per-pixel weights
            (hard threshold variant).

    Returns:
        Mixed images (N, C, H, W), mixed labels (N, H, W; dtype promoted from the two label
        dtypes) and float pixel weights (N, H, W).
    """
    if source_images.shape != target_images.shape or source_images.ndim != 4:
        raise ValueError(
            f"source and target images must share one (N, C, H, W) shape, got "
            f"{tuple(source_images.shape)} and {tuple(target_images.shape)}"
        )
    n, _, h, w = source_images.shape
    for name, t in (("source_labels", source_labels), ("target_pseudo_labels", target_pseudo_labels), ("masks", masks)):
        if t.shape != (n, h, w):
            raise ValueError(f"{name} must be {(n, h, w)}, got {tuple(t.shape)}")
    masks = masks.bool()
    if target_weights.shape == (n,):
        target_weights = target_weights.view(n, 1, 1).expand(n, h, w)
    elif target_weights.shape != (n, h, w):
        raise ValueError(f"target_weights must be {(n,)} or {(n, h, w)}, got {tuple(target_weights.shape)}")
    mixed_images = torch.where(masks[:, None], source_images, target_images)
    mixed_labels = torch.where(masks, source_labels, target_pseudo_labels)
    weights = target_weights.float() if not target_weights.is_floating_point() else target_weights
    mixed_weights = torch.where(masks, torch.ones_like(weights), weights)
    return mixed_images, mixed_labels, mixed_weights


# ---------------------------------------------------------------------------------------------
# Strong augmentation (colour jitter + Gaussian blur), raw 0..255 pixel space
# ---------------------------------------------------------------------------------------------

_GREY = (0.299, 0.587, 0.114)  # ITU-R BT.601 luma, as torchvision's rgb_to_grayscale
_RGB_TO_YIQ = (
    (0.299, 0.587, 0.114),
    (0.595716, -0.274453, -0.321263),
    (0.211456, -0.522591, 0.311135),
)


def blur_kernel_size(side: int, fraction: float = 0.1) -> int:
    """Gaussian kernel size for an image side: ``ceil(fraction * side)``, lowered to odd (>= 1)."""
    size = max(1, math.ceil(fraction * side))
    return size if size % 2 == 1 else size - 1


def _uniform(n: int, low: float, high: float, generator: torch.Generator | None) -> Tensor:
    return low + (high - low) * torch.rand(n, generator=generator, dtype=torch.float64)


def _grey(images: Tensor) -> Tensor:
    weights = images.new_tensor(_GREY).view(1, 3, 1, 1)
    return (images * weights).sum(dim=1, keepdim=True)


def _hue_matrices(shifts: Tensor) -> Tensor:
    """(n, 3, 3) RGB->RGB matrices that rotate the chroma plane of YIQ by ``shift`` turns."""
    to_yiq = torch.tensor(_RGB_TO_YIQ, dtype=torch.float64)
    angle = 2.0 * math.pi * shifts
    rotation = torch.zeros(len(shifts), 3, 3, dtype=torch.float64)
    rotation[:, 0, 0] = 1.0
    rotation[:, 1, 1] = rotation[:, 2, 2] = torch.cos(angle)
    rotation[:, 1, 2] = -torch.sin(angle)
    rotation[:, 2, 1] = torch.sin(angle)
    return torch.linalg.inv(to_yiq) @ rotation @ to_yiq


def _colour_jitter(images: Tensor, factors: Tensor, valid: Tensor) -> Tensor:
    """Brightness, contrast, saturation, hue (fixed order) with per-image (n, 4) CPU factors; clamps after each."""
    n = images.shape[0]
    brightness, contrast, saturation = (factors[:, i].to(images).view(n, 1, 1, 1) for i in range(3))
    x = (images * brightness).clamp(0.0, 255.0)
    # Contrast pivots on the mean grey of the real pixels: black padding would drag it down.
    grey = _grey(x)
    mean = (grey * valid).sum(dim=(1, 2, 3), keepdim=True) / valid.sum(dim=(1, 2, 3), keepdim=True).clamp(min=1)
    x = (contrast * x + (1 - contrast) * mean).clamp(0.0, 255.0)
    x = (saturation * x + (1 - saturation) * _grey(x)).clamp(0.0, 255.0)
    hue = _hue_matrices(factors[:, 3]).to(x)
    return torch.einsum("nij,njhw->nihw", hue, x).clamp(0.0, 255.0)


def _gaussian_blur(images: Tensor, sigmas: Tensor, kernel_fraction: float) -> Tensor:
    """Separable Gaussian blur with one sigma per image (reflect padding), via grouped convolutions."""
    n, c, h, w = images.shape
    x = images.reshape(1, n * c, h, w)
    for dim, side in ((2, h), (3, w)):
        size = blur_kernel_size(side, kernel_fraction)
        offsets = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
        kernel = torch.exp(-0.5 * (offsets[None] / sigmas[:, None]) ** 2)
        kernel = (kernel / kernel.sum(dim=1, keepdim=True)).to(x).repeat_interleave(c, dim=0)
        half = size // 2
        if dim == 2:
            x = F.conv2d(F.pad(x, (0, 0, half, half), mode="reflect"), kernel.view(n * c, 1, size, 1), groups=n * c)
        else:
            x = F.conv2d(F.pad(x, (half, half, 0, 0), mode="reflect"), kernel.view(n * c, 1, 1, size), groups=n * c)
    return x.reshape(n, c, h, w)


def strong_augment(
    images: Tensor,
    generator: torch.Generator | None = None,
    *,
    jitter_p: float = AdaptationConfig.jitter_p,
    brightness: float = AdaptationConfig.brightness,
    contrast: float = AdaptationConfig.contrast,
    saturation: float = AdaptationConfig.saturation,
    hue: float = AdaptationConfig.hue,
    blur_p: float = AdaptationConfig.blur_p,
    blur_sigma: tuple[float, float] = AdaptationConfig.blur_sigma,
    blur_kernel_fraction: float = AdaptationConfig.blur_kernel_fraction,
) -> Tensor:
    """Strong augmentation of the mixed images: colour jitter then Gaussian blur, per-image draws.

    Value space: raw RGB pixels as floats in 0..255, before normalisation (the caller normalises
    afterwards), so the same code serves any normalisation mode. Each image independently gets
    the jitter with probability ``jitter_p`` and the blur with probability ``blur_p``.

    Jitter (torchvision-like factors, fixed order): brightness scales by ``U(1-b, 1+b)``; contrast
    blends with the image's mean grey (over its non-black pixels) by ``U(1-c, 1+c)``; saturation
    blends with the per-pixel grey by ``U(1-s, 1+s)``; hue rotates the YIQ chroma plane by
    ``U(-h, h)`` turns (a linear stand-in for the HSV hue shift). Values are clamped to 0..255
    after each step. Blur: sigma ``U(*blur_sigma)``, kernel ``ceil(fraction * side)`` lowered to
    odd, per axis, reflect padding. Pixels exactly 0 in every channel before augmentation (padding)
    are 0 afterwards.

    Args:
        images: (N, 3, H, W) float RGB in 0..255.
        generator: CPU generator for reproducible draws (the global RNG if None).
        jitter_p: probability of the colour jitter per image.
        brightness: brightness strength b.
        contrast: contrast strength c.
        saturation: saturation strength s.
        hue: hue strength h, in turns of the colour wheel (at most 0.5).
        blur_p: probability of the blur per image.
        blur_sigma: range of the blur sigma, in pixels.
        blur_kernel_fraction: kernel size as a fraction of the image side.

    Returns:
        The augmented (N, 3, H, W) batch, same dtype and device; untouched images are unchanged.
    """
    if images.ndim != 4 or images.shape[1] != 3 or not images.is_floating_point():
        raise ValueError(f"images must be a float (N, 3, H, W) RGB batch, got {images.dtype} {tuple(images.shape)}")
    for name, p in (("jitter_p", jitter_p), ("blur_p", blur_p)):
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"{name} must be in [0, 1], got {p}")
    for name, strength in (("brightness", brightness), ("contrast", contrast), ("saturation", saturation)):
        if not 0.0 <= strength <= 1.0:
            raise ValueError(f"{name} must be in [0, 1], got {strength}")
    if not 0.0 <= hue <= 0.5:
        raise ValueError(f"hue must be in [0, 0.5], got {hue}")
    if not 0.0 < blur_sigma[0] <= blur_sigma[1]:
        raise ValueError(f"blur_sigma must satisfy 0 < low <= high, got {blur_sigma}")
    n = images.shape[0]
    # Draw everything for every image, used or not, so one image's draws never shift another's.
    do_jitter = torch.rand(n, generator=generator) < jitter_p
    factors = torch.stack(
        [
            _uniform(n, 1 - brightness, 1 + brightness, generator),
            _uniform(n, 1 - contrast, 1 + contrast, generator),
            _uniform(n, 1 - saturation, 1 + saturation, generator),
            _uniform(n, -hue, hue, generator),
        ],
        dim=1,
    )
    do_blur = torch.rand(n, generator=generator) < blur_p
    sigmas = _uniform(n, blur_sigma[0], blur_sigma[1], generator)

    black = (images == 0).all(dim=1, keepdim=True)
    out = images.clone()
    if do_jitter.any():
        idx = do_jitter.nonzero().flatten()
        at = idx.to(images.device)
        valid = (~black[at]).to(images.dtype)
        out[at] = _colour_jitter(out[at], factors[idx], valid)
    if do_blur.any():
        idx = do_blur.nonzero().flatten()
        at = idx.to(images.device)
        out[at] = _gaussian_blur(out[at], sigmas[idx], blur_kernel_fraction)
    return out.masked_fill(black, 0.0)
