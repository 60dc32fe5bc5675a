"""CPU cost of one stage-2 training step per network, crop and batch: what the demo's 10-minute budget buys.

Each candidate trains the SAR segmenter (its loss, optimiser groups and schedule; the demo's SCE +
Lovasz) with ``sar_studies.timing.plain_loop`` on pre-made random crops, on one thread (the demo's two stage-2 fits run
side by side, one core each). The candidates take turns within each repeat so that drift of a
shared machine hits all alike; the figure is the median over repeats of the mean CPU seconds per
step after a warm-up, and its ratio to the demo's setting (the first candidate), with the pixels per
CPU-second each one trains on.

    python benchmarks/train_step_cost.py [--steps 8] [--repeats 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")

import torch

from lightning_modules.networks import NetworkConfig
from lightning_modules.optim import OptimConfig
from lightning_modules.sar_segmenter import SARSegmenter
from sar_studies.timing import plain_loop, random_sar_crops

EFFICIENTNET_SCSE = NetworkConfig(encoder="efficientnet-b0", decoder_attention_type="scse")  # the official baseline's
# (label, network, crop, batch): the demo's stage 2 first, then what could buy more steps per second.
CANDIDATES = [
    ("U-Net ResNet-18, crop 192, batch 8 (the demo)", NetworkConfig(), 192, 8),
    ("U-Net ResNet-18, crop 160, batch 8", NetworkConfig(), 160, 8),
    ("U-Net ResNet-18, crop 128, batch 8", NetworkConfig(), 128, 8),
    ("U-Net ResNet-18, crop 192, batch 4", NetworkConfig(), 192, 4),
    ("U-Net EfficientNet-B0 + scSE, crop 192, batch 8", EFFICIENTNET_SCSE, 192, 8),
    ("FPN ResNet-18, crop 192, batch 8", NetworkConfig(arch="FPN"), 192, 8),
    ("U-Net MobileNet-V2, crop 192, batch 8", NetworkConfig(encoder="mobilenet_v2"), 192, 8),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=8, help="steps per measurement, the warm-up included")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(1)
    print(f"torch {torch.__version__}, 1 thread; {args.steps} steps ({args.warmup} warm-up), {args.repeats} repeats")
    data = {(crop, batch): random_sar_crops(args.steps, batch, crop) for _, _, crop, batch in CANDIDATES}
    times: dict[str, list[float]] = {label: [] for label, *_ in CANDIDATES}
    for repeat in range(args.repeats):
        order = CANDIDATES if repeat % 2 == 0 else CANDIDATES[::-1]
        for label, network, crop, batch in order:
            torch.manual_seed(0)
            task = SARSegmenter(network=network, optim=OptimConfig(lr=1e-3, warmup_steps=1))
            times[label].append(plain_loop(task, data[(crop, batch)], args.warmup, clock=time.process_time))
    reference = statistics.median(times[CANDIDATES[0][0]])
    print(f"{'candidate':<50} {'CPU s/step':>10} {'vs demo':>8} {'Mpx/CPU-s':>10}")
    for label, _, crop, batch in CANDIDATES:
        seconds = statistics.median(times[label])
        print(f"{label:<50} {seconds:10.3f} {seconds / reference:8.2f} {batch * crop * crop / seconds / 1e6:10.3f}")


if __name__ == "__main__":
    main()
