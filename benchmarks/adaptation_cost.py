"""Cost of one stage-1 adaptation step against one supervised (source-only) step, same model and batch.

The adaptation step adds a teacher forward on the target crops, ClassMix, strong augmentation, a
second student forward/backward and the EMA update; the expected ratio is about 2-3x. Both
variants run through ``Trainer.fit`` on the same pre-made batches; runs alternate and the median
of the per-pair ratios is reported.

    python benchmarks/adaptation_cost.py [--steps 12] [--pairs 3]
"""

from __future__ import annotations

import argparse
import os
import statistics

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")

import lightning as L
import torch

from lightning_modules.mean_teacher import AdaptationConfig
from lightning_modules.networks import NetworkConfig
from lightning_modules.optical_adapter import OpticalAdapter
from lightning_modules.optim import OptimConfig
from sar_studies.timing import StepClock, timing_trainer


class _Batches(L.LightningDataModule):
    """Pre-made {"source", "target"} batches of raw pixels (the adapter normalises them)."""

    def __init__(self, batches: list[dict]) -> None:
        super().__init__()
        self.batches = batches

    def train_dataloader(self) -> torch.utils.data.DataLoader:
        return torch.utils.data.DataLoader(self.batches, batch_size=None)


def make_batches(count: int, batch: int, size: int) -> list[dict]:
    """Random RGB crops with blocky labels for the source, padding-free masks for the target."""
    gen = torch.Generator().manual_seed(0)

    def part(labelled: bool) -> dict:
        raw = torch.randint(0, 256, (batch, 3, size, size), dtype=torch.uint8, generator=gen)
        mask = torch.randint(0, 9, (batch, size // 16, size // 16), generator=gen) if labelled else None
        mask = mask.repeat_interleave(16, 1).repeat_interleave(16, 2) if labelled else torch.zeros(batch, size, size)
        return {"image": raw, "mask": mask.long()}

    return [{"source": part(True), "target": part(False)} for _ in range(count)]


def time_steps(enabled: bool, batches: list[dict], warmup: int) -> float:
    """Mean seconds per training step after ``warmup`` steps."""
    torch.manual_seed(0)
    model = OpticalAdapter(
        network=NetworkConfig(in_channels=3), optim=OptimConfig(warmup_steps=1), adaptation=AdaptationConfig(enabled)
    )
    clock = StepClock(warmup)
    trainer = timing_trainer(len(batches), clock)
    trainer.fit(model, datamodule=_Batches(batches))
    return clock.seconds_per_step()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=12)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--pairs", type=int, default=3)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--size", type=int, default=192)
    args = parser.parse_args()
    batches = make_batches(args.steps, args.batch, args.size)
    print(f"U-Net ResNet-18, 3-band, {args.batch} source + {args.batch} target crops of {args.size}^2 per step")
    ratios = []
    for pair in range(args.pairs):
        supervised = time_steps(False, batches, args.warmup)
        adapted = time_steps(True, batches, args.warmup)
        ratios.append(adapted / supervised)
        print(f"pair {pair}: supervised {supervised:.3f} s/step, adapted {adapted:.3f} s/step, ratio {ratios[-1]:.2f}")
    print(f"median ratio adaptation / supervised: {statistics.median(ratios):.2f} (target <= 3)")


if __name__ == "__main__":
    main()
