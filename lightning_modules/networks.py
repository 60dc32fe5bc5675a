"""Segmentation networks: their config and one constructor, smp architectures over smp or timm encoders."""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

Architecture = Literal["Unet", "UPerNet", "Segformer", "DeepLabV3Plus", "FPN"]
DecoderAttention = Literal["scse"]
NORM_LAYERS: tuple[type[nn.Module], ...] = (
    nn.modules.batchnorm._BatchNorm,
    nn.GroupNorm,
    nn.LayerNorm,
    nn.modules.instancenorm._InstanceNorm,
)


@dataclass(frozen=True)
class NetworkConfig:
    """Which network to build (see :func:`lightning_modules.networks.build_model`)."""

    arch: Architecture = "Unet"
    encoder: str = "resnet18"
    encoder_weights: str | None = None
    in_channels: int = 1
    num_classes: int = 9
    bn_momentum: float | None = None
    output_stride: int = 32
    """Inputs are padded to a multiple of this before the forward pass."""
    decoder_attention_type: DecoderAttention | None = None
    """U-Net only: ``scse`` (spatial and channel squeeze-and-excitation in every decoder block, the contest
    baseline's) or None."""
    init_weights: str | None = None
    """A checkpoint of the same network (e.g. a fitted stage-1 model) whose weights initialise the whole
    network: encoder, decoder and head (after ``encoder_weights``). None: no such initialisation."""


def padded_forward(network: nn.Module, images: Tensor, stride: int) -> Tensor:
    """Logits of ``network`` for images of any size: padded to a multiple of ``stride``, cropped back."""
    height, width = images.shape[-2:]
    pad_h, pad_w = (-height) % stride, (-width) % stride
    if pad_h or pad_w:
        images = F.pad(images, (0, pad_w, 0, pad_h))
    return network(images)[..., :height, :width]


def build_network(config: NetworkConfig) -> nn.Module:
    """The network a :class:`NetworkConfig` describes (see :func:`build_model`), initialised from
    ``init_weights`` if given."""
    model = build_model(
        config.arch,
        config.encoder,
        config.in_channels,
        config.num_classes,
        config.encoder_weights,
        config.bn_momentum,
        config.decoder_attention_type,
    )
    if config.init_weights is not None:
        load_network_weights(model, config.init_weights)
    return model


def build_model(
    arch: Architecture = "Unet",
    encoder: str = "resnet18",
    in_channels: int = 1,
    num_classes: int = 9,
    encoder_weights: str | None = None,
    bn_momentum: float | None = None,
    decoder_attention_type: DecoderAttention | None = None,
) -> nn.Module:
    """Build a segmentation network returning (N, num_classes, H, W) logits.

    Args:
        arch: smp architecture.
        encoder: smp encoder name (``resnet34``, ``mit_b3``, ``efficientnet-b4``) or a timm encoder
            as ``tu-<timm name>`` (``tu-convnextv2_base``).
        in_channels: input channels (1 for SAR as the contest baseline, 3 for optical or replicated SAR).
        num_classes: output classes (9: background and the 8 land-cover classes).
        encoder_weights: ``None`` (random init), ``imagenet`` (downloaded by smp/timm; needs network),
            or the path of a local weights file (``.pth``/``.pt``/``.safetensors``) for the encoder.
        bn_momentum: override the momentum of every BatchNorm layer (smp's EfficientNets use 0.01,
            whose running statistics lag far behind in short runs from scratch).
        decoder_attention_type: ``scse`` attention in the U-Net decoder blocks (Unet only), or None.

    Raises:
        ValueError: decoder attention asked of an architecture other than Unet.
    """
    import segmentation_models_pytorch as smp  # here, not at the top: --help and loading start ~2 s sooner

    local_file = encoder_weights if encoder_weights not in (None, "imagenet") else None
    extra: dict[str, str] = {}
    if decoder_attention_type is not None:
        if arch != "Unet":
            raise ValueError(f"decoder_attention_type {decoder_attention_type!r} exists for arch Unet only, not {arch}")
        extra["decoder_attention_type"] = decoder_attention_type
    model = smp.create_model(
        arch,
        encoder_name=encoder,
        encoder_weights=None if local_file else encoder_weights,
        in_channels=in_channels,
        classes=num_classes,
        **extra,
    )
    if local_file:
        load_encoder_weights(model.encoder, local_file)
    if bn_momentum is not None:
        for module in model.modules():
            if isinstance(module, nn.modules.batchnorm._BatchNorm):
                module.momentum = bn_momentum
    return model


