"""Lightning's overhead on the SAR segmenter's training step, against a plain PyTorch loop.

Both loops train the same network (same initial weights) on the same pre-made batches with the
same loss, optimiser groups and schedule; only the driver differs. Runs alternate (plain,
Lightning, plain, Lightning, ...) so that drift of this shared machine hits both alike; the
reported figure is the median of the per-pair ratios of the mean step time.

    python benchmarks/lightning_overhead.py [--steps 30] [--pairs 3]
"""

from __future__ import annotations

import argparse
import copy
import os
import statistics

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")

import torch

from lightning_modules.networks import NetworkConfig
from lightning_modules.optim import OptimConfig
from lightning_modules.sar_segmenter import SARSegmenter
from sar_studies.timing import StepClock, plain_loop, random_sar_crops, timing_trainer


def lightning_loop(task: SARSegmenter, batches: list[dict[str, torch.Tensor]], warmup: int) -> float:
    """Mean seconds per step of ``Trainer.fit`` on the same batches, after ``warmup`` steps."""
    clock = StepClock(warmup)
    trainer = timing_trainer(len(batches), clock)
    loader = torch.utils.data.DataLoader(batches, batch_size=None, shuffle=False)
    trainer.fit(task, train_dataloaders=loader)
    return clock.seconds_per_step()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--pairs", type=int, default=3)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--size", type=int, default=256)
    args = parser.parse_args()

    torch.manual_seed(0)
    template = SARSegmenter(network=NetworkConfig(), optim=OptimConfig(lr=1e-3, warmup_steps=5))
    batches = random_sar_crops(args.steps, args.batch, args.size)
    ratios = []
    print(f"U-Net ResNet-18, batch {args.batch} x 1 x {args.size}^2, {args.steps} steps ({args.warmup} warm-up), "
          f"{torch.get_num_threads()} threads")  # fmt: skip
    for pair in range(args.pairs):
        plain = plain_loop(copy.deepcopy(template), batches, args.warmup)
        lightning = lightning_loop(copy.deepcopy(template), batches, args.warmup)
        ratios.append(lightning / plain)
        print(f"pair {pair}: plain {plain:.3f} s/step, Lightning {lightning:.3f} s/step, ratio {ratios[-1]:.3f}")
    print(f"median ratio Lightning / plain: {statistics.median(ratios):.3f} (target <= 1.05)")


if __name__ == "__main__":
    main()
