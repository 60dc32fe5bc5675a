"""A rough memory estimate of tiled inference, checked before a long run instead of failing inside it."""

from __future__ import annotations

import os
from pathlib import Path

from sar_inference.settings import InferenceConfig

ACTIVATION_FLOATS_PER_PIXEL = 256
"""float32 values held per window pixel during one forward pass. Measured about 200 for the demo
U-Net ResNet-18 on the CPU (benchmarks/inference_speed.py, 8 windows of 256^2); larger encoders hold more."""
BLOCK_BUFFERS = 4
"""(C, H, W) float32 maps alive per block besides the models' outputs: sums, weights, TTA total, resized view."""


def available_memory_bytes() -> int:
    """Memory the system can give this process now (Linux ``MemAvailable``; free pages elsewhere)."""
    meminfo = Path("/proc/meminfo")
    if meminfo.is_file():
        for line in meminfo.read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")


def inference_bytes(inference: InferenceConfig, height: int, width: int, num_classes: int, num_models: int) -> int:
    """Estimated peak bytes of predicting an ``height`` x ``width`` image with every model.

    One forward pass holds ``batch_size`` windows of activations (the whole scaled image with
    ``whole_tile``); the image holds a few
    (C, H, W) float32 buffers, scaled by the largest TTA scale, plus one probability map per model.
    """
    scale = max(1.0, max(inference.scales))
    # A whole-tile forward pass holds the activations of the whole (scaled) image at once.
    pixels = height * width * scale**2 if inference.whole_tile else inference.batch_size * inference.window**2
    batch = pixels * 4 * (ACTIVATION_FLOATS_PER_PIXEL + num_classes)
    image = height * width * 4 * num_classes * (BLOCK_BUFFERS * scale**2 + num_models)
    return int(batch + image)


def check_memory(
    inference: InferenceConfig,
    height: int,
    width: int,
    num_classes: int,
    num_models: int,
    max_memory_gb: float | None,
    what: str,
) -> None:
    """Raise MemoryError with the figures when the estimate exceeds ``max_memory_gb`` (default: available RAM).

    Args:
        inference: window, batch size and TTA scales of the run.
        height: rows of the largest image predicted at once (a block with its halo, or a tile).
        width: columns of that image.
        num_classes: model outputs.
        num_models: models whose probabilities are held together.
        max_memory_gb: the budget in GiB; None for the memory available now.
        what: the input named in the message.
    """
    need = inference_bytes(inference, height, width, num_classes, num_models)
    limit = available_memory_bytes() if max_memory_gb is None else int(max_memory_gb * 2**30)
    if need > limit:
        source = "available" if max_memory_gb is None else "allowed by max_memory_gb"
        raise MemoryError(
            f"{what}: window {inference.window} with batch_size {inference.batch_size} on {height}x{width} pixels "
            f"needs about {need / 2**30:.1f} GiB, more than the {limit / 2**30:.1f} GiB {source}; "
            "lower window, batch_size or block"
        )