def _read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(path))
    state = torch.load(path, map_location="cpu", weights_only=True)
    for key in ("state_dict", "model", "encoder"):
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
    return state


def _adapt_input_channels(weight: torch.Tensor, in_channels: int) -> torch.Tensor:
    """Adapt a first-layer kernel to another input channel count, keeping its response to grey input."""
    if in_channels == 1:
        return weight.sum(dim=1, keepdim=True)
    repeats = -(-in_channels // weight.shape[1])
    return weight.repeat(1, repeats, 1, 1)[:, :in_channels] * (weight.shape[1] / in_channels)


def load_encoder_weights(encoder: nn.Module, path: str | os.PathLike) -> None:
    """Load a local weights file into an encoder, adapting the first layer to its input channels.

    Raises:
        FileNotFoundError: the file does not exist.
        ValueError: no tensor of the file matches the encoder (wrong file or encoder name).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: encoder weights file does not exist")
    # "model." is a Lightning checkpoint's prefix (e.g. a stage-1 student initialising stage 2).
    source = {
        k.removeprefix("model.").removeprefix("encoder.").removeprefix("module."): v
        for k, v in _read_state_dict(path).items()
    }
    target = encoder.state_dict()
    loaded: dict[str, torch.Tensor] = {}
    for key, tensor in source.items():
        if key not in target:
            continue
        want = target[key].shape
        if tensor.shape != want and tensor.ndim == 4 and tensor.shape[0] == want[0] and tensor.shape[2:] == want[2:]:
            tensor = _adapt_input_channels(tensor, want[1])
        if tensor.shape == want:
            loaded[key] = tensor
    if not loaded:
        raise ValueError(f"{path}: no tensor matches the encoder's parameters; wrong file or encoder name?")
    encoder.load_state_dict(loaded, strict=False)
    missing = len(target) - len(loaded)
    if missing:
        warnings.warn(
            f"{path}: {missing} encoder tensors not found in the file keep their initial values", stacklevel=2
        )


def load_network_weights(network: nn.Module, path: str | os.PathLike) -> None:
    """Load every weight of a checkpoint's network (Lightning's ``model.`` prefix) into ``network``.

    Raises:
        FileNotFoundError: the file does not exist.
        ValueError: the file's network is not this one (a missing, extra or differently shaped tensor).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: initial weights file does not exist")
    state = _read_state_dict(path)
    if any(k.startswith("model.") for k in state):
        state = {k.removeprefix("model."): v for k, v in state.items() if k.startswith("model.")}
    target = network.state_dict()
    wrong = sorted(k for k in target.keys() | state.keys() if k not in state or k not in target)
    wrong += sorted(k for k in target.keys() & state.keys() if target[k].shape != state[k].shape)
    if wrong:
        raise ValueError(
            f"{path}: its network differs from this one in {len(wrong)} tensors (e.g. {wrong[0]}); "
            "init_weights needs a checkpoint of the same arch, encoder, input channels and classes"
        )
    network.load_state_dict(state)


def is_norm_parameter(module: nn.Module) -> bool:
    """True for normalisation layers, whose parameters get no weight decay."""
    return isinstance(module, NORM_LAYERS) or type(module).__name__.lower().endswith(("norm", "norm2d"))


# Checkpoints of modules built in Python hold this object as a hyperparameter; registering it (also under
# its path before the package split) keeps them loadable with torch.load(weights_only=True).
torch.serialization.add_safe_globals([NetworkConfig, (NetworkConfig, "lightning_modules.base.NetworkConfig")])
