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
import time

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")

import torch

from lightning_modules.networks import NetworkConfig
from lightning_modules.optim import OptimConfig, parameter_groups, warmup_poly_factor
from lightning_modules.sar_segmenter import SARSegmenter
from sar_studies.timing import StepClock, timing_trainer


def make_batches(count: int, batch: int, size: int) -> list[dict[str, torch.Tensor]]:
    """Random uint8 SAR crops with blocky labels 0..8 (raw: the task normalises them)."""
    gen = torch.Generator().manual_seed(0)
    out = []
    for _ in range(count):
        raw = torch.randint(0, 256, (batch, 1, size, size), dtype=torch.uint8, generator=gen)
        mask = torch.randint(0, 9, (batch, size // 16, size // 16), generator=gen)
        mask = mask.repeat_interleave(16, 1).repeat_interleave(16, 2)
        out.append({"image": raw, "mask": mask})
    return out


def plain_loop(task: SARSegmenter, batches: list[dict[str, torch.Tensor]], warmup: int) -> float:
    """Mean seconds per step of a hand-written loop, after ``warmup`` steps."""
    optim = task.optim_config
    optimizer = torch.optim.AdamW(parameter_groups(task.model, optim), lr=optim.lr, weight_decay=optim.weight_decay)
    total = len(batches)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: warmup_poly_factor(s, optim.warmup_steps, total, optim.poly_power, optim.warmup_ratio)
    )
    task.train()
    start = 0.0
    for step, batch in enumerate(batches):
        if step == warmup:
            start = time.perf_counter()
        loss, _ = task.criterion(task(task.normalise(batch["image"])), task._supervision(batch["mask"]))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        schedule.step()
    return (time.perf_counter() - start) / (total - warmup)


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
    batches = make_batches(args.steps, args.batch, args.size)
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
