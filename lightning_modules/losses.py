"""Segmentation losses: (weighted) cross-entropy, symmetric cross-entropy, Lovasz-softmax and their sum.

Every loss takes logits ``[N, C, H, W]`` and a long target ``[N, H, W]`` whose values are class indices
in ``[0, C)`` or ``ignore_index``. Ignored pixels contribute neither to the value nor to the gradient;
a batch without a valid pixel gives a loss of 0 that is still connected to the logits.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from datamodules.classes import BACKGROUND


@dataclass(frozen=True)
class LossConfig:
    """Weighted sum of losses; every term averages over pixels whose label is not ``ignore_index``.

    The one place of the symmetric cross-entropy's defaults (alpha 1, beta 2, A = -4, Wang et al.).
    """

    sce_weight: float = 1.0
    lovasz_weight: float = 1.0
    ce_weight: float = 0.0
    sce_alpha: float = 1.0
    sce_beta: float = 2.0
    sce_A: float = -4.0
    """log 0 of the clamped one-hot label in the reverse cross-entropy term."""
    ignore_index: int = BACKGROUND
    """Label value carrying no supervision (background, disagreement between models, padding)."""


def _valid_and_safe_target(target: Tensor, ignore_index: int) -> tuple[Tensor, Tensor]:
    """Return the valid-pixel mask and a target whose ignored pixels hold class 0 (a safe gather index)."""
    valid = target != ignore_index
    return valid, torch.where(valid, target, torch.zeros_like(target))


def _check_shapes(logits: Tensor, target: Tensor) -> None:
    """Raise ValueError unless ``logits`` is ``[N, C, *S]`` and ``target`` is ``[N, *S]``."""
    if logits.dim() != target.dim() + 1 or (logits.shape[0], *logits.shape[2:]) != target.shape:
        raise ValueError(f"logits {tuple(logits.shape)} and target {tuple(target.shape)} do not match")


def _nll(logits: Tensor, target: Tensor, ignore_index: int) -> tuple[Tensor, Tensor]:
    """Per-pixel ``-log p_y`` in float32 (``[N, H, W]``, arbitrary at ignored pixels) and the valid mask."""
    _check_shapes(logits, target)
    valid, safe = _valid_and_safe_target(target, ignore_index)
    log_p = F.log_softmax(logits.float(), dim=1)
    nll = -log_p.gather(1, safe.long().unsqueeze(1)).squeeze(1)
    return nll, valid


def _masked_mean(per_pixel: Tensor, valid: Tensor, pixel_weight: Tensor | None) -> Tensor:
    """Mean of ``pixel_weight * per_pixel`` over valid pixels; 0 (still differentiable) when none is valid."""
    if pixel_weight is not None:
        if pixel_weight.shape != per_pixel.shape:
            raise ValueError(f"pixel_weight {tuple(pixel_weight.shape)} must match {tuple(per_pixel.shape)}")
        per_pixel = per_pixel * pixel_weight.float()
    # where(), not a multiplication by the mask, so a non-finite value at an ignored pixel cannot leak in.
    total = torch.where(valid, per_pixel, torch.zeros_like(per_pixel)).sum()
    return total / valid.sum().clamp_min(1)


class CrossEntropy(nn.Module):
    """Cross-entropy averaged over valid pixels, optionally weighted per pixel.

    Args:
        ignore_index: label value that carries no supervision.
    """

    def __init__(self, ignore_index: int = BACKGROUND) -> None:
        super().__init__()
        self.ignore_index = ignore_index

    def forward(self, logits: Tensor, target: Tensor, pixel_weight: Tensor | None = None) -> Tensor:
        """Return the mean over valid pixels of ``pixel_weight * CE`` (weight 1 when ``None``)."""
        nll, valid = _nll(logits, target, self.ignore_index)
        return _masked_mean(nll, valid, pixel_weight)


class SymmetricCrossEntropy(nn.Module):
    """Symmetric cross-entropy of Wang et al. (ICCV 2019): ``alpha * CE + beta * RCE``.

    The reverse term is ``RCE = -sum_k p_k log q_k`` with ``q`` the one-hot label and ``log 0`` clamped
    to ``A``, i.e. ``RCE = -A (1 - p_y)``.

    Args:
        alpha: weight of the forward cross-entropy.
        beta: weight of the reverse cross-entropy.
        A: the value that replaces ``log 0`` in the reverse term; must be negative.
        ignore_index: label value that carries no supervision.
    """

    def __init__(
        self,
        alpha: float = LossConfig.sce_alpha,
        beta: float = LossConfig.sce_beta,
        A: float = LossConfig.sce_A,
        ignore_index: int = BACKGROUND,
    ) -> None:
        super().__init__()
        if alpha < 0 or beta < 0:
            raise ValueError(f"alpha and beta must be >= 0, got alpha={alpha}, beta={beta}")
        if not A < 0:
            raise ValueError(f"A stands for log 0 and must be negative, got {A}")
        self.alpha = alpha
        self.beta = beta
        self.A = A
        self.ignore_index = ignore_index

    def forward(self, logits: Tensor, target: Tensor, pixel_weight: Tensor | None = None) -> Tensor:
        """Return the mean over valid pixels of ``pixel_weight * SCE`` (weight 1 when ``None``)."""
        nll, valid = _nll(logits, target, self.ignore_index)
        # 1 - p_y = -expm1(-CE): exact even when p_y rounds to 1.
        rce = -self.A * -torch.expm1(-nll)
        return _masked_mean(self.alpha * nll + self.beta * rce, valid, pixel_weight)


def _lovasz_jaccard_grad(fg_sorted: Tensor) -> Tensor:
    """Per-position weights of the Lovasz extension of the Jaccard loss, columns = classes.

    ``fg_sorted[i, c]`` is 1 where the pixel with the i-th largest error of class ``c`` belongs to ``c``.
    The weight at position i is ``J(first i pixels) - J(first i-1 pixels)`` where
    ``J(M) = |M| / |F u M|`` is the Jaccard loss of mispredicting the set ``M`` given the class set ``F``.
    """
    n_fg = fg_sorted.sum(0, keepdim=True)
    fg_in_prefix = fg_sorted.cumsum(0)
    bg_in_prefix = (1 - fg_sorted).cumsum(0)
    # |F u M| = |F| + background pixels in M;  |F \ M| = |F| - foreground pixels in M.
    jaccard = 1 - (n_fg - fg_in_prefix) / (n_fg + bg_in_prefix)
    return torch.cat([jaccard[:1], jaccard[1:] - jaccard[:-1]], dim=0)


class LovaszSoftmax(nn.Module):
    """Lovasz-softmax loss (Berman et al., CVPR 2018) over all valid pixels of the batch.

    For each class ``c`` the errors ``|1[y = c] - p_c|`` are sorted in decreasing order and dotted with
    the gradient of the Jaccard loss's Lovasz extension; the per-class losses are averaged.

    Args:
        ignore_index: label value that carries no supervision.
        classes: ``"present"`` averages over the classes present in the valid labels, ``"all"`` over
            every output class.
    """

    def __init__(self, ignore_index: int = BACKGROUND, classes: Literal["present", "all"] = "present") -> None:
        super().__init__()
        if classes not in ("present", "all"):
            raise ValueError(f"classes must be 'present' or 'all', got {classes!r}")
        self.ignore_index = ignore_index
        self.classes = classes

    def forward(self, logits: Tensor, target: Tensor, pixel_weight: Tensor | None = None) -> Tensor:
        """Return the Lovasz-softmax loss; ``pixel_weight`` exists for a uniform signature, must be None."""
        if pixel_weight is not None:
            raise ValueError("Lovasz-softmax has no per-pixel weighting; pass pixel_weight=None")
        _check_shapes(logits, target)
        num_classes = logits.shape[1]
        probs = F.softmax(logits.float(), dim=1).movedim(1, -1).reshape(-1, num_classes)
        labels = target.reshape(-1)
        valid = labels != self.ignore_index
        probs, labels = probs[valid], labels[valid].long()
        if labels.numel() == 0:
            return probs.sum()  # an empty sum: 0, connected to the logits, zero gradient

        fg = F.one_hot(labels, num_classes).float()
        errors = (fg - probs).abs()
        errors_sorted, order = errors.sort(dim=0, descending=True)
        with torch.no_grad():  # the weights depend on the labels' order only, not differentiably on p
            weights = _lovasz_jaccard_grad(fg.gather(0, order))
        per_class = (errors_sorted * weights).sum(0)
        if self.classes == "present":
            per_class = per_class[fg.sum(0) > 0]
        return per_class.mean()


class CombinedLoss(nn.Module):
    """Weighted sum of named loss terms; terms of weight 0 are not evaluated.

    Args:
        terms: ``name -> (loss module, weight)``; weights must be finite and >= 0, at least one > 0.
    """

    def __init__(self, terms: dict[str, tuple[nn.Module, float]]) -> None:
        super().__init__()
        for name, (_, weight) in terms.items():
            if not math.isfinite(weight) or weight < 0:
                raise ValueError(f"loss weight of {name!r} must be finite and >= 0, got {weight}")
        active = {name: (module, float(weight)) for name, (module, weight) in terms.items() if weight != 0}
        if not active:
            raise ValueError(f"CombinedLoss needs a term with a non-zero weight, got {list(terms)} all 0")
        self.terms = nn.ModuleDict({name: module for name, (module, _) in active.items()})
        self.weights = {name: weight for name, (_, weight) in active.items()}

    def forward(
        self, logits: Tensor, target: Tensor, pixel_weight: Tensor | None = None
    ) -> tuple[Tensor, dict[str, Tensor]]:
        """Return ``(total, {name: detached unweighted term value})``."""
        total: Tensor | None = None
        values: dict[str, Tensor] = {}
        for name, module in self.terms.items():
            value = module(logits, target) if pixel_weight is None else module(logits, target, pixel_weight)
            values[name] = value.detach()
            weighted = self.weights[name] * value
            total = weighted if total is None else total + weighted
        assert total is not None  # __init__ guarantees at least one term
        return total, values


def build_loss(config: LossConfig) -> CombinedLoss:
    """Build ``ce_weight * CE + sce_weight * SCE + lovasz_weight * Lovasz`` (terms "ce", "sce", "lovasz").

    Raises:
        ValueError: if every weight is 0 (or one is negative or non-finite).
    """
    if config.ce_weight == 0 and config.sce_weight == 0 and config.lovasz_weight == 0:
        raise ValueError("build_loss needs at least one non-zero weight among ce, sce and lovasz")
    terms: dict[str, tuple[nn.Module, float]] = {}
    if config.ce_weight != 0:
        terms["ce"] = (CrossEntropy(ignore_index=config.ignore_index), config.ce_weight)
    if config.sce_weight != 0:
        sce = SymmetricCrossEntropy(config.sce_alpha, config.sce_beta, config.sce_A, ignore_index=config.ignore_index)
        terms["sce"] = (sce, config.sce_weight)
    if config.lovasz_weight != 0:
        terms["lovasz"] = (LovaszSoftmax(ignore_index=config.ignore_index), config.lovasz_weight)
    return CombinedLoss(terms)


# Checkpoints of tasks built in Python hold this object as a hyperparameter; registered (also under its
# path before it moved here) for torch.load(weights_only=True), see networks.py.
torch.serialization.add_safe_globals([LossConfig, (LossConfig, "lightning_modules.sar_segmenter.LossConfig")])
