"""The optimiser settings shared by both stages: AdamW/Adam parameter groups, linear warm-up then poly decay
(or a constant rate)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import torch
from torch import nn

from lightning_modules.networks import is_norm_parameter


@dataclass(frozen=True)
class OptimConfig:
    """Optimiser and learning-rate schedule: linear warm-up, then polynomial decay to 0 (or a constant rate)."""

    optimizer: Literal["adamw", "adam"] = "adamw"
    lr: float = 6e-5
    weight_decay: float = 0.01
    head_lr_mult: float = 10.0
    """Learning-rate multiplier of everything outside the encoder (decoder and head)."""
    norm_weight_decay: float = 0.0
    warmup_steps: int = 1500
    warmup_ratio: float = 1e-6
    """Learning-rate factor at step 0 of the warm-up."""
    poly_power: float = 1.0
    schedule: Literal["warmup_poly", "constant"] = "warmup_poly"
    """``warmup_poly`` (the reference's) or ``constant`` (the contest baseline's: ``lr`` throughout, no warm-up)."""


def schedule_factor(step: int, optim: OptimConfig, total_steps: int) -> float:
    """Learning-rate factor of ``optim``'s schedule at ``step`` of ``total_steps``."""
    if optim.schedule == "constant":
        return 1.0
    return warmup_poly_factor(step, optim.warmup_steps, total_steps, optim.poly_power, optim.warmup_ratio)


def warmup_poly_factor(step: int, warmup_steps: int, total_steps: int, power: float, warmup_ratio: float) -> float:
    """Learning-rate factor at ``step``: linear warm-up from ``warmup_ratio`` to 1, then poly decay to 0."""
    if step < warmup_steps:
        return warmup_ratio + (1.0 - warmup_ratio) * step / warmup_steps
    progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
    return max(0.0, 1.0 - progress) ** power


def parameter_groups(model: nn.Module, optim: OptimConfig) -> list[dict[str, Any]]:
    """Split parameters into (encoder | head) x (decayed | norm) groups with their lr and weight decay."""
    groups: dict[tuple[bool, bool], list[nn.Parameter]] = {}
    encoder = getattr(model, "encoder", None)
    encoder_params = {id(p) for p in encoder.parameters()} if encoder is not None else set()
    for module in model.modules():
        norm = is_norm_parameter(module)
        for param in module.parameters(recurse=False):
            if param.requires_grad:
                groups.setdefault((id(param) not in encoder_params, norm), []).append(param)
    return [
        {
            "params": params,
            "lr": optim.lr * (optim.head_lr_mult if head else 1.0),
            "weight_decay": optim.norm_weight_decay if norm else optim.weight_decay,
            "name": f"{'head' if head else 'encoder'}{'_norm' if norm else ''}",
        }
        for (head, norm), params in sorted(groups.items())
    ]


# Registered (also under its path before the package split) for torch.load(weights_only=True), see networks.py.
torch.serialization.add_safe_globals([OptimConfig, (OptimConfig, "lightning_modules.base.OptimConfig")])
