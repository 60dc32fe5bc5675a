"""Training draws: per rank, per position, reproducible, resumable."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch

from datamodules.loaders import SeededSampler
from tests.helpers.cli import REPO, run_cli


def draws(sampler: SeededSampler, rank: int, world: int) -> list[tuple[int, int]]:
    sampler._world = lambda: (rank, world)  # type: ignore[method-assign]  # as torch.distributed would say
    return list(sampler)


def test_ranks_take_disjoint_positions_with_their_own_augmentation_seeds() -> None:
    one = draws(SeededSampler(5, 12, seed=3), 0, 1)
    rank0, rank1 = draws(SeededSampler(5, 12, seed=3), 0, 2), draws(SeededSampler(5, 12, seed=3), 1, 2)
    assert rank0 == one[0::2] and rank1 == one[1::2]  # the same draws, split between the ranks
    assert len({seed for _, seed in one}) == 12  # every position its own augmentation seed
    assert sorted(i for i, _ in one[:10]) == sorted(list(range(5)) * 2)  # whole passes before repeats
    assert draws(SeededSampler(5, 12, seed=4), 0, 1) != one
    assert draws(SeededSampler(5, 12, seed=3, stream=1), 0, 1) != one  # stage 1's target is not its source


def test_epochs_differ_and_a_resumed_sampler_continues_the_epoch() -> None:
    sampler = SeededSampler(5, 12, seed=3)
    sampler.set_epoch(1)
    epoch1 = draws(sampler, 1, 2)
    assert epoch1 != draws(SeededSampler(5, 12, seed=3), 1, 2)
    resumed = SeededSampler(5, 12, seed=3)
    resumed.resume_at(1, 4)
    assert draws(resumed, 1, 2) == epoch1[4:]
    assert draws(resumed, 1, 2) == epoch1  # only the first iteration skips
    at_end = SeededSampler(5, 12, seed=3)
    at_end._world = lambda: (1, 2)  # type: ignore[method-assign]
    at_end.resume_at(1, 6)  # the whole epoch was trained: the next one starts
    assert at_end.epoch == 2 and len(draws(at_end, 1, 2)) == 6


@pytest.mark.slow
def test_two_ddp_ranks_crop_differently_and_a_rerun_crops_the_same(tiny_root: Path, tmp_path: Path) -> None:
    # Every train tile is the same tile: any difference between the ranks' crops is augmentation.
    root = Path(shutil.copytree(tiny_root, tmp_path / "data"))
    for kind in ("sar_images", "labels"):
        tiles = sorted((root / "OpenEarthMap-SAR/train" / kind).glob("*.tif"))
        for tile in tiles[1:]:
            shutil.copyfile(tiles[0], tile)
    runs = []
    for run in ("first", "second"):
        folder = {"folder": str(tmp_path / run)}
        record = {"class_path": "tests.helpers.record_batches.RecordBatches", "init_args": folder}
        result = run_cli(
            "fit", "--config", str(REPO / "experiments/demo_sar.yaml"), f"--data.root={root}",
            "--data.crop_size=32", "--data.batch_size=2", "--data.num_workers=0", "--trainer.max_steps=3",
            "--trainer.limit_val_batches=0", "--trainer.logger=false", "--trainer.accelerator=cpu",
            "--trainer.devices=2", "--trainer.strategy=ddp", f"--trainer.default_root_dir={tmp_path / run}",
            f"--trainer.callbacks+={json.dumps(record)}", cwd=tmp_path,
        )  # fmt: skip
        assert result.returncode == 0, result.stderr[-3000:]
        runs.append([torch.load(tmp_path / run / f"rank{r}.pt") for r in (0, 1)])
    (first0, first1), (second0, second1) = runs
    assert len(first0) == len(first1) == 3
    for a, b in zip(first0, first1, strict=True):
        assert not torch.equal(a["raw_image"], b["raw_image"])  # each rank its own augmentation draws
    for a, b in zip(first0 + first1, second0 + second1, strict=True):
        assert torch.equal(a["raw_image"], b["raw_image"]) and torch.equal(a["mask"], b["mask"])
